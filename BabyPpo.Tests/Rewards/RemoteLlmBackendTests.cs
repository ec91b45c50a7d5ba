using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using BabyPpo.Cli;
using BabyPpo.Training;
using BabyPpo.Training.Rewards;
using Microsoft.AspNetCore.Builder;

namespace BabyPpo.Tests.Rewards;

/// <summary>
/// Two real <c>babyppo serve</c> servers on 127.0.0.1 (free ports): tiny-olmo2 with the byte-level
/// tokenizer (the judge) and tiny-llama (the teacher), beside in-process back-ends of the same folders.
/// </summary>
public sealed class ServedModelsFixture : IAsyncLifetime
{
    public LocalLlmBackend LocalJudge { get; } = new(SharedData.Fixture("models", "tiny-olmo2"), SharedData.Fixture("tokenizers", "bytelevel-bpe"));
    public LocalLlmBackend LocalTeacher { get; } = new(SharedData.Fixture("models", "tiny-llama"));
    public string JudgeUrl { get; private set; } = "";
    public string TeacherUrl { get; private set; } = "";
    WebApplication? _judgeServer, _teacherServer;

    public async Task InitializeAsync()
    {
        _judgeServer = await Serve.StartAsync(new OpenAiEndpoint(LocalJudge), "127.0.0.1", 0);
        _teacherServer = await Serve.StartAsync(new OpenAiEndpoint(LocalTeacher, "teacher"), "127.0.0.1", 0);
        JudgeUrl = _judgeServer.Urls.First();
        TeacherUrl = _teacherServer.Urls.First();
    }

    public async Task DisposeAsync()
    {
        if (_judgeServer is not null) await _judgeServer.DisposeAsync();
        if (_teacherServer is not null) await _teacherServer.DisposeAsync();
        LocalJudge.Dispose();
        LocalTeacher.Dispose();
    }
}

/// <summary>The OpenAI-compatible client against a real server gives what the in-process back-end gives.</summary>
public sealed class RemoteLlmBackendTests : IClassFixture<ServedModelsFixture>
{
    readonly ServedModelsFixture _served;

    public RemoteLlmBackendTests(ServedModelsFixture served) => _served = served;

    static readonly RewardInput[] Exchanges =
    [
        new("what is that ?", "it is a ball .", ["a ball .", "it is a dog .", "look !"]),
        new("do you want more juice ?", "yes please", ["yes", "no more juice", "yes please mummy"]),
        new("where is the cat ?", "", ["there", "under the table ."]),
        new("who is that ?", "café au lait 🎈 für dich", ["daddy", "it is granny ."]),
        new("look at the", "doggy", ["big bus .", "the moon"]),
    ];

    [Fact]
    public void JudgeScoresOverHttpEqualTheInProcessOnes()
    {
        using var remote = new OpenAiBackend(new OpenAiOptions { BaseUrl = _served.JudgeUrl });   // model: the first listed
        var local = new JudgeReward(_served.LocalJudge).Rate(Exchanges);
        var viaHttp = new JudgeReward(remote).Rate(Exchanges);
        Assert.Equal(local.Select(r => r.Output), viaHttp.Select(r => r.Output));
        Assert.Equal(local.Select(r => r.Rating), viaHttp.Select(r => r.Rating));
        Assert.Equal(new JudgeReward(_served.LocalJudge).Score(Exchanges).Values, new JudgeReward(remote).Score(Exchanges).Values);
        Assert.StartsWith("tiny-olmo2 at ", remote.Name);
    }

