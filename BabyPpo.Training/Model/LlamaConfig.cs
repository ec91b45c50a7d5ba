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
    public int? EosTokenId { get; init; } = 2;
    public int? PadTokenId { get; init; }
    /// <summary>Standard deviation of the normal initialisation of fresh (pre-training) weights.</summary>
    public double InitializerRange { get; init; } = 0.02;

    public bool IsOlmo2 => ModelType == "olmo2";

    /// <summary>A baby-sized config: the BabyLM dialogue models are about hidden 256, 8 layers, 8 heads.</summary>
    public static LlamaConfig Baby(int vocabSize = 16000, int hidden = 256, int layers = 8, int heads = 8, int intermediate = 1024, int maxPositions = 256) => new()
    {
        VocabSize = vocabSize, HiddenSize = hidden, IntermediateSize = intermediate, NumHiddenLayers = layers,
        NumAttentionHeads = heads, NumKeyValueHeads = heads, HeadDim = hidden / heads, MaxPositionEmbeddings = maxPositions,
        RmsNormEps = 1e-5, TieWordEmbeddings = true, BosTokenId = 1, EosTokenId = 2, PadTokenId = 0,
    };

    /// <summary>Reads a hub <c>config.json</c>; refuses what the model code cannot compute exactly.</summary>
    public static LlamaConfig Load(string path)
    {
        if (Directory.Exists(path)) path = Path.Combine(path, "config.json");
        if (!File.Exists(path)) throw InputException.At(path, "file not found (a Hugging Face checkpoint folder needs config.json)");
        JsonObject json;
        try { json = JsonNode.Parse(File.ReadAllText(path))?.AsObject() ?? throw new JsonException("empty"); }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            throw InputException.At(path, $"not valid JSON ({e.Message})");
        }
        return FromJson(json, path);
    }

    public static LlamaConfig FromJson(JsonObject json, string source = "config.json")
    {
        string modelType = Str(json, "model_type") ?? "";
        var architectures = json["architectures"]?.AsArray().Select(a => a?.GetValue<string>()).ToList() ?? [];
        string? architecture = architectures.FirstOrDefault();
        bool llama = modelType == "llama" || architecture == "LlamaForCausalLM";
        bool olmo2 = modelType == "olmo2" || architecture == "Olmo2ForCausalLM";
        if (!llama && !olmo2)
            throw InputException.At(source, $"unsupported architecture {architecture ?? "(none)"} / model_type '{modelType}': expected LlamaForCausalLM (llama) or Olmo2ForCausalLM (olmo2)");

        string act = Str(json, "hidden_act") ?? "silu";
        if (act != "silu") throw InputException.At(source, $"unsupported hidden_act '{act}': only silu (SwiGLU) is implemented");
        int hidden = Int(json, "hidden_size", source) ?? 4096;
        int heads = Int(json, "num_attention_heads", source) ?? 32;
        if (hidden % heads != 0 && json["head_dim"] is null)
            throw InputException.At(source, $"hidden_size {hidden} is not a multiple of num_attention_heads {heads} and head_dim is not given");
        int kvHeads = Int(json, "num_key_value_heads", source) ?? heads;
        if (heads % kvHeads != 0)
            throw InputException.At(source, $"num_attention_heads {heads} is not a multiple of num_key_value_heads {kvHeads}");

        // Rope: either the classic top-level rope_theta + rope_scaling, or the newer rope_parameters.
        var ropeNode = json["rope_parameters"] as JsonObject ?? json["rope_scaling"] as JsonObject;
        double theta = Dbl(json, "rope_theta", source) ?? Dbl(ropeNode, "rope_theta", source) ?? 10000.0;
        RopeScaling? scaling = null;
        if (ropeNode is not null)
        {
            string ropeType = Str(ropeNode, "rope_type") ?? Str(ropeNode, "type") ?? "default";
            if (ropeType == "llama3")
                scaling = new RopeScaling(
                    Dbl(ropeNode, "factor", source) ?? 8.0,
                    Dbl(ropeNode, "low_freq_factor", source) ?? 1.0,
                    Dbl(ropeNode, "high_freq_factor", source) ?? 4.0,
                    Int(ropeNode, "original_max_position_embeddings", source) ?? 8192);
            else if (ropeType != "default")
                throw InputException.At(source, $"unsupported rope scaling type '{ropeType}': only default and llama3 are implemented");
        }

        int? eos = json["eos_token_id"] switch
        {
            JsonArray a => a.Count > 0 ? a[0]!.GetValue<int>() : null,   // several EOS ids: the first is the one we stop on
            JsonValue v => v.GetValue<int>(),
            _ => null,
        };
        return new LlamaConfig
        {
            ModelType = olmo2 ? "olmo2" : "llama",
            VocabSize = Int(json, "vocab_size", source) ?? 32000,
            HiddenSize = hidden,
            IntermediateSize = Int(json, "intermediate_size", source) ?? 11008,
            NumHiddenLayers = Int(json, "num_hidden_layers", source) ?? 32,
            NumAttentionHeads = heads,
            NumKeyValueHeads = kvHeads,
            HeadDim = Int(json, "head_dim", source) ?? hidden / heads,
            MaxPositionEmbeddings = Int(json, "max_position_embeddings", source) ?? 2048,
            RmsNormEps = Dbl(json, "rms_norm_eps", source) ?? 1e-6,
            RopeTheta = theta,
            RopeScaling = scaling,
            TieWordEmbeddings = Bool(json, "tie_word_embeddings", source) ?? false,
            AttentionBias = Bool(json, "attention_bias", source) ?? false,
            MlpBias = Bool(json, "mlp_bias", source) ?? false,
            BosTokenId = Int(json, "bos_token_id", source),
            EosTokenId = eos,
            PadTokenId = Int(json, "pad_token_id", source),
            InitializerRange = Dbl(json, "initializer_range", source) ?? 0.02,
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
            ["eos_token_id"] = EosTokenId,
            ["pad_token_id"] = PadTokenId,
            ["initializer_range"] = InitializerRange,
            ["torch_dtype"] = "float32",
        };
        if (!IsOlmo2) json["mlp_bias"] = MlpBias;
        return json;
    }

    public void Save(string path) =>
        File.WriteAllText(path, ToJson().ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");

    static string? Str(JsonObject? o, string key) => o?[key] is JsonValue v && v.TryGetValue(out string? s) ? s : null;

    static int? Int(JsonObject? o, string key, string source) => Number(o, key, source) is double d ? checked((int)d) : null;

    static double? Dbl(JsonObject? o, string key, string source) => Number(o, key, source);

    static double? Number(JsonObject? o, string key, string source)
    {
        if (o?[key] is not JsonValue v) return null;
        if (v.TryGetValue(out double d)) return d;
        throw InputException.At(source, $"'{key}' must be a number, got {v.ToJsonString()}");
    }

    static bool? Bool(JsonObject? o, string key, string source)
    {
        if (o?[key] is not JsonValue v) return null;
        if (v.TryGetValue(out bool b)) return b;
        throw InputException.At(source, $"'{key}' must be true or false, got {v.ToJsonString()}");
    }
}
