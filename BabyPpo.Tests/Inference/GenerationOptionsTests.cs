using System.Text.Json.Nodes;
using BabyPpo.Tests.Cli;
using BabyPpo.Training;
using BabyPpo.Training.Inference;
using BabyPpo.Training.Model;

namespace BabyPpo.Tests.Inference;

/// <summary>How generation reads the model's EOS ids and checks its options and prompts.</summary>
public sealed class GenerationOptionsTests : IClassFixture<TinyLlamaFixture>
{
    static readonly string TinyLlama = SharedData.Fixture("models", "tiny-llama");
    readonly TinyLlamaFixture _tiny;

    public GenerationOptionsTests(TinyLlamaFixture tiny) => _tiny = tiny;

    /// <summary>The third greedy prompt of expected.json and the 12 ids HF continues it with.</summary>
    static (string Prompt, int[] NewIds) ThirdGreedyPrompt()
    {
        var g = JsonNode.Parse(File.ReadAllText(Path.Combine(TinyLlama, "expected.json")))!["greedy"]![2]!;
        return (g["prompt"]!.GetValue<string>(), g["new_ids"]!.AsArray().Select(x => x!.GetValue<int>()).ToArray());
    }

    [Fact]
    public void ListOfEosIdsInConfigStopsAtAnyOfThem()
    {
        var (prompt, hfIds) = ThirdGreedyPrompt();
        // An id the greedy continuation reaches, listed after the configured EOS (2), which it never reaches.
        int later = hfIds[3];
        Assert.DoesNotContain(2, hfIds);
        Assert.DoesNotContain(later, hfIds[..3]);
        using var folder = TempModel.CopyOf(TinyLlama);
        var configPath = Path.Combine(folder.Path, "config.json");
        var config = JsonNode.Parse(File.ReadAllText(configPath))!;
        config["eos_token_id"] = new JsonArray(2, later);
        File.WriteAllText(configPath, config.ToJsonString());

        using var pretrained = Checkpoint.Load(folder.Path);
        var completion = new Generator(pretrained.Model, pretrained.Tokenizer)
            .Generate([prompt], new SamplingOptions { Greedy = true, MaxNewTokens = 12 })[0];
        Assert.Equal(hfIds[..4], completion.NewIds);
        Assert.Equal(FinishReason.Eos, completion.FinishReason);

        // min_new_tokens forbids every EOS id, so the sequence runs past the fourth token.
        var delayed = new Generator(pretrained.Model, pretrained.Tokenizer)
            .Generate([prompt], new SamplingOptions { Greedy = true, MaxNewTokens = 12, MinNewTokens = 5 })[0];
        Assert.True(delayed.NewIds.Length >= 5);
        Assert.DoesNotContain(later, delayed.NewIds[..5]);
        Assert.DoesNotContain(2, delayed.NewIds[..5]);
    }

    [Theory]
    [InlineData(-1.0, 1.0, 0, "temperature")]
    [InlineData(double.NaN, 1.0, 0, "temperature")]
    [InlineData(1.0, 1.5, 0, "top_p")]
    [InlineData(1.0, 0.0, 0, "top_p")]
    [InlineData(1.0, 1.0, -3, "top_k")]
    public void SamplingOptionsAreCheckedEvenWhenGreedy(double temperature, double topP, int topK, string named)
    {
        var options = new SamplingOptions { Greedy = true, Temperature = temperature, TopP = topP, TopK = topK, MaxNewTokens = 2 };
        Assert.Contains(named, Assert.Throws<InputException>(() => _tiny.Generator.Generate(["the"], options)).Message);
    }

    [Fact]
    public void TemperatureZeroIsGreedyOnlyWhenGreedyIsAskedFor()
    {
        var (prompt, hfIds) = ThirdGreedyPrompt();
        var greedy = _tiny.Generator.Generate([prompt], new SamplingOptions { Greedy = true, Temperature = 0, MaxNewTokens = 12, EosTokenId = -1 })[0];
        Assert.Equal(hfIds, greedy.NewIds);
        var error = Assert.Throws<InputException>(() => _tiny.Generator.Generate([prompt], new SamplingOptions { Temperature = 0, MaxNewTokens = 2 }));
        Assert.Contains("temperature must be > 0 when sampling", error.Message);
    }

    [Theory]
    [InlineData(1000)]
    [InlineData(-1)]
    public void PromptIdOutsideTheVocabularyIsRefused(int id)
    {
        var error = Assert.Throws<InputException>(() => _tiny.Generator.Generate([new[] { 1, id }], new SamplingOptions { Greedy = true, MaxNewTokens = 2 }));
        Assert.Contains($"token id {id}", error.Message);
        Assert.Contains("0..999", error.Message);
    }

    [Fact]
    public void OverlongPromptErrorNamesTheTruncateOption()
    {
        var overlong = Enumerable.Repeat(308, 250).ToArray();
        var error = Assert.Throws<InputException>(() => _tiny.Generator.Generate([overlong], new SamplingOptions { Greedy = true, MaxNewTokens = 12 }));
        Assert.Contains("--truncate", error.Message);
        Assert.Contains("244", error.Message);   // 256 − 12 tokens are kept
    }

    [Fact]
    public void MaxNewTokensThatFillTheWholeWindowIsRefusedEvenWithTruncation()
    {
        var options = new SamplingOptions { Greedy = true, MaxNewTokens = 256, TruncatePrompts = true };
        Assert.Contains("leaves no room", Assert.Throws<InputException>(() => _tiny.Generator.Generate(["the"], options)).Message);
    }
}
