using System.Text.Json;
using System.Text.Json.Nodes;
using BabyPpo.Training.Inference;

namespace BabyPpo.Training.Rewards;

/// <summary>An HTTP answer: status code and JSON body.</summary>
public sealed record EndpointResult(int Status, JsonObject Body);

/// <summary>
/// The request/response logic of <c>babyppo serve</c>: OpenAI's legacy <c>/v1/completions</c> and
/// <c>/v1/models</c> over a <see cref="LocalLlmBackend"/>, without HTTP (the host maps routes to it).
/// <para>
/// Supported: <c>prompt</c> (a string or a list of strings), <c>max_tokens</c> (default 16; 0 with
/// <c>echo</c> only scores the prompt), <c>temperature</c> (0 = greedy), <c>top_p</c>, <c>n</c>,
/// <c>stop</c> (a string or a list; the text ends before it), <c>seed</c>, <c>echo</c> and
/// <c>logprobs</c>. With <c>logprobs</c> set, each choice carries <c>tokens</c>, <c>token_logprobs</c>
/// (natural log; null for the first prompt token, which has no context) and <c>text_offset</c>
/// (character offsets into prompt + completion; special tokens such as BOS take no characters), for
/// the echoed prompt tokens (with <c>echo</c>) and the generated ones. <c>top_logprobs</c> is always
/// null: alternatives are not computed. Choice i·n + k is the k-th completion of prompt i.
/// Not supported (refused with 400): <c>stream</c>, <c>best_of</c> &gt; 1, <c>suffix</c>,
/// <c>logit_bias</c>, non-zero presence or frequency penalties, and token-id prompts.
/// </para>
/// </summary>
public sealed class OpenAiEndpoint(LocalLlmBackend backend, string? modelId = null)
{
    /// <summary>The name clients use in <c>"model"</c>; by default the checkpoint folder's name.</summary>
    public string ModelId { get; } = modelId ?? backend.Name;

    readonly long _created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    /// <summary><c>GET /v1/models</c>.</summary>
    public JsonObject Models() => new()
    {
        ["object"] = "list",
        ["data"] = new JsonArray(new JsonObject { ["id"] = ModelId, ["object"] = "model", ["created"] = _created, ["owned_by"] = "babyppo" }),
    };

    /// <summary><c>POST /v1/completions</c> with the request body's text.</summary>
    public EndpointResult Complete(string requestBody, CancellationToken cancellationToken = default)
    {
        JsonObject request;
        try
        {
            request = JsonNode.Parse(requestBody) as JsonObject ?? throw new JsonException("not an object");
        }
        catch (JsonException)
        {
            return Error(400, "the request body must be a JSON object");
        }
        try
        {
            return Complete(request, cancellationToken);
        }
        catch (InputException e)
        {
            return Error(400, e.Message);
        }
    }

