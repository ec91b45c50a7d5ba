using System.Text.Json.Nodes;
using BabyPpo.Training;
using BabyPpo.Training.Inference;
using BabyPpo.Training.Model;

namespace BabyPpo.Tests.Inference;

/// <summary>Generation against HF transformers' greedy continuations (tiny-llama expected.json → greedy).</summary>
public sealed class GenerationParityTests : IClassFixture<TinyLlamaFixture>
{
    readonly TinyLlamaFixture _tiny;

    public GenerationParityTests(TinyLlamaFixture tiny) => _tiny = tiny;

    static List<(string Prompt, int[] PromptIds, int[] NewIds)> Expected()
    {
        var json = JsonNode.Parse(File.ReadAllText(SharedData.Fixture("models", "tiny-llama", "expected.json")))!;
        return json["greedy"]!.AsArray().Select(g => (
            g!["prompt"]!.GetValue<string>(),
            g["prompt_ids"]!.AsArray().Select(x => x!.GetValue<int>()).ToArray(),
            g["new_ids"]!.AsArray().Select(x => x!.GetValue<int>()).ToArray())).ToList();
    }

    static readonly SamplingOptions Greedy = new() { Greedy = true, MaxNewTokens = 12, EosTokenId = -1 };

    [Fact]
    public void GreedyContinuationsMatchHuggingFaceOneByOne()
    {
        foreach (var (prompt, promptIds, newIds) in Expected())
        {
            Assert.Equal(promptIds, _tiny.Tokenizer.Encode(prompt));
            var completion = Assert.Single(_tiny.Generator.Generate([prompt], Greedy));
            Assert.Equal(newIds, completion.NewIds);
        }
    }

    [Fact]
    public void GreedyContinuationsMatchHuggingFaceAsOneLeftPaddedBatch()
    {
        var expected = Expected();
        var completions = _tiny.Generator.Generate(expected.Select(e => e.Prompt).ToList(), Greedy);
        for (int i = 0; i < expected.Count; i++) Assert.Equal(expected[i].NewIds, completions[i].NewIds);
    }

    [Fact]
    public void GreedyWithoutKvCacheGivesTheSameTokens()
    {
        var expected = Expected();
        var completions = _tiny.Generator.Generate(expected.Select(e => e.Prompt).ToList(), Greedy with { UseKvCache = false });
        for (int i = 0; i < expected.Count; i++) Assert.Equal(expected[i].NewIds, completions[i].NewIds);
        var plain = _tiny.Generator.Generate(expected.Select(e => e.Prompt).ToList(), Greedy with { UseKvCache = false, AllPositionLogits = true });
        for (int i = 0; i < expected.Count; i++) Assert.Equal(expected[i].NewIds, plain[i].NewIds);
    }

    [Fact]
    public void SamplingWithTheSameSeedIsReproducibleAndAnotherSeedDiffers()
    {
        var prompts = Expected().Select(e => e.Prompt).ToList();
        var options = new SamplingOptions { MaxNewTokens = 12, Seed = 7, TopP = 0.9, Temperature = 1.3, EosTokenId = -1 };
        var first = _tiny.Generator.Generate(prompts, options);
        var second = _tiny.Generator.Generate(prompts, options);
        var other = _tiny.Generator.Generate(prompts, options with { Seed = 8 });
        Assert.Equal(first.Select(c => c.NewIds), second.Select(c => c.NewIds));
        Assert.NotEqual(first.Select(c => string.Join(",", c.NewIds)), other.Select(c => string.Join(",", c.NewIds)));
    }

    [Fact]
    public void TopKOneSamplingEqualsGreedy()
    {
        var expected = Expected();
        var completions = _tiny.Generator.Generate(expected.Select(e => e.Prompt).ToList(),
            new SamplingOptions { TopK = 1, Temperature = 0.7, MaxNewTokens = 12, Seed = 3, EosTokenId = -1 });
        for (int i = 0; i < expected.Count; i++) Assert.Equal(expected[i].NewIds, completions[i].NewIds);
    }