    [Fact]
    public void ContinuationLogProbabilitiesOverHttpEqualTheInProcessOnes()
    {
        using var remote = new OpenAiBackend(new OpenAiOptions { BaseUrl = _served.TeacherUrl + "/v1/", Model = "teacher", PromptsPerRequest = 4 });
        var pairs = Exchanges.SelectMany(e => e.References.Append(e.Chi).Where(x => x.Length > 0).Select(x => (ConfidenceReward.Context(e.Mot), x)))
            .Append(("*MOT: what is that ?", " *CHI: it is a ball ."))
            .Append(("naïve ", "é🎈é"))
            .ToList();
        var local = _served.LocalTeacher.ScoreContinuations(pairs);
        var viaHttp = remote.ScoreContinuations(pairs);
        Assert.Equal(pairs.Count, viaHttp.Count);
        for (int i = 0; i < pairs.Count; i++)
        {
            Assert.Equal(local[i].Tokens, viaHttp[i].Tokens);
            Assert.Equal(local[i].LogProb, viaHttp[i].LogProb, 1e-4);
        }
        var confidenceLocal = new ConfidenceReward(_served.LocalTeacher).Score(Exchanges).Values;
        var confidenceRemote = new ConfidenceReward(remote).Score(Exchanges).Values;
        Assert.Equal(confidenceLocal, confidenceRemote);
    }

    [Fact]
    public void GreedyCompletionsWithStopStringsAndSeveralSamplesMatchInProcess()
    {
        using var remote = new OpenAiBackend(new OpenAiOptions { BaseUrl = _served.TeacherUrl, PromptsPerRequest = 2 });
        string[] prompts = ["*MOT: what is that ? *CHI:", "*MOT: look at the", "the"];
        var sampling = LlmSampling.Greedy(12) with { N = 2, Stop = [" the", "ing"] };
        var local = _served.LocalTeacher.Complete(prompts, sampling);
        var viaHttp = remote.Complete(prompts, sampling);
        for (int i = 0; i < prompts.Length; i++)
            Assert.Equal(local[i], viaHttp[i]);
    }

    [Fact]
    public async Task EchoedLogprobsDescribeEveryPromptToken()
    {
        var response = await Post(_served.TeacherUrl, """{"model": "teacher", "prompt": "where is the way ?", "max_tokens": 0, "echo": true, "logprobs": 0}""");
        Assert.Equal(HttpStatusCode.OK, response.Status);
        var choice = response.Body["choices"]![0]!;
        Assert.Equal("where is the way ?", choice["text"]!.GetValue<string>());
        var logprobs = choice["logprobs"]!;
        var tokens = logprobs["tokens"]!.AsArray().Select(t => t!.GetValue<string>()).ToArray();
        var values = logprobs["token_logprobs"]!.AsArray();
        var offsets = logprobs["text_offset"]!.AsArray().Select(o => o!.GetValue<int>()).ToArray();
        var ids = _served.LocalTeacher.Tokenizer.Encode("where is the way ?");
        Assert.Equal(ids.Length, tokens.Length);
        Assert.Equal("<s>", tokens[0]);
        Assert.Null(values[0]);
        Assert.Equal("where is the way ?", string.Concat(tokens.Skip(1)));
        Assert.Equal(0, offsets[0]);
        for (int t = 1; t < tokens.Length; t++) Assert.Equal(offsets[t - 1] + (t == 1 ? 0 : tokens[t - 1].Length), offsets[t]);
        // The fixture's summed log-probability of this sentence (tokens 1..T−1).
        var fixture = JsonNode.Parse(File.ReadAllText(SharedData.Fixture("models", "tiny-llama", "expected.json")))!["sentences"]!.AsArray()
            .Single(s => s!["text"]!.GetValue<string>() == "where is the way ?")!["logprob_sum_after_first"]!.GetValue<double>();
        Assert.Equal(fixture, values.Skip(1).Sum(v => v!.GetValue<double>()), 1e-3);
        Assert.Equal(ids.Length, response.Body["usage"]!["prompt_tokens"]!.GetValue<int>());
    }

    [Fact]
    public async Task ModelsListsTheServedName()
    {
        using var client = new HttpClient();
        var models = JsonNode.Parse(await client.GetStringAsync(_served.TeacherUrl + "/v1/models"))!;
        Assert.Equal("teacher", models["data"]![0]!["id"]!.GetValue<string>());
    }