    EndpointResult Complete(JsonObject request, CancellationToken cancellationToken)
    {
        if (Field<string>(request, "model") is { } model && model != ModelId)
            return Error(404, $"the model '{model}' does not exist; this server serves '{ModelId}'", "model_not_found");
        if (Field<bool?>(request, "stream") == true) throw new InputException("stream is not supported");
        if (Field<int?>(request, "best_of") is > 1) throw new InputException("best_of > 1 is not supported");
        if (Field<string>(request, "suffix") is not null) throw new InputException("suffix is not supported");
        if (request["logit_bias"] is JsonObject bias && bias.Count > 0) throw new InputException("logit_bias is not supported");
        foreach (var penalty in new[] { "presence_penalty", "frequency_penalty" })
            if (Field<double?>(request, penalty) is double p && p != 0) throw new InputException($"{penalty} is not supported (only 0)");

        var prompts = Prompts(request["prompt"]);
        var sampling = new LlmSampling
        {
            MaxTokens = Field<int?>(request, "max_tokens") ?? 16,
            Temperature = Field<double?>(request, "temperature") ?? 1.0,
            TopP = Field<double?>(request, "top_p") ?? 1.0,
            N = Field<int?>(request, "n") ?? 1,
            Stop = Strings(request["stop"], "stop"),
            Seed = Field<ulong?>(request, "seed"),
        };
        sampling.Validate();
        bool echo = Field<bool?>(request, "echo") ?? false;
        int? logprobs = Field<int?>(request, "logprobs");
        if (logprobs is < 0) throw new InputException($"logprobs must be >= 0, got {logprobs}");
        if (sampling.MaxTokens == 0 && !echo) throw new InputException("max_tokens 0 needs echo (it only scores the prompt)");

        var tokenizer = backend.Tokenizer;
        var promptIds = prompts.Select(p => tokenizer.Encode(p)).ToList();
        var promptScores = echo && logprobs is not null ? backend.ScoreTexts(prompts) : null;
        cancellationToken.ThrowIfCancellationRequested();
        var generated = backend.Generate(prompts, sampling, cancellationToken);

        var choices = new JsonArray();
        int completionTokens = 0;
        for (int i = 0; i < prompts.Count; i++)
            for (int k = 0; k < sampling.N; k++)
            {
                var completion = generated[i * sampling.N + k];
                var newIds = completion?.NewIds ?? [];
                var (text, stopped) = LlmSampling.CutAtStop(completion?.Text ?? "", sampling.Stop);
                // Keep the generated tokens that start before the cut (the one holding the stop string's start too).
                var newOffsets = Offsets(newIds, prompts[i].Length);
                int kept = newOffsets.TakeWhile(o => o < prompts[i].Length + text.Length).Count();
                if (!stopped) kept = newIds.Length;
                completionTokens += kept;

                JsonNode? logprobsNode = null;
                if (logprobs is not null)
                {
                    var log = new LogProbs();
                    if (echo) log.AddPrompt(promptIds[i], promptScores![i], prompts[i], tokenizer);
                    log.AddGenerated(newIds[..kept], completion?.LogProbs[..kept] ?? [], newOffsets[..kept], prompts[i] + text, tokenizer);
                    logprobsNode = log.ToJson();
                }
                string reason = completion is null ? "length" : stopped || completion.FinishReason == FinishReason.Eos ? "stop" : "length";
                choices.Add(new JsonObject
                {
                    ["text"] = (echo ? prompts[i] : "") + text,
                    ["index"] = i * sampling.N + k,
                    ["logprobs"] = logprobsNode,
                    ["finish_reason"] = reason,
                });
            }

        int promptTokens = promptIds.Sum(ids => ids.Length);
        return new EndpointResult(200, new JsonObject
        {
            ["id"] = "cmpl-" + Guid.NewGuid().ToString("N"),
            ["object"] = "text_completion",
            ["created"] = DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
            ["model"] = ModelId,
            ["choices"] = choices,
            ["usage"] = new JsonObject { ["prompt_tokens"] = promptTokens, ["completion_tokens"] = completionTokens, ["total_tokens"] = promptTokens + completionTokens },
        });
    }

    /// <summary>
    /// Character offset of each generated token: where the decoded text of the tokens before it ends
    /// (kept monotone, so a token that splits a character is placed at that character), plus <paramref name="start"/>.
    /// </summary>
    int[] Offsets(int[] ids, int start)
    {
        var offsets = new int[ids.Length];
        int previous = 0;
        for (int t = 0; t < ids.Length; t++)
        {
            int decoded = t == 0 ? 0 : backend.Tokenizer.Decode(ids[..t]).Length;
            previous = Math.Max(previous, decoded);
            offsets[t] = start + previous;
        }
        return offsets;
    }

    /// <summary>OpenAI's legacy logprobs object, built token by token.</summary>
    sealed class LogProbs
    {
        readonly JsonArray _tokens = [], _values = [], _offsets = [];

