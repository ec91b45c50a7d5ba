using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace BabyPpo.Training.Model;

/// <summary>Llama-3 style rotary scaling ("rope_type": "llama3"); null means plain RoPE.</summary>
public sealed record RopeScaling(
    double Factor = 8.0,
    double LowFreqFactor = 1.0,
    double HighFreqFactor = 4.0,
    int OriginalMaxPositionEmbeddings = 8192);

/// <summary>
/// The architecture of a decoder-only model, as a Hugging Face <c>config.json</c> describes it.
/// Covers <c>LlamaForCausalLM</c> and <c>Olmo2ForCausalLM</c> (the judge), which differ only in
/// where the norms sit. Defaults are Hugging Face's <c>LlamaConfig</c> defaults unless noted.
/// </summary>
public sealed record LlamaConfig
{
    /// <summary>"llama" or "olmo2".</summary>
    public string ModelType { get; init; } = "llama";
    /// <summary>Number of token ids the embedding and the head know.</summary>
    public int VocabSize { get; init; } = 32000;
    /// <summary>Width of the residual stream.</summary>
    public int HiddenSize { get; init; } = 4096;
    /// <summary>Width of the SwiGLU MLP's inner layer.</summary>
    public int IntermediateSize { get; init; } = 11008;
    public int NumHiddenLayers { get; init; } = 32;
    public int NumAttentionHeads { get; init; } = 32;
    /// <summary>Key/value heads; fewer than attention heads means grouped-query attention.</summary>
    public int NumKeyValueHeads { get; init; } = 32;
    /// <summary>Per-head width; HF's default is hidden_size / num_attention_heads.</summary>
    public int HeadDim { get; init; } = 128;
    /// <summary>Longest sequence the model accepts (prompt + generated tokens).</summary>
    public int MaxPositionEmbeddings { get; init; } = 2048;
    public double RmsNormEps { get; init; } = 1e-6;
    public double RopeTheta { get; init; } = 10000.0;
    public RopeScaling? RopeScaling { get; init; }
    /// <summary>The output head shares the embedding matrix (no <c>lm_head.weight</c> in the file).</summary>
    public bool TieWordEmbeddings { get; init; }
    public bool AttentionBias { get; init; }
    public bool MlpBias { get; init; }
    public int? BosTokenId { get; init; } = 1;
    /// <summary>Ids that end a sequence (HF's eos_token_id: one id or a list; generation stops at any). Empty: none.</summary>
    public TokenIds EosTokenIds { get; init; } = [2];
    public int? PadTokenId { get; init; }
    /// <summary>Standard deviation of the normal initialisation of fresh (pre-training) weights.</summary>
    public double InitializerRange { get; init; } = 0.02;

    public bool IsOlmo2 => ModelType == "olmo2";

    /// <summary>A baby-sized config: the BabyLM dialogue models are about hidden 256, 8 layers, 8 heads.</summary>
    public static LlamaConfig Baby(int vocabSize = 16000, int hidden = 256, int layers = 8, int heads = 8, int intermediate = 1024, int maxPositions = 256) => new()
    {
        VocabSize = vocabSize, HiddenSize = hidden, IntermediateSize = intermediate, NumHiddenLayers = layers,
        NumAttentionHeads = heads, NumKeyValueHeads = heads, HeadDim = hidden / heads, MaxPositionEmbeddings = maxPositions,
        RmsNormEps = 1e-5, TieWordEmbeddings = true, BosTokenId = 1, EosTokenIds = [2], PadTokenId = 0,
    };

    /// <summary>Reads a hub <c>config.json</c>; refuses what the model code cannot compute exactly.</summary>
    public static LlamaConfig Load(string path)
    {
        if (Directory.Exists(path)) path = Path.Combine(path, "config.json");
        if (!File.Exists(path)) throw InputException.At(path, "file not found (a Hugging Face checkpoint folder needs config.json)");
        JsonNode? root;
        try { root = JsonNode.Parse(File.ReadAllText(path)); }
        catch (JsonException e)
        {
            throw InputException.At(path, $"not valid JSON ({e.Message})");
        }
        if (root is not JsonObject json) throw InputException.At(path, "expected a JSON object of model settings");
        return FromJson(json, path);
    }

