using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using BabyPpo.Training.Ppo;

namespace BabyPpo.Tests.Web;

/// <summary>The new-experiment form says truthfully what it pre-fills and what each setting does.</summary>
[Collection(WebCollection.Name)]
public sealed class FormTests : IDisposable
{
    readonly TestApp _app = new(TestDatabase.Sqlite);

    [Fact]
    public async Task EveryPpoFieldShowsTrlsDefaultBesideTheRunDefaultItIsPrefilledWith()
    {
        using var client = _app.CreateClient();
        var html = WebUtility.HtmlDecode(await client.GetStringAsync("/new"));

        var trl = JsonSerializer.SerializeToNode(new PpoConfig(), RunSpec.Json)!.AsObject();
        var settable = trl.Where(kv => typeof(PpoConfig).GetProperty(char.ToUpperInvariant(kv.Key[0]) + kv.Key[1..])!.CanWrite).ToList();
        Assert.True(settable.Count > 20);
        foreach (var (key, value) in settable)
        {
            var shown = value is null ? "none" : value.GetValueKind() == JsonValueKind.String ? value.GetValue<string>() : value.ToJsonString();
            Assert.Matches($"""data-field="ppo\.{key}">trl 0\.8\.6: {Regex.Escape(shown)}</span>""", html);
        }
        // The pre-fill is the run default (the seed system's 16 / 4), and the form says so rather than calling it trl's.
        Assert.Matches("""id="ppo-batchSize" value="16".*?class="reference differs" data-field="ppo\.batchSize">trl 0\.8\.6: 128<""", Regex.Replace(html, "\\s+", " "));
        Assert.Matches("""id="ppo-miniBatchSize" value="4".*?class="reference differs" data-field="ppo\.miniBatchSize">trl 0\.8\.6: 128<""", Regex.Replace(html, "\\s+", " "));
        Assert.DoesNotContain("trl's defaults", html);
    }

    [Fact]
    public async Task TheTwoSeedsAreExplainedByWhatEachOneSeeds()
    {
        using var client = _app.CreateClient();
        var html = Regex.Replace(WebUtility.HtmlDecode(await client.GetStringAsync("/new")), "\\s+", " ");

        var runSeed = Regex.Match(html, """id="seed-help">(.*?)</span>""").Groups[1].Value;
        Assert.Contains("prompt order", runSeed);
        Assert.Contains("sampling", runSeed);
        Assert.Contains("value head", runSeed);
        var ppoSeed = Regex.Match(html, """<label for="ppo-seed">seed</label>.*?<span class="help">(.*?)<span class="reference""").Groups[1].Value;
        Assert.StartsWith("Seed of the mini-batch order", ppoSeed.Trim());
    }

    [Fact]
    public async Task TheFormOffersEveryRewardSettingWithItsExplanationAndChoices()
    {
        using var client = _app.CreateClient();
        var html = Regex.Replace(WebUtility.HtmlDecode(await client.GetStringAsync("/new")), "\\s+", " ");

        var settings = JsonSerializer.SerializeToNode(new BabyPpo.Training.Rewards.RewardOptions(), RunSpec.Json)!.AsObject();
        Assert.Equal(["confidenceVariant", "defaultScore", "judgeMaxTokens", "judgeTemplate", "referenceAggregation", "runningNormalisation", "semsimBatchSize"],
            settings.Select(kv => kv.Key).Order(StringComparer.Ordinal));
        foreach (var (key, _) in settings)
        {
            var help = Regex.Match(html, $"""<label for="rewardSettings-{key}">{key}</label>.*?<span class="help">(.*?)</span>""").Groups[1].Value;
            Assert.True(help.Trim().Length > 20, $"rewardSettings.{key} has no explanation");
        }
        Assert.Matches("""<select id="rewardSettings-confidenceVariant"[^>]*>.*?<option value="sum" selected>sum</option>.*?<option value="mean-per-token">""", html);
        Assert.Matches("""<select id="rewardSettings-referenceAggregation"[^>]*>.*?<option value="mean" selected>.*?<option value="max">.*?<option value="first">""", html);
        Assert.Matches("""<textarea id="rewardSettings-judgeTemplate"[^>]*>""", html);
    }

    public void Dispose()
    {
        _app.Dispose();
        Directory.Delete(_app.Folder, recursive: true);
    }
}
