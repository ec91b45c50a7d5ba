using System.Text.Json.Nodes;
using BabyPpo.Training;
using BabyPpo.Training.Rewards;

namespace BabyPpo.Tests.Rewards;

/// <summary>The in-process back-end over checkpoint folders (Llama with its tokenizer, OLMo-2 with a separate one).</summary>
public sealed class LocalLlmBackendTests : IClassFixture<TinyTeacherFixture>
{
    readonly LocalLlmBackend _llama;

    public LocalLlmBackendTests(TinyTeacherFixture fixture) => _llama = fixture.Teacher;

    static JsonArray Greedy() =>
        JsonNode.Parse(File.ReadAllText(SharedData.Fixture("models", "tiny-llama", "expected.json")))!["greedy"]!.AsArray();

    [Fact]
    public void GreedyCompletionsAreTheFixtureTokensInPromptOrder()
    {
        var greedy = Greedy();
        var prompts = greedy.Select(g => g!["prompt"]!.GetValue<string>()).ToList();
        var completions = _llama.Complete(prompts, LlmSampling.Greedy(12));
        for (int i = 0; i < prompts.Count; i++)
        {
            var expected = _llama.Tokenizer.Decode(greedy[i]!["new_ids"]!.AsArray().Select(x => x!.GetValue<int>()));
            var only = Assert.Single(completions[i]);
            Assert.Equal(expected, only.Text);
            Assert.Equal("length", only.FinishReason);
        }
    }

    [Fact]
    public void StopStringsCutTheTextBeforeThem()
    {
        var greedy = Greedy()[2]!;
        var full = _llama.Tokenizer.Decode(greedy["new_ids"]!.AsArray().Select(x => x!.GetValue<int>()));
        // Stop at a piece from the middle of the known continuation.
        var stop = full.Substring(full.Length / 2, 2);
        var cut = full[..full.IndexOf(stop, StringComparison.Ordinal)];
        var completion = _llama.Complete([greedy["prompt"]!.GetValue<string>()], LlmSampling.Greedy(12) with { Stop = [stop] })[0][0];
        Assert.Equal(cut, completion.Text);
        Assert.Equal("stop", completion.FinishReason);
    }

    [Fact]
    public void SamplesNCompletionsPerPromptReproduciblyWithASeed()
    {
        var sampling = new LlmSampling { Temperature = 0.8, TopP = 0.8, MaxTokens = 8, N = 3, Seed = 7 };
        string[] prompts = ["*MOT: look at the", "the"];
        var a = _llama.Complete(prompts, sampling);
        var b = _llama.Complete(prompts, sampling);
        Assert.Equal(2, a.Count);
        Assert.All(a, samples => Assert.Equal(3, samples.Count));
        Assert.Equal(a.SelectMany(s => s.Select(c => c.Text)), b.SelectMany(s => s.Select(c => c.Text)));
    }

    [Fact]
    public void Olmo2NeedsASeparateTokenizerAndRunsWithOne()
    {
        var folder = SharedData.Fixture("models", "tiny-olmo2");
        var e = Assert.Throws<InputException>(() => new LocalLlmBackend(folder));
        Assert.Contains(folder, e.Message);
        Assert.Contains("tokenizer", e.Message);
        using var olmo = new LocalLlmBackend(folder, SharedData.Fixture("tokenizers", "bytelevel-bpe"));
        var completions = olmo.Complete(["MOT: hi\nCHI:"], LlmSampling.Greedy(5));
        Assert.Single(Assert.Single(completions));
        var score = Assert.Single(olmo.ScoreContinuations([("hi ", "there")]));
        Assert.True(score.Tokens >= 1 && score.LogProb < 0, $"{score}");
    }

    [Fact]
    public void EndpointWorkLeavesNoLiveTensorsBehind()
    {
        var endpoint = new OpenAiEndpoint(_llama);
        const string request = """{"prompt": ["*MOT: look at the", "the"], "max_tokens": 4, "n": 2, "echo": true, "logprobs": 1, "temperature": 0.7, "stop": ["."]}""";
        void Work()
        {
            Assert.Equal(200, endpoint.Complete(request).Status);
            _llama.ScoreContinuations([("what is that ? ", "a ball")]);
        }

        Work();
        long baseline = TorchSharp.DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        for (int i = 0; i < 3; i++)
        {
            Work();
            Assert.Equal(baseline, TorchSharp.DisposeScopeManager.Statistics.ThreadTotalLiveCount);
        }
    }

    [Fact]
    public void EndpointChoicesAreOrderedPromptBySampleAndCutAtStops()
    {
        var endpoint = new OpenAiEndpoint(_llama);
        var greedy = Greedy();
        var body = new JsonObject
        {
            ["prompt"] = new JsonArray(greedy.Select(g => (JsonNode)JsonValue.Create(g!["prompt"]!.GetValue<string>())).ToArray()),
            ["max_tokens"] = 12, ["temperature"] = 0, ["n"] = 2, ["logprobs"] = 1,
        };
        var result = endpoint.Complete(body.ToJsonString());
        Assert.Equal(200, result.Status);
        var choices = result.Body["choices"]!.AsArray();
        Assert.Equal(6, choices.Count);
        for (int i = 0; i < 3; i++)
            for (int k = 0; k < 2; k++)
            {
                var choice = choices[i * 2 + k]!;
                var ids = greedy[i]!["new_ids"]!.AsArray().Select(x => x!.GetValue<int>()).ToArray();
                Assert.Equal(i * 2 + k, choice["index"]!.GetValue<int>());
                Assert.Equal(_llama.Tokenizer.Decode(ids), choice["text"]!.GetValue<string>());
                Assert.Equal(12, choice["logprobs"]!["token_logprobs"]!.AsArray().Count);
                Assert.All(choice["logprobs"]!["token_logprobs"]!.AsArray(), v => Assert.True(v!.GetValue<double>() <= 0));
            }
        Assert.Equal(3 * 2 * 12, result.Body["usage"]!["completion_tokens"]!.GetValue<int>());
    }

    [Fact]
    public void OpenNamesAFolderOrAUrl()
    {
        using var remote = LlmBackend.Open("http://127.0.0.1:9/v1", model: "m");
        Assert.IsType<OpenAiBackend>(remote);
        Assert.Contains("tokenizer", Assert.Throws<InputException>(() => LlmBackend.Open("http://127.0.0.1:9", tokenizer: "x")).Message);
        Assert.Contains("not found", Assert.Throws<InputException>(() => LlmBackend.Open("/no/such/model")).Message);
    }
}
