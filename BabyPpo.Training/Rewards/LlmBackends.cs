using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using BabyPpo.Training.Inference;
using BabyPpo.Training.Model;
using BabyPpo.Training.Text;
using Device = TorchSharp.torch.Device;

namespace BabyPpo.Training.Rewards;

// The LLMs behind the judge and the teacher: a checkpoint folder run in-process (LocalLlmBackend),
// or any OpenAI-compatible /v1/completions server — vLLM, llama.cpp's server, `babyppo serve` —
// over HTTP (OpenAiBackend). Both complete prompts and score continuations.

/// <summary>How to continue prompts, with the meaning of OpenAI's <c>/v1/completions</c> parameters.</summary>
public sealed record LlmSampling
{
    /// <summary>Sampling temperature; 0 = greedy (always the most likely token). Default 1.</summary>
    public double Temperature { get; init; } = 1.0;
    /// <summary>Nucleus sampling: keep the most likely tokens up to this probability mass; 1 = off. Default 1.</summary>
    public double TopP { get; init; } = 1.0;
    /// <summary>New tokens per completion at most. Default 16 (OpenAI's default).</summary>
    public int MaxTokens { get; init; } = 16;
    /// <summary>Completions per prompt. Default 1.</summary>
    public int N { get; init; } = 1;
    /// <summary>A completion ends before the first of these strings, which its text does not include. Default none.</summary>
    public IReadOnlyList<string> Stop { get; init; } = [];
    /// <summary>Seed of the sampling; null = a fresh random seed per call. Default null.</summary>
    public ulong? Seed { get; init; }

    /// <summary>Temperature 0: take the most likely token.</summary>
    public bool IsGreedy => Temperature == 0;

    /// <summary>Greedy decoding of at most <paramref name="maxTokens"/> tokens.</summary>
    public static LlmSampling Greedy(int maxTokens) => new() { Temperature = 0, MaxTokens = maxTokens };

    public void Validate()
    {
        if (!(Temperature >= 0)) throw new InputException($"temperature must be >= 0 (0 = greedy), got {Temperature}");
        if (!(TopP > 0 && TopP <= 1)) throw new InputException($"top_p must be in (0, 1], got {TopP}");
        if (MaxTokens < 0) throw new InputException($"max_tokens must be >= 0, got {MaxTokens}");
        if (N < 1) throw new InputException($"n must be at least 1, got {N}");
        if (Stop.Any(string.IsNullOrEmpty)) throw new InputException("stop strings must not be empty");
    }

    /// <summary>The text before the first stop string, and whether one was found.</summary>
    public static (string Text, bool Stopped) CutAtStop(string text, IReadOnlyList<string> stops)
    {
        int cut = stops.Select(s => text.IndexOf(s, StringComparison.Ordinal)).Where(i => i >= 0).DefaultIfEmpty(-1).Min();
        return cut < 0 ? (text, false) : (text[..cut], true);
    }
}

/// <summary>One completion: its text (without the stop string) and why it ended ("stop" or "length").</summary>
public sealed record LlmCompletion(string Text, string FinishReason);

/// <summary>The summed natural-log probability of a continuation and the number of its tokens.</summary>
public readonly record struct ContinuationScore(double LogProb, int Tokens)
{
    /// <summary>Mean log-probability per token (0 for no tokens).</summary>
    public double MeanLogProb => Tokens == 0 ? 0 : LogProb / Tokens;
}

/// <summary>An LLM that completes prompts and scores continuations; safe to call from several threads.</summary>
public interface ILlmBackend : IDisposable
{
    /// <summary>What it is, for messages: a folder name, or "model at URL".</summary>
    string Name { get; }

    /// <summary>
    /// <see cref="LlmSampling.N"/> completions of every prompt: result[i][k] is the k-th completion
    /// of prompts[i]. Texts are cut before the first stop string.
    /// </summary>
    IReadOnlyList<IReadOnlyList<LlmCompletion>> Complete(IReadOnlyList<string> prompts, LlmSampling sampling, CancellationToken cancellationToken = default);