    [Fact]
    public void ReturnedLogProbsAreTheModelsOwnUnfilteredLogProbs()
    {
        // Sampled with a tight nucleus and temperature: the returned log-probs must still be those of
        // the plain model (what PPO needs), i.e. equal to scoring prompt + answer.
        var prompt = Expected()[0].Prompt;
        var completion = _tiny.Generator.Generate([prompt], new SamplingOptions { MaxNewTokens = 8, Seed = 11, TopP = 0.5, Temperature = 0.6, EosTokenId = -1 })[0];
        var scorer = new Scorer(_tiny.Model, _tiny.Tokenizer);
        var scores = scorer.Score([[.. completion.PromptIds, .. completion.NewIds]], [completion.PromptIds.Length])[0];
        Assert.Equal(completion.NewIds.Length, scores.LogProbs.Length);
        for (int i = 0; i < scores.LogProbs.Length; i++) Assert.Equal(scores.LogProbs[i], completion.LogProbs[i], 1e-4);
    }

    [Fact]
    public void MinNewTokensForbidsEosAndEosEndsTheSequence()
    {
        var prompt = Expected()[2].Prompt;          // greedy continues with 9, 9, 9, 111, …
        var stopAtNine = new SamplingOptions { Greedy = true, MaxNewTokens = 6, EosTokenId = 9 };
        var stopped = _tiny.Generator.Generate([prompt], stopAtNine)[0];
        Assert.Equal([9], stopped.NewIds);
        Assert.Equal(FinishReason.Eos, stopped.FinishReason);
        var delayed = _tiny.Generator.Generate([prompt], stopAtNine with { MinNewTokens = 3 })[0];
        Assert.DoesNotContain(9, delayed.NewIds.Take(3));
        Assert.True(delayed.NewIds.Length >= 3);
    }

    [Fact]
    public void StopStringEndsTheSequenceOnceItsTextContainsIt()
    {
        var prompt = Expected()[1].Prompt;          // greedy continues " notnamename putting putting …"
        var completion = _tiny.Generator.Generate([prompt], Greedy with { StopStrings = ["putting"] })[0];
        Assert.Equal(FinishReason.StopString, completion.FinishReason);
        Assert.EndsWith("putting", completion.Text);
        Assert.Equal(4, completion.NewIds.Length);
    }

    [Theory]
    [InlineData(0, 1.0, 1.0, "max_new_tokens")]
    [InlineData(5, 0.0, 1.0, "top_p")]
    [InlineData(5, 1.5, 1.0, "top_p")]
    [InlineData(5, 0.9, -1.0, "temperature")]
    public void InvalidSamplingOptionsAreRefusedClearly(int maxNew, double topP, double temperature, string named)
    {
        var error = Assert.Throws<InputException>(() => _tiny.Generator.Generate(["the"], new SamplingOptions { MaxNewTokens = maxNew, TopP = topP, Temperature = temperature }));
        Assert.Contains(named, error.Message);
    }

    [Fact]
    public void EmptyPromptListAndOverlongPromptsAreRefusedClearly()
    {
        Assert.Contains("no prompts", Assert.Throws<InputException>(() => _tiny.Generator.Generate(Array.Empty<string>(), Greedy)).Message);
        var overlong = Enumerable.Repeat(308, 250).ToArray();
        Assert.Contains("context window", Assert.Throws<InputException>(() => _tiny.Generator.Generate([overlong], Greedy)).Message);
        var truncated = _tiny.Generator.Generate([overlong], Greedy with { TruncatePrompts = true })[0];
        Assert.Equal(256 - 12, truncated.PromptIds.Length);
    }
}

/// <summary>tiny-llama loaded once per test class.</summary>
public sealed class TinyLlamaFixture : IDisposable
{
    public TinyLlamaFixture()
    {
        Pretrained = Checkpoint.Load(SharedData.Fixture("models", "tiny-llama"));
        Generator = new Generator(Pretrained.Model, Pretrained.Tokenizer);
    }

    public Pretrained Pretrained { get; }
    public CausalLM Model => Pretrained.Model;
    public BabyPpo.Training.Text.Tokenizer Tokenizer => Pretrained.Tokenizer;
    public Generator Generator { get; }

    public void Dispose() => Pretrained.Dispose();
}