    /// <summary>
    /// Builds a config from a parsed <c>config.json</c>. Every key the model uses is checked for its
    /// JSON type and range (whole numbers where HF expects ints, positive sizes, token ids inside the
    /// vocabulary, heads divisible by key/value heads, …); a problem is an <see cref="InputException"/>
    /// naming <paramref name="source"/> and the key. Options the model code does not implement
    /// (other architectures, activations, rope types, partial rotary embeddings) are refused.
    /// </summary>
    public static LlamaConfig FromJson(JsonObject json, string source = "config.json")
    {
        var c = new ConfigReader(json, source);
        bool olmo2 = c.Architecture() == "Olmo2ForCausalLM";

        string act = c.String("hidden_act") ?? "silu";
        if (act != "silu") throw c.Fail($"unsupported hidden_act '{act}': only silu (SwiGLU) is implemented");
        int vocab = c.Size("vocab_size") ?? 32000;
        int hidden = c.Size("hidden_size") ?? 4096;
        int heads = c.Size("num_attention_heads") ?? 32;
        int? headDim = c.Size("head_dim");
        if (headDim is null && hidden % heads != 0)
            throw c.Fail($"hidden_size {hidden} is not a multiple of num_attention_heads {heads}, and head_dim is not given");
        headDim ??= hidden / heads;
        if (headDim % 2 != 0) throw c.Fail($"head_dim {headDim} must be even (rotary embeddings turn pairs of dimensions)");
        int kvHeads = c.Size("num_key_value_heads") ?? heads;
        if (heads % kvHeads != 0)
            throw c.Fail($"num_attention_heads {heads} is not a multiple of num_key_value_heads {kvHeads}");

        if (c.NonNegative("attention_dropout") is double dropout && dropout != 0)
            throw c.Fail($"'attention_dropout' {dropout} is not supported: attention has no dropout here (0.0, HF's default)");

        // Rope: the classic top-level rope_theta + rope_scaling, or the newer rope_parameters
        // (transformers v5), which also holds rope_theta. A config with both must not contradict itself.
        var classic = c.Object("rope_scaling") is { } scalingJson ? new ConfigReader(scalingJson, source, "rope_scaling.") : null;
        var newer = c.Object("rope_parameters") is { } parametersJson ? new ConfigReader(parametersJson, source, "rope_parameters.") : null;
        c.RefusePartialRotary();
        classic?.RefusePartialRotary();
        newer?.RefusePartialRotary();
        RopeScaling? scaling = newer is not null ? newer.Rope() : classic?.Rope();
        if (newer is not null && classic is not null && classic.Rope() != scaling)
            throw c.Fail("'rope_scaling' and 'rope_parameters' describe different rotary scalings: give one of them");
        double theta = c.Positive("rope_theta") ?? newer?.Positive("rope_theta") ?? classic?.Positive("rope_theta") ?? 10000.0;

        return new LlamaConfig
        {
            ModelType = olmo2 ? "olmo2" : "llama",
            VocabSize = vocab,
            HiddenSize = hidden,
            IntermediateSize = c.Size("intermediate_size") ?? 11008,
            NumHiddenLayers = c.Size("num_hidden_layers") ?? 32,
            NumAttentionHeads = heads,
            NumKeyValueHeads = kvHeads,
            HeadDim = headDim.Value,
            MaxPositionEmbeddings = c.Size("max_position_embeddings") ?? 2048,
            RmsNormEps = c.Positive("rms_norm_eps") ?? 1e-6,
            RopeTheta = theta,
            RopeScaling = scaling,
            TieWordEmbeddings = c.Bool("tie_word_embeddings") ?? false,
            AttentionBias = c.Bool("attention_bias") ?? false,
            MlpBias = c.Bool("mlp_bias") ?? false,
            BosTokenId = c.TokenId("bos_token_id", vocab),
            EosTokenIds = c.TokenIds("eos_token_id", vocab),
            PadTokenId = c.TokenId("pad_token_id", vocab),
            InitializerRange = c.NonNegative("initializer_range") ?? 0.02,
        };
    }