    /// <summary>
    /// For each pair, the log-probability of <c>Continuation</c> after <c>Context</c> (the text is
    /// tokenised as a whole; a token across the boundary belongs to the continuation), in input order.
    /// </summary>
    IReadOnlyList<ContinuationScore> ScoreContinuations(IReadOnlyList<(string Context, string Continuation)> pairs, CancellationToken cancellationToken = default);
}

/// <summary>Opens the back-end a command-line argument names.</summary>
public static class LlmBackend
{
    /// <summary>
    /// An <c>http://</c> or <c>https://</c> URL opens an <see cref="OpenAiBackend"/> (with
    /// <paramref name="model"/> and <paramref name="apiKey"/>); anything else is a checkpoint folder
    /// for a <see cref="LocalLlmBackend"/> (with an optional separate <paramref name="tokenizer"/>).
    /// </summary>
    /// <param name="server">Timeouts, retries and concurrency for a server URL (its URL, model and key are replaced by the other arguments). Default: <see cref="OpenAiOptions"/>'s.</param>
    public static ILlmBackend Open(string folderOrUrl, string? tokenizer = null, string? model = null, string? apiKey = null, Device? device = null, OpenAiOptions? server = null)
    {
        if (IsUrl(folderOrUrl))
        {
            if (tokenizer is not null) throw new InputException($"{folderOrUrl}: a tokenizer path applies only to a checkpoint folder; the server tokenises itself");
            return new OpenAiBackend((server ?? new OpenAiOptions { BaseUrl = folderOrUrl }) with { BaseUrl = folderOrUrl, Model = model, ApiKey = apiKey });
        }
        if (model is not null) throw new InputException($"{folderOrUrl}: a model name applies only to a server URL");
        return new LocalLlmBackend(folderOrUrl, tokenizer, device);
    }

    public static bool IsUrl(string text) =>
        text.StartsWith("http://", StringComparison.OrdinalIgnoreCase) || text.StartsWith("https://", StringComparison.OrdinalIgnoreCase);
}

// ── In-process ──────────────────────────────────────────────────────────────────────────────────

/// <summary>
/// A checkpoint folder (Llama or OLMo-2) run in-process with <see cref="Generator"/> and
/// <see cref="Scorer"/>. Prompts are encoded with the tokenizer's special tokens (BOS first). One
/// call runs at a time; concurrent callers wait.
/// </summary>
public sealed class LocalLlmBackend : ILlmBackend
{
    readonly object _gate = new();
    readonly Inference.Generator _generator;
    readonly Scorer _scorer;
    readonly int _batchSize;

