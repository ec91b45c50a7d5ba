using System.Net;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using BabyPpo.Training.Data;

namespace BabyPpo.Tests.Web;

/// <summary>Every catalogue data set is shown, the missing ones with where to get them and where to put them.</summary>
[Collection(WebCollection.Name)]
public sealed class DataTests : IDisposable
{
    readonly string _root = Directory.CreateTempSubdirectory("babyppo-data-").FullName;
    readonly TestApp _app;

    public DataTests()
    {
        // A data root with one CHILDES set (the word-matched dialogue pairs) and nothing else.
        Directory.CreateDirectory(Path.Combine(_root, "dialogue"));
        File.Copy(SharedData.Data("dialogue", "eval_words.json"), Path.Combine(_root, "dialogue", "eval_words.json"));
        _app = new TestApp(TestDatabase.Sqlite, settings: new Dictionary<string, string> { ["Data:Root"] = _root });
    }

    [Fact]
    public async Task TheDataEndpointListsEverySetPresentOrMissingWithItsPathsAndSource()
    {
        using var client = _app.CreateClient();
        var sets = JsonNode.Parse(await client.GetStringAsync("/api/data"))!.AsArray().ToDictionary(s => s!["name"]!.GetValue<string>(), s => s!);

        Assert.Equal(DataCatalog.Known.Select(k => k.Name).Order(), sets.Keys.Order());
        bool Present(string name) => sets[name]["present"]!.GetValue<bool>();
        Assert.True(Present("dialogue-eval-words"));
        Assert.True(Present("demo-prompts"));
        Assert.True(Present("lexical-decision-demo"));
        Assert.False(Present("dialogue-eval-tokens"));
        Assert.False(Present("dialogue-train"));
        Assert.False(Present("zorro"));

        var train = sets["dialogue-train"];
        Assert.Equal("prompt-set", train["kind"]!.GetValue<string>());
        Assert.Equal([Path.Combine(_root, "dialogue", "train.json"), Path.Combine(_root, "dialogue", "teacher_single.json")],
            train["paths"]!.AsArray().Select(p => p!.GetValue<string>()));
        Assert.Contains("clause-bielefeld", train["source"]!.GetValue<string>());
        Assert.Contains("github.com/phueb", sets["zorro"]["source"]!.GetValue<string>());
        Assert.Equal(Path.Combine(_root, "zorro"), sets["zorro"]["paths"]![0]!.GetValue<string>());
        Assert.False(string.IsNullOrWhiteSpace(sets["zorro"]["licence"]!.GetValue<string>()));

        // What is missing is not offered: the form's prompt sets and evaluations follow the same catalogue.
        var request = TestApp.TinyRun("missing-set", steps: 1);
        request["promptSet"] = "dialogue-train";
        var response = await client.PostAsync("/api/runs", new StringContent(request.ToJsonString(), System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
    }

    [Fact]
    public async Task TheDataPageShowsTheMissingSetsWithWhereToGetThem()
    {
        using var client = _app.CreateClient();
        var html = Regex.Replace(WebUtility.HtmlDecode(await client.GetStringAsync("/data")), "\\s+", " ");

        var missing = Regex.Match(html, """<table class="grid" id="missing-data">(.*?)</table>""").Groups[1].Value;
        foreach (var status in DataCatalog.Resolve(_root, SharedData.DemoData))
        {
            var row = Regex.Match(missing, $"""<tr data-set="{status.Info.Name}">(.*?)</tr>""").Groups[1].Value;
            if (status.Present)
            {
                Assert.Equal("", row);
                continue;
            }
            Assert.Contains(status.Info.Source, row);
            Assert.All(status.FullPaths, path => Assert.Contains(path, row));
        }
        Assert.Contains("""<tr data-set="dialogue-eval-words">""", Regex.Match(html, """<table class="grid" id="present-data">(.*?)</table>""").Groups[1].Value);
        Assert.Matches("""<nav[^>]*>.*<a href="data"[^>]*>Data</a>""", html);
    }

    public void Dispose()
    {
        _app.Dispose();
        Directory.Delete(_app.Folder, recursive: true);
        Directory.Delete(_root, recursive: true);
    }
}