    /// <summary>The config.json that HF transformers reads back unchanged.</summary>
    public JsonObject ToJson()
    {
        var json = new JsonObject
        {
            ["architectures"] = new JsonArray(IsOlmo2 ? "Olmo2ForCausalLM" : "LlamaForCausalLM"),
            ["model_type"] = ModelType,
            ["vocab_size"] = VocabSize,
            ["hidden_size"] = HiddenSize,
            ["intermediate_size"] = IntermediateSize,
            ["num_hidden_layers"] = NumHiddenLayers,
            ["num_attention_heads"] = NumAttentionHeads,
            ["num_key_value_heads"] = NumKeyValueHeads,
            ["head_dim"] = HeadDim,
            ["max_position_embeddings"] = MaxPositionEmbeddings,
            ["rms_norm_eps"] = RmsNormEps,
            ["rope_theta"] = RopeTheta,
            ["rope_scaling"] = RopeScaling is null ? null : new JsonObject
            {
                ["rope_type"] = "llama3",
                ["factor"] = RopeScaling.Factor,
                ["low_freq_factor"] = RopeScaling.LowFreqFactor,
                ["high_freq_factor"] = RopeScaling.HighFreqFactor,
                ["original_max_position_embeddings"] = RopeScaling.OriginalMaxPositionEmbeddings,
            },
            ["hidden_act"] = "silu",
            ["attention_bias"] = AttentionBias,
            ["tie_word_embeddings"] = TieWordEmbeddings,
            ["bos_token_id"] = BosTokenId,
            ["eos_token_id"] = EosTokenIds.Count switch
            {
                0 => null,
                1 => EosTokenIds[0],
                _ => new JsonArray(EosTokenIds.Select(id => (JsonNode?)id).ToArray()),
            },
            ["pad_token_id"] = PadTokenId,
            ["initializer_range"] = InitializerRange,
            ["torch_dtype"] = "float32",
        };
        if (!IsOlmo2) json["mlp_bias"] = MlpBias;
        return json;
    }

    public void Save(string path) =>
        File.WriteAllText(path, ToJson().ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
}

/// <summary>
/// Token ids that end a sequence: HF's <c>eos_token_id</c>, one id or a list (generation stops at
/// any of them). Immutable; two lists are equal when they hold the same ids in the same order, so
/// configs stay comparable by value.
/// </summary>
[CollectionBuilder(typeof(TokenIds), nameof(Create))]
public sealed class TokenIds : IReadOnlyList<int>, IEquatable<TokenIds>
{
    readonly int[] _ids;

    TokenIds(int[] ids) => _ids = ids;

    public static TokenIds Create(ReadOnlySpan<int> ids) => new(ids.ToArray());

    public int this[int index] => _ids[index];
    public int Count => _ids.Length;
    public IEnumerator<int> GetEnumerator() => ((IEnumerable<int>)_ids).GetEnumerator();
    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();

    public bool Equals(TokenIds? other) => other is not null && _ids.AsSpan().SequenceEqual(other._ids);
    public override bool Equals(object? obj) => Equals(obj as TokenIds);
    public override int GetHashCode() => _ids.Aggregate(17, (hash, id) => hash * 31 + id);
    public override string ToString() => $"[{string.Join(", ", _ids)}]";
}

/// <summary>
/// Typed, range-checked reads of config.json keys. Every problem is an <see cref="InputException"/>
/// naming the file and the key (with <paramref name="prefix"/> for nested objects, e.g. "rope_scaling.").
/// </summary>
sealed class ConfigReader(JsonObject json, string source, string prefix = "")
{
    public const string Llama = "LlamaForCausalLM";
    public const string Olmo2 = "Olmo2ForCausalLM";

    public InputException Fail(string message) => InputException.At(source, message);

    /// <summary>LlamaForCausalLM or Olmo2ForCausalLM, from <c>architectures</c> and <c>model_type</c>, which must agree.</summary>
    public string Architecture()
    {
        string? modelType = String("model_type");
        string? fromType = modelType switch { "llama" => Llama, "olmo2" => Olmo2, _ => null };
        const string expected = $"expected {Llama} (model_type llama) or {Olmo2} (model_type olmo2)";
        var names = StringList("architectures");
        if (names.Count == 0)
            return fromType ?? throw Fail($"unsupported architecture: no 'architectures' and model_type '{modelType ?? "(none)"}'; {expected}");
        foreach (var name in names)
            if (name is not (Llama or Olmo2))
                throw Fail($"unsupported architecture {name} in 'architectures': {expected} (other heads, e.g. sequence classification, are not implemented)");
        if (names.Distinct().Count() > 1)
            throw Fail($"'architectures' lists {string.Join(" and ", names.Distinct())}: expected one architecture");
        if (modelType is not null && fromType != names[0])
            throw Fail($"model_type '{modelType}' does not match architectures [{names[0]}]");
        return names[0];
    }

    /// <summary>A string, or null when the key is absent or null.</summary>
    public string? String(string key) => Value(key) switch
    {
        null => null,
        var v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        var v => throw Fail($"'{prefix}{key}' must be a string, got {v.ToJsonString()}"),
    };

    /// <summary>An array of strings; empty when the key is absent or null.</summary>
    public List<string> StringList(string key) => json[key] switch
    {
        null => [],
        JsonArray a when a.All(n => n is JsonValue v && v.GetValueKind() == JsonValueKind.String) => a.Select(n => n!.GetValue<string>()).ToList(),
        var n => throw Fail($"'{prefix}{key}' must be a list of strings, got {n.ToJsonString()}"),
    };