    /// <param name="folder">A Hugging Face checkpoint folder.</param>
    /// <param name="tokenizer">tokenizer.json (or a folder holding it) when the checkpoint has none, e.g. tiny-olmo2.</param>
    /// <param name="device">Where to run; default CPU.</param>
    /// <param name="batchSize">Prompts per generation pass. Default 64.</param>
    public LocalLlmBackend(string folder, string? tokenizer = null, Device? device = null, int batchSize = 64)
    {
        Model = Checkpoint.LoadModel(folder, device);
        try
        {
            Tokenizer = tokenizer is not null ? Tokenizer.Load(tokenizer)
                : Checkpoint.TryLoadTokenizer(folder) ?? throw InputException.At(folder, "no tokenizer.json in this checkpoint folder; give a tokenizer (tokenizer.json or a folder holding it)");
            if (Tokenizer.VocabSize > Model.Config.VocabSize)
                throw InputException.At(tokenizer ?? folder, $"the tokenizer has {Tokenizer.VocabSize} tokens, more than the model's vocabulary of {Model.Config.VocabSize}");
        }
        catch
        {
            Model.Dispose();
            throw;
        }
        Name = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(folder)));
        _generator = new Inference.Generator(Model, Tokenizer);
        _scorer = new Scorer(Model, Tokenizer);
        _batchSize = batchSize;
    }

    public string Name { get; }
    public CausalLM Model { get; }
    public Tokenizer Tokenizer { get; }

    public IReadOnlyList<IReadOnlyList<LlmCompletion>> Complete(IReadOnlyList<string> prompts, LlmSampling sampling, CancellationToken cancellationToken = default)
    {
        var raw = Generate(prompts, sampling, cancellationToken);
        var result = new List<IReadOnlyList<LlmCompletion>>(prompts.Count);
        for (int i = 0; i < prompts.Count; i++)
            result.Add(Enumerable.Range(0, sampling.N).Select(k =>
            {
                var completion = raw[i * sampling.N + k];
                if (completion is null) return new LlmCompletion("", "length");
                var (text, stopped) = LlmSampling.CutAtStop(completion.Text, sampling.Stop);
                return new LlmCompletion(text, stopped || completion.FinishReason == FinishReason.Eos ? "stop" : "length");
            }).ToList());
        return result;
    }

    /// <summary>
    /// The generator's raw completions (texts still holding the stop string), N per prompt:
    /// entry i·N + k is the k-th of prompt i; all null when <see cref="LlmSampling.MaxTokens"/> is 0.
    /// </summary>
    public IReadOnlyList<Completion?> Generate(IReadOnlyList<string> prompts, LlmSampling sampling, CancellationToken cancellationToken = default)
    {
        sampling.Validate();
        if (prompts.Count == 0) return [];
        if (sampling.MaxTokens == 0) return new Completion?[prompts.Count * sampling.N];
        var options = new SamplingOptions
        {
            Greedy = sampling.IsGreedy,
            Temperature = sampling.IsGreedy ? 1.0 : sampling.Temperature,
            TopP = sampling.TopP,
            MaxNewTokens = sampling.MaxTokens,
            StopStrings = sampling.Stop,
            Seed = sampling.Seed ?? (ulong)Random.Shared.NextInt64(),
            BatchSize = _batchSize,
        };
        var repeated = prompts.SelectMany(p => Enumerable.Repeat(p, sampling.N)).ToList();
        cancellationToken.ThrowIfCancellationRequested();
        lock (_gate) return _generator.Generate(repeated, options);
    }

    public IReadOnlyList<ContinuationScore> ScoreContinuations(IReadOnlyList<(string Context, string Continuation)> pairs, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (pairs.Count == 0) return [];
        lock (_gate) return _scorer.ScoreContinuationTokens(pairs).Select(s => new ContinuationScore(s.Sum, s.LogProbs.Length)).ToList();
    }

    /// <summary>Per-token log-probabilities of each text (encoded with BOS), every token after the first.</summary>
    public IReadOnlyList<TokenScores> ScoreTexts(IReadOnlyList<string> texts)
    {
        var ids = texts.Select(t => Tokenizer.Encode(t)).ToList();
        lock (_gate) return _scorer.Score(ids);
    }

    public void Dispose() => Model.Dispose();
}

// ── Remote ──────────────────────────────────────────────────────────────────────────────────────

/// <summary>Where and how to reach an OpenAI-compatible server.</summary>
public sealed record OpenAiOptions
{
    /// <summary>The server, e.g. <c>http://127.0.0.1:8000</c> (a trailing <c>/v1</c> is optional).</summary>
    public required string BaseUrl { get; init; }
    /// <summary>The model name to ask for; null = the first one <c>GET /v1/models</c> lists. Default null.</summary>
    public string? Model { get; init; }
    /// <summary>Sent as <c>Authorization: Bearer …</c> when set. Default none.</summary>
    public string? ApiKey { get; init; }
    /// <summary>Time allowed for one attempt of one request. Default 120 s.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(120);
    /// <summary>Further attempts after a timeout, a lost connection, 408, 429 or a 5xx. Default 4.</summary>
    public int MaxRetries { get; init; } = 4;
    /// <summary>Wait before the first retry, doubled at each further one (a Retry-After header wins). Default 0.5 s.</summary>
    public TimeSpan InitialBackoff { get; init; } = TimeSpan.FromSeconds(0.5);
    /// <summary>Requests in flight at once. Default 4.</summary>
    public int MaxConcurrency { get; init; } = 4;
    /// <summary>Prompts sent in one request (as a list). Default 32.</summary>
    public int PromptsPerRequest { get; init; } = 32;
}