        /// <summary>The prompt's tokens: the first without a log-probability, the others from the scorer.</summary>
        public void AddPrompt(int[] ids, TokenScores scores, string prompt, Text.Tokenizer tokenizer)
        {
            int previous = 0;
            var offsets = new int[ids.Length];
            for (int t = 0; t < ids.Length; t++)
            {
                int decoded = Math.Min(prompt.Length, tokenizer.Decode(ids[..t]).Length);
                offsets[t] = previous = Math.Max(previous, decoded);
            }
            for (int t = 0; t < ids.Length; t++)
            {
                double? value = t >= scores.ScoredFrom ? scores.LogProbs[t - scores.ScoredFrom] : null;
                Add(TokenText(ids, t, offsets, prompt.Length, prompt, tokenizer), value, CodePoints(prompt, offsets[t]));
            }
        }

        /// <summary>The generated tokens, their log-probabilities and offsets into <paramref name="fullText"/> (prompt + completion).</summary>
        public void AddGenerated(int[] ids, float[] values, int[] offsets, string fullText, Text.Tokenizer tokenizer)
        {
            for (int t = 0; t < ids.Length; t++)
                Add(TokenText(ids, t, offsets, fullText.Length, fullText, tokenizer), values[t], CodePoints(fullText, offsets[t]));
        }

        /// <summary>
        /// The token's slice of the text, so that offset + length always leads to the next token; a
        /// special token (BOS, EOS) shows its own name, and a token that only completes a character
        /// begun by the one before (byte-level pieces of "é" or "🎈") is empty.
        /// </summary>
        static string TokenText(int[] ids, int t, int[] offsets, int end, string text, Text.Tokenizer tokenizer)
        {
            int from = Math.Min(offsets[t], text.Length), to = Math.Min(t + 1 < ids.Length ? offsets[t + 1] : end, text.Length);
            return to > from ? text[from..to] : tokenizer.IsSpecial(ids[t]) ? tokenizer.Decode([ids[t]], skipSpecialTokens: false) : "";
        }

        /// <summary>
        /// An offset in characters as OpenAI, vLLM and llama.cpp count them (Unicode code points, as
        /// Python indexes a str), from one in UTF-16 units: they differ after an emoji or other
        /// character beyond U+FFFF, which .NET stores as two units.
        /// </summary>
        static int CodePoints(string text, int utf16Offset)
        {
            int end = Math.Min(utf16Offset, text.Length), count = 0;
            for (int i = 0; i < end; i++)
                if (!(char.IsLowSurrogate(text[i]) && i > 0 && char.IsHighSurrogate(text[i - 1]))) count++;
            return count;
        }

        void Add(string token, double? value, int offset)
        {
            _tokens.Add(token);
            _values.Add(value is double v ? JsonValue.Create(v) : null);
            _offsets.Add(offset);
        }

        public JsonObject ToJson() => new() { ["tokens"] = _tokens, ["token_logprobs"] = _values, ["top_logprobs"] = null, ["text_offset"] = _offsets };
    }

    static IReadOnlyList<string> Prompts(JsonNode? prompt)
    {
        if (prompt is JsonValue value && value.TryGetValue<string>(out var single)) return [single];
        if (prompt is JsonArray list && list.Count > 0 && list.All(p => p is JsonValue v && v.TryGetValue<string>(out _)))
            return list.Select(p => p!.GetValue<string>()).ToList();
        throw new InputException("prompt must be a string or a non-empty list of strings (token-id prompts are not supported)");
    }

    static IReadOnlyList<string> Strings(JsonNode? node, string field)
    {
        if (node is null) return [];
        if (node is JsonValue value && value.TryGetValue<string>(out var single)) return [single];
        if (node is JsonArray list && list.All(p => p is JsonValue v && v.TryGetValue<string>(out _)))
            return list.Select(p => p!.GetValue<string>()).ToList();
        throw new InputException($"{field} must be a string or a list of strings");
    }

    static T? Field<T>(JsonObject request, string field)
    {
        var node = request[field];
        if (node is null) return default;
        try
        {
            return node.Deserialize<T>();
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            throw new InputException($"{field}: unexpected value {node.ToJsonString()}");
        }
    }

    static EndpointResult Error(int status, string message, string type = "invalid_request_error") =>
        new(status, new JsonObject { ["error"] = new JsonObject { ["message"] = message, ["type"] = type, ["code"] = status } });
}