    /// <summary>A nested object, or null when the key is absent or null.</summary>
    public JsonObject? Object(string key) => json[key] switch
    {
        null => null,
        JsonObject o => o,
        var n => throw Fail($"'{prefix}{key}' must be an object or null, got {n.ToJsonString()}"),
    };

    public bool? Bool(string key) => Value(key) switch
    {
        null => null,
        var v when v.GetValueKind() is JsonValueKind.True or JsonValueKind.False => v.GetValue<bool>(),
        var v => throw Fail($"'{prefix}{key}' must be true or false, got {v.ToJsonString()}"),
    };

    /// <summary>A size or count: a whole number from 1 to int.MaxValue.</summary>
    public int? Size(string key) => Integer(key, 1, int.MaxValue, "a whole number from 1 to 2147483647");

    /// <summary>A token id: a whole number in [0, vocabulary).</summary>
    public int? TokenId(string key, int vocabulary) => Integer(key, 0, vocabulary - 1, $"a token id from 0 to {vocabulary - 1} (vocab_size {vocabulary})");

    /// <summary>One token id or a list of them (HF's eos_token_id); empty when absent or null.</summary>
    public TokenIds TokenIds(string key, int vocabulary)
    {
        var node = json[key];
        if (node is not JsonArray list) return TokenId(key, vocabulary) is int id ? [id] : [];
        string what = $"a token id from 0 to {vocabulary - 1} (vocab_size {vocabulary}) or a list of them";
        var ids = list.Select(n => n is JsonValue v ? WholeNumber(v) : null)
            .Select(n => n is >= 0 && n < vocabulary ? (int)n : throw Fail($"'{prefix}{key}' must be {what}, got {list.ToJsonString()}"))
            .ToArray();
        return [.. ids];
    }

    /// <summary>A finite number &gt; 0.</summary>
    public double? Positive(string key) => Number(key, x => x > 0, "a number > 0");

    /// <summary>A finite number ≥ 0.</summary>
    public double? NonNegative(string key) => Number(key, x => x >= 0, "a number >= 0");

    /// <summary>A rope_scaling / rope_parameters object: llama3 scaling, or null for plain RoPE ("default").</summary>
    public RopeScaling? Rope()
    {
        string ropeType = String("rope_type") ?? String("type") ?? "default";
        if (ropeType == "default") return null;
        if (ropeType != "llama3")
            throw Fail($"unsupported rope type '{ropeType}' in '{prefix.TrimEnd('.')}': only default and llama3 are implemented");
        var scaling = new RopeScaling(
            Positive("factor") ?? 8.0,
            Positive("low_freq_factor") ?? 1.0,
            Positive("high_freq_factor") ?? 4.0,
            Size("original_max_position_embeddings") ?? 8192);
        return scaling.HighFreqFactor > scaling.LowFreqFactor ? scaling
            : throw Fail($"'{prefix}high_freq_factor' {scaling.HighFreqFactor} must be larger than low_freq_factor {scaling.LowFreqFactor}");
    }

    /// <summary>Refuses partial rotary embeddings (only a factor of 1, HF's default, is implemented).</summary>
    public void RefusePartialRotary()
    {
        if (Number("partial_rotary_factor", _ => true, "a number") is double f && f != 1.0)
            throw Fail($"'{prefix}partial_rotary_factor' {f} is not supported: only full rotary embeddings (1.0) are implemented");
    }

    JsonValue? Value(string key) => json[key] switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == JsonValueKind.Null => null,
        JsonValue v => v,
        var n => throw Fail($"'{prefix}{key}' must be a single value, got {n.ToJsonString()}"),
    };

    int? Integer(string key, long min, long max, string what)
    {
        if (Value(key) is not { } v) return null;
        return WholeNumber(v) is long n && n >= min && n <= max ? (int)n : throw Fail($"'{prefix}{key}' must be {what}, got {v.ToJsonString()}");
    }

    double? Number(string key, Func<double, bool> valid, string what)
    {
        if (Value(key) is not { } v) return null;
        return v.GetValueKind() == JsonValueKind.Number
               && double.TryParse(v.ToJsonString(), NumberStyles.Float, CultureInfo.InvariantCulture, out double x)
               && double.IsFinite(x) && valid(x)
            ? x
            : throw Fail($"'{prefix}{key}' must be {what}, got {v.ToJsonString()}");
    }

    /// <summary>The value when it is a JSON integer (no fraction or exponent) that fits a long, else null.</summary>
    static long? WholeNumber(JsonValue v) =>
        v.GetValueKind() == JsonValueKind.Number && long.TryParse(v.ToJsonString(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long n) ? n : null;
}