/// <summary>
/// A client of an OpenAI-compatible server's legacy <c>/v1/completions</c>. Prompts go as lists of
/// up to <see cref="OpenAiOptions.PromptsPerRequest"/>, several requests at once; choices are put
/// back in prompt order by their <c>index</c> (i·n + k), never by arrival. Scoring sends
/// <c>context + continuation</c> with <c>echo</c>, <c>logprobs</c> and <c>max_tokens: 0</c>, and
/// sums the log-probabilities of the tokens that end inside the continuation (found from
/// <c>text_offset</c>, measured from the end of the echoed text so that a BOS counted in the
/// offsets does not shift them). Failures name the URL, the status and the body.
/// </summary>
public sealed class OpenAiBackend : ILlmBackend
{
    readonly OpenAiOptions _options;
    readonly HttpClient _http;
    readonly SemaphoreSlim _slots;
    readonly string _v1;
    string? _model;

    public OpenAiBackend(OpenAiOptions options, HttpMessageHandler? handler = null)
    {
        if (!Uri.TryCreate(options.BaseUrl, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
            throw new InputException($"'{options.BaseUrl}': expected an http:// or https:// server URL");
        if (options.MaxConcurrency < 1) throw new InputException($"concurrency must be at least 1, got {options.MaxConcurrency}");
        if (options.PromptsPerRequest < 1) throw new InputException($"prompts per request must be at least 1, got {options.PromptsPerRequest}");
        if (options.MaxRetries < 0) throw new InputException($"retries must be >= 0, got {options.MaxRetries}");
        _options = options;
        _http = handler is null ? new HttpClient() : new HttpClient(handler);
        _http.Timeout = System.Threading.Timeout.InfiniteTimeSpan;   // each attempt has its own timeout
        _slots = new SemaphoreSlim(options.MaxConcurrency);
        var trimmed = options.BaseUrl.TrimEnd('/');
        _v1 = trimmed.EndsWith("/v1", StringComparison.Ordinal) ? trimmed : trimmed + "/v1";
        _model = options.Model;
    }

    public string Name => $"{_model ?? "(first model)"} at {_v1}";

    /// <summary>The model asked for: the configured name, or the first one the server lists.</summary>
    public string Model(CancellationToken cancellationToken = default)
    {
        if (_model is not null) return _model;
        var url = _v1 + "/models";
        var models = Run(() => SendAsync(HttpMethod.Get, url, null, cancellationToken));
        var id = (models["data"] as JsonArray)?.FirstOrDefault()?["id"]?.GetValue<string>()
                 ?? throw new InputException($"GET {url}: expected {{\"data\": [{{\"id\": …}}]}} listing a model, got {Shorten(models.ToJsonString())}");
        return _model = id;
    }

    public IReadOnlyList<IReadOnlyList<LlmCompletion>> Complete(IReadOnlyList<string> prompts, LlmSampling sampling, CancellationToken cancellationToken = default)
    {
        sampling.Validate();
        if (prompts.Count == 0) return [];
        string model = Model(cancellationToken);
        var chunks = prompts.Chunk(_options.PromptsPerRequest).ToList();
        var responses = Run(() => Task.WhenAll(chunks.Select((chunk, c) =>
        {
            var body = new JsonObject
            {
                ["model"] = model,
                ["prompt"] = new JsonArray(chunk.Select(p => (JsonNode)JsonValue.Create(p)).ToArray()),
                ["max_tokens"] = sampling.MaxTokens,
                ["temperature"] = sampling.Temperature,
                ["top_p"] = sampling.TopP,
                ["n"] = sampling.N,
            };
            if (sampling.Stop.Count > 0) body["stop"] = new JsonArray(sampling.Stop.Select(s => (JsonNode)JsonValue.Create(s)).ToArray());
            if (sampling.Seed is ulong seed) body["seed"] = seed + (ulong)c;
            return SendAsync(HttpMethod.Post, _v1 + "/completions", body, cancellationToken);
        })));

        var result = new List<IReadOnlyList<LlmCompletion>>(prompts.Count);
        for (int c = 0; c < chunks.Count; c++)
        {
            var choices = Choices(responses[c], chunks[c].Length * sampling.N);
            for (int i = 0; i < chunks[c].Length; i++)
                result.Add(Enumerable.Range(0, sampling.N).Select(k =>
                {
                    var choice = choices[i * sampling.N + k];
                    var (text, stopped) = LlmSampling.CutAtStop(choice["text"]?.GetValue<string>() ?? "", sampling.Stop);
                    var reason = choice["finish_reason"]?.GetValue<string>() ?? "length";
                    return new LlmCompletion(text, stopped ? "stop" : reason);
                }).ToList());
        }
        return result;
    }

    public IReadOnlyList<ContinuationScore> ScoreContinuations(IReadOnlyList<(string Context, string Continuation)> pairs, CancellationToken cancellationToken = default)
    {
        if (pairs.Count == 0) return [];
        string model = Model(cancellationToken);
        var chunks = pairs.Chunk(_options.PromptsPerRequest).ToList();
        var responses = Run(() => Task.WhenAll(chunks.Select(chunk => SendAsync(HttpMethod.Post, _v1 + "/completions", new JsonObject
        {
            ["model"] = model,
            ["prompt"] = new JsonArray(chunk.Select(p => (JsonNode)JsonValue.Create(p.Context + p.Continuation)).ToArray()),
            ["max_tokens"] = 0,
            ["temperature"] = 0,
            ["echo"] = true,
            ["logprobs"] = 1,
        }, cancellationToken))));

        var result = new List<ContinuationScore>(pairs.Count);
        for (int c = 0; c < chunks.Count; c++)
        {
            var choices = Choices(responses[c], chunks[c].Length);
            for (int i = 0; i < chunks[c].Length; i++)
                result.Add(ContinuationFromEcho(choices[i], CodePoints(chunks[c][i].Continuation), _v1 + "/completions"));
        }
        return result;
    }

    /// <summary>
    /// Sums the echoed log-probabilities of the tokens that end after the continuation starts. With
    /// L the length of the echoed text (last offset + last token's length), the continuation starts
    /// at L − its length; a token whose span ends after that point belongs to it. The first token has
    /// no log-probability (null) and is never counted. Lengths and offsets are in Unicode code points,
    /// as the servers count them.
    /// </summary>
    internal static ContinuationScore ContinuationFromEcho(JsonNode choice, int continuationLength, string url)
    {
        try
        {
            var logprobs = choice["logprobs"]!;
            var tokens = logprobs["tokens"]!.AsArray().Select(t => t!.GetValue<string>()).ToArray();
            var values = logprobs["token_logprobs"]!.AsArray().Select(v => v?.GetValue<double>()).ToArray();
            var offsets = logprobs["text_offset"]!.AsArray().Select(o => o!.GetValue<int>()).ToArray();
            if (tokens.Length == 0 || values.Length != tokens.Length || offsets.Length != tokens.Length)
                throw new FormatException("tokens, token_logprobs and text_offset differ in length");
            int length = offsets[^1] + CodePoints(tokens[^1]), start = length - continuationLength;
            double sum = 0;
            int count = 0;
            for (int t = 0; t < tokens.Length; t++)
            {
                int end = t + 1 < tokens.Length ? offsets[t + 1] : length;
                if (end <= start || values[t] is not double lp) continue;
                sum += lp;
                count++;
            }
            return new ContinuationScore(sum, count);
        }
        catch (Exception e) when (e is NullReferenceException or InvalidOperationException or FormatException or JsonException)
        {
            throw new InputException($"POST {url}: expected echoed logprobs (tokens, token_logprobs, text_offset) in each choice; does the server support echo with logprobs? Got {Shorten(choice.ToJsonString())}");
        }
    }

    static int CodePoints(string text) => text.EnumerateRunes().Count();

    /// <summary>The response's choices ordered by their index; exactly <paramref name="expected"/> of them.</summary>
    JsonNode[] Choices(JsonNode response, int expected)
    {
        var url = _v1 + "/completions";
        var choices = (response["choices"] as JsonArray)?.Select(c => c!).ToArray()
                      ?? throw new InputException($"POST {url}: expected a \"choices\" array, got {Shorten(response.ToJsonString())}");
        var ordered = new JsonNode[expected];
        foreach (var choice in choices)
        {
            int index = choice["index"]?.GetValue<int>() ?? -1;
            if (index < 0 || index >= expected || ordered[index] is not null)
                throw new InputException($"POST {url}: choice index {index} is missing, out of range or repeated (expected 0..{expected - 1} once each)");
            ordered[index] = choice;
        }
        if (choices.Length != expected) throw new InputException($"POST {url}: {choices.Length} choices, expected {expected}");
        return ordered;
    }

    /// <summary>One request with retries: timeouts, lost connections, 408, 429 and 5xx are retried with back-off.</summary>
    async Task<JsonNode> SendAsync(HttpMethod method, string url, JsonObject? body, CancellationToken cancellationToken)
    {
        await _slots.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            for (int attempt = 0; ; attempt++)
            {
                string failure;
                TimeSpan? retryAfter = null;
                using (var attemptTimeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
                {
                    attemptTimeout.CancelAfter(_options.Timeout);
                    try
                    {
                        using var request = new HttpRequestMessage(method, url);
                        if (body is not null) request.Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json");
                        if (!string.IsNullOrEmpty(_options.ApiKey)) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _options.ApiKey);
                        using var response = await _http.SendAsync(request, attemptTimeout.Token).ConfigureAwait(false);
                        var text = await response.Content.ReadAsStringAsync(attemptTimeout.Token).ConfigureAwait(false);
                        if (response.IsSuccessStatusCode)
                        {
                            try
                            {
                                return JsonNode.Parse(text) ?? throw new JsonException("null");
                            }
                            catch (JsonException)
                            {
                                throw new InputException($"{method} {url}: {(int)response.StatusCode} but the body is not JSON: {Shorten(text)}");
                            }
                        }
                        failure = $"{(int)response.StatusCode} {response.ReasonPhrase}: {Shorten(text)}";
                        if (!IsTransient(response.StatusCode)) throw new InputException($"{method} {url}: {failure}");
                        retryAfter = response.Headers.RetryAfter?.Delta;
                    }
                    catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                    {
                        failure = $"no answer within {_options.Timeout.TotalSeconds:0.#} s";
                    }
                    catch (HttpRequestException e)
                    {
                        failure = e.Message;
                    }
                }
                if (attempt >= _options.MaxRetries)
                    throw new InputException($"{method} {url}: {failure} (gave up after {attempt + 1} attempt{(attempt == 0 ? "" : "s")})");
                var backoff = retryAfter ?? _options.InitialBackoff * Math.Pow(2, attempt);
                await Task.Delay(backoff, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            _slots.Release();
        }
    }

    static bool IsTransient(HttpStatusCode status) =>
        status is HttpStatusCode.RequestTimeout or HttpStatusCode.TooManyRequests || (int)status >= 500;

    /// <summary>Waits for async work from synchronous callers (rewards are synchronous), unwrapping its exception.</summary>
    static T Run<T>(Func<Task<T>> work) => Task.Run(work).GetAwaiter().GetResult();

    internal static string Shorten(string text, int max = 500) =>
        text.Length <= max ? text : text[..max] + $"… ({text.Length} characters)";

    public void Dispose()
    {
        _http.Dispose();
        _slots.Dispose();
    }
}