    [Theory]
    [InlineData("""{"prompt": [1, 2, 3]}""", 400, "prompt")]
    [InlineData("""{"prompt": "hi", "stream": true}""", 400, "stream")]
    [InlineData("""{"prompt": "hi", "max_tokens": 0}""", 400, "echo")]
    [InlineData("""{"prompt": "hi", "temperature": -1}""", 400, "temperature")]
    [InlineData("""{"prompt": "hi", "model": "gpt-4"}""", 404, "teacher")]
    [InlineData("""not json""", 400, "JSON")]
    public async Task BadRequestsGetAnOpenAiErrorBody(string body, int status, string mentioned)
    {
        var response = await Post(_served.TeacherUrl, body);
        Assert.Equal(status, (int)response.Status);
        Assert.Contains(mentioned, response.Body["error"]!["message"]!.GetValue<string>());
    }

    [Fact]
    public void ClientErrorsNameTheUrlStatusAndBody()
    {
        using var remote = new OpenAiBackend(new OpenAiOptions { BaseUrl = _served.TeacherUrl, Model = "gpt-4" });
        var e = Assert.Throws<InputException>(() => remote.Complete(["hi"], LlmSampling.Greedy(2)));
        Assert.Contains(_served.TeacherUrl + "/v1/completions", e.Message);
        Assert.Contains("404", e.Message);
        Assert.Contains("serves 'teacher'", e.Message);
    }

    static async Task<(HttpStatusCode Status, JsonNode Body)> Post(string url, string body)
    {
        using var client = new HttpClient();
        using var response = await client.PostAsync(url + "/v1/completions", new StringContent(body, Encoding.UTF8, "application/json"));
        return (response.StatusCode, JsonNode.Parse(await response.Content.ReadAsStringAsync())!);
    }
}

/// <summary>The client's retries, back-off, ordering and errors, against a scripted HTTP handler.</summary>
public sealed class OpenAiBackendRetryTests
{
    /// <summary>Answers each request with the next scripted response (or throws it), recording what came.</summary>
    sealed class ScriptedHandler(params Func<HttpRequestMessage, Task<HttpResponseMessage>>[] script) : HttpMessageHandler
    {
        public List<string> Bodies { get; } = [];
        int _next;

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            Bodies.Add(request.Content is null ? "" : await request.Content.ReadAsStringAsync(cancellationToken));
            var step = script[Math.Min(_next++, script.Length - 1)];
            return await step(request).WaitAsync(cancellationToken);
        }
    }

    static Func<HttpRequestMessage, Task<HttpResponseMessage>> Reply(HttpStatusCode status, string body) =>
        _ => Task.FromResult(new HttpResponseMessage(status) { Content = new StringContent(body, Encoding.UTF8, "application/json") });

    static OpenAiBackend Client(ScriptedHandler handler, int retries = 3) => new(new OpenAiOptions
    {
        BaseUrl = "http://judge.test:8000",
        Model = "judge",
        MaxRetries = retries,
        InitialBackoff = TimeSpan.FromMilliseconds(1),
        Timeout = TimeSpan.FromMilliseconds(300),
    }, handler);

    const string TwoChoicesReversed = """{"choices": [{"index": 1, "text": "second", "finish_reason": "length"}, {"index": 0, "text": "first\nMother: x", "finish_reason": "stop"}]}""";

    [Fact]
    public void RetriesOn429And5xxAndTimeoutsThenPutsChoicesInPromptOrder()
    {
        var handler = new ScriptedHandler(
            Reply(HttpStatusCode.TooManyRequests, "slow down"),
            Reply(HttpStatusCode.ServiceUnavailable, "loading"),
            async _ => { await Task.Delay(5000); return new HttpResponseMessage(HttpStatusCode.OK); },   // times out
            Reply(HttpStatusCode.OK, TwoChoicesReversed));
        using var client = Client(handler);
        var result = client.Complete(["p0", "p1"], LlmSampling.Greedy(5) with { Stop = ["\n"] });
        Assert.Equal(4, handler.Bodies.Count);
        Assert.Equal(new LlmCompletion("first", "stop"), result[0][0]);
        Assert.Equal(new LlmCompletion("second", "length"), result[1][0]);
        var sent = JsonNode.Parse(handler.Bodies[^1])!;
        Assert.Equal("judge", sent["model"]!.GetValue<string>());
        Assert.Equal(["p0", "p1"], sent["prompt"]!.AsArray().Select(p => p!.GetValue<string>()));
        Assert.Equal(0, sent["temperature"]!.GetValue<double>());
        Assert.Equal(5, sent["max_tokens"]!.GetValue<int>());
    }

    [Fact]
    public void GivesUpAfterTheRetriesNamingTheFailure()
    {
        var handler = new ScriptedHandler(Reply(HttpStatusCode.BadGateway, "upstream down"));
        using var client = Client(handler, retries: 2);
        var e = Assert.Throws<InputException>(() => client.Complete(["p"], LlmSampling.Greedy(1)));
        Assert.Equal(3, handler.Bodies.Count);
        Assert.Contains("http://judge.test:8000/v1/completions", e.Message);
        Assert.Contains("502", e.Message);
        Assert.Contains("upstream down", e.Message);
        Assert.Contains("3 attempts", e.Message);
    }

    [Fact]
    public void ClientErrorsAreNotRetried()
    {
        var handler = new ScriptedHandler(Reply(HttpStatusCode.Unauthorized, """{"error": {"message": "bad key"}}"""));
        using var client = Client(handler);
        var e = Assert.Throws<InputException>(() => client.Complete(["p"], LlmSampling.Greedy(1)));
        Assert.Single(handler.Bodies);
        Assert.Contains("401", e.Message);
        Assert.Contains("bad key", e.Message);
    }

    [Fact]
    public void MissingOrRepeatedChoicesAreRefused()
    {
        var handler = new ScriptedHandler(Reply(HttpStatusCode.OK, """{"choices": [{"index": 0, "text": "a"}, {"index": 0, "text": "b"}]}"""));
        using var client = Client(handler);
        Assert.Contains("index 0", Assert.Throws<InputException>(() => client.Complete(["p0", "p1"], LlmSampling.Greedy(1))).Message);
    }

    [Fact]
    public void ContinuationTokensAreThoseEndingInsideTheContinuation()
    {
        // "<s>" has no characters; " the" ends inside the context "hi the", "re" and " ." after it
        // (the continuation "re ." starts at character 6).
        var choice = JsonNode.Parse("""
            {"logprobs": {"tokens": ["<s>", "hi", " the", "re", " ."], "token_logprobs": [null, -1.0, -2.0, -4.0, -8.0], "text_offset": [0, 0, 2, 6, 8]}}
            """)!;
        var score = OpenAiBackend.ContinuationFromEcho(choice, "re .".Length, "url");
        Assert.Equal(new ContinuationScore(-12.0, 2), score);
        // A token that spans the boundary ("e r" across "…th|e r…") belongs to the continuation.
        var spanning = JsonNode.Parse("""
            {"logprobs": {"tokens": ["th", "e r", "un"], "token_logprobs": [null, -1.5, -0.5], "text_offset": [0, 2, 5]}}
            """)!;
        Assert.Equal(new ContinuationScore(-2.0, 2), OpenAiBackend.ContinuationFromEcho(spanning, " run".Length, "url"));
    }

    [Fact]
    public void OffsetsCountCodePointsAsTheServersDoSoAnEmojiIsOneCharacter()
    {
        // "hi there" + " 🎈 ok": vLLM's offsets count the balloon as one character, so the echoed text
        // is 13 characters long and the continuation (5 characters) starts at 8, after " there".
        var choice = JsonNode.Parse("""
            {"logprobs": {"tokens": ["<s>", "hi", " there", " 🎈", " ok"], "token_logprobs": [null, -1.0, -2.0, -4.0, -8.0], "text_offset": [0, 0, 2, 8, 10]}}
            """)!;
        Assert.Equal(new ContinuationScore(-12.0, 2), OpenAiBackend.ContinuationFromEcho(choice, " 🎈 ok".EnumerateRunes().Count(), "url"));
    }
}
