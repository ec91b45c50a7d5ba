using System.Text.Json.Nodes;
using BabyPpo.Training;
using BabyPpo.Training.Model;

namespace BabyPpo.Tests.Model;

/// <summary>
/// Reading config.json: every malformed or unsupported setting is one <see cref="InputException"/>
/// naming the file and the key, never a crash or a silently different model.
/// </summary>
public sealed class LlamaConfigTests : IDisposable
{
    static readonly string TinyLlama = SharedData.Fixture("models", "tiny-llama");
    readonly TempFolder _temp = new();

    public void Dispose() => _temp.Dispose();

    static JsonObject TinyConfig() => JsonNode.Parse(File.ReadAllText(Path.Combine(TinyLlama, "config.json")))!.AsObject();

    /// <summary>Writes the tiny-llama config with <paramref name="key"/> set to the JSON <paramref name="value"/> and loads it.</summary>
    InputException LoadWith(string key, string value, out string path)
    {
        var json = TinyConfig();
        json[key] = JsonNode.Parse(value);
        path = _temp.Write("config.json", json.ToJsonString());
        string file = path;
        return Assert.Throws<InputException>(() => LlamaConfig.Load(file));
    }

    [Theory]
    [InlineData("num_key_value_heads", "0")]
    [InlineData("num_key_value_heads", "3")]              // 4 heads are not a multiple of 3
    [InlineData("architectures", "\"LlamaForCausalLM\"")]   // a string, not a list
    [InlineData("architectures", "[1]")]
    [InlineData("eos_token_id", "\"2\"")]
    [InlineData("eos_token_id", "[\"2\"]")]
    [InlineData("eos_token_id", "1000")]                    // vocab_size is 1000: ids are 0..999
    [InlineData("bos_token_id", "-1")]
    [InlineData("pad_token_id", "1.5")]
    [InlineData("vocab_size", "1e12")]
    [InlineData("vocab_size", "99999999999")]
    [InlineData("num_hidden_layers", "-1")]
    [InlineData("num_hidden_layers", "0")]
    [InlineData("num_hidden_layers", "2.5")]
    [InlineData("hidden_size", "\"64\"")]
    [InlineData("head_dim", "15")]                          // rotary embeddings need an even head_dim
    [InlineData("rms_norm_eps", "0")]
    [InlineData("rope_theta", "-10000")]
    [InlineData("tie_word_embeddings", "\"true\"")]
    [InlineData("rope_scaling", "\"llama3\"")]
    [InlineData("hidden_act", "[\"silu\"]")]
    [InlineData("partial_rotary_factor", "0.5")]
    [InlineData("attention_dropout", "0.1")]
    [InlineData("rope_parameters", "{\"rope_type\": \"yarn\", \"factor\": 4.0}")]
    [InlineData("rope_scaling", "{\"rope_type\": \"llama3\", \"factor\": \"8\"}")]
    [InlineData("rope_scaling", "{\"rope_type\": \"llama3\", \"low_freq_factor\": 4.0, \"high_freq_factor\": 1.0}")]
    public void MalformedSettingIsOneErrorNamingTheFileAndTheKey(string key, string value)
    {
        var error = LoadWith(key, value, out var path);
        Assert.StartsWith(path + ": ", error.Message);
        Assert.Contains(key, error.Message);
    }

    [Fact]
    public void NullSettingMeansHuggingFacesDefault()
    {
        var json = TinyConfig();
        json["max_position_embeddings"] = null;
        json["num_key_value_heads"] = null;
        var config = LlamaConfig.FromJson(json);
        Assert.Equal(2048, config.MaxPositionEmbeddings);
        Assert.Equal(4, config.NumKeyValueHeads);   // HF: num_key_value_heads defaults to num_attention_heads
    }

    [Fact]
    public void HiddenSizeNotDivisibleByHeadsNeedsHeadDim()
    {
        var json = TinyConfig();
        json["hidden_size"] = 66;
        json.Remove("head_dim");
        var error = Assert.Throws<InputException>(() => LlamaConfig.FromJson(json));
        Assert.Contains("hidden_size 66 is not a multiple of num_attention_heads 4", error.Message);
        json["head_dim"] = 16;
        Assert.Equal(16, LlamaConfig.FromJson(json).HeadDim);
    }

    [Theory]
    [InlineData("LlamaForSequenceClassification", "llama")]
    [InlineData("LlamaForTokenClassification", "llama")]
    [InlineData("MistralForCausalLM", "mistral")]
    public void ArchitecturesOtherThanTheTwoCausalLmsAreRefused(string architecture, string modelType)
    {
        var json = TinyConfig();
        json["architectures"] = new JsonArray(architecture);
        json["model_type"] = modelType;
        var error = Assert.Throws<InputException>(() => LlamaConfig.FromJson(json));
        Assert.Contains(architecture, error.Message);
        Assert.Contains("LlamaForCausalLM", error.Message);
    }

    [Fact]
    public void ModelTypeThatContradictsTheArchitectureIsRefused()
    {
        var json = TinyConfig();
        json["model_type"] = "olmo2";
        Assert.Contains("model_type 'olmo2' does not match", Assert.Throws<InputException>(() => LlamaConfig.FromJson(json)).Message);
    }

    [Fact]
    public void PartialRotaryFactorOfOneIsHuggingFacesDefaultAndAccepted()
    {
        var json = TinyConfig();
        json["partial_rotary_factor"] = 1.0;
        Assert.Equal(16, LlamaConfig.FromJson(json).HeadDim);
        json["rope_parameters"] = new JsonObject { ["rope_type"] = "default", ["rope_theta"] = 10000.0, ["partial_rotary_factor"] = 0.25 };
        Assert.Contains("rope_parameters.partial_rotary_factor", Assert.Throws<InputException>(() => LlamaConfig.FromJson(json)).Message);
    }

    [Fact]
    public void EosTokenIdMayBeOneIdOrAListAndSavesBackInTheSameForm()
    {
        var json = TinyConfig();
        Assert.Equal([2], LlamaConfig.FromJson(json).EosTokenIds);
        json["eos_token_id"] = new JsonArray(2, 111, 7);
        var config = LlamaConfig.FromJson(json);
        Assert.Equal([2, 111, 7], config.EosTokenIds);
        Assert.Equal("[2,111,7]", config.ToJson()["eos_token_id"]!.ToJsonString());
        json["eos_token_id"] = null;
        Assert.Empty(LlamaConfig.FromJson(json).EosTokenIds);
    }

    [Fact]
    public void ConfigsWithTheSameEosListAreEqual()
    {
        var json = TinyConfig();
        json["eos_token_id"] = new JsonArray(2, 111);
        Assert.Equal(LlamaConfig.FromJson(json), LlamaConfig.FromJson(JsonNode.Parse(json.ToJsonString())!.AsObject()));
        var other = TinyConfig();
        other["eos_token_id"] = new JsonArray(111, 2);
        Assert.NotEqual(LlamaConfig.FromJson(json), LlamaConfig.FromJson(other));
    }

    [Fact]
    public void RopeParametersFormReadsTheSameSettingsAsTopLevelRopeScaling()
    {
        var folder = SharedData.Fixture("models", "tiny-llama3-rope");
        var classic = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "config.json")))!.AsObject();
        var newer = ToRopeParameters(classic);
        Assert.Null(newer["rope_theta"]);
        Assert.Equal(LlamaConfig.FromJson(classic), LlamaConfig.FromJson(newer));
        Assert.Equal(new RopeScaling(8.0, 1.0, 4.0, 32), LlamaConfig.FromJson(newer).RopeScaling);
        Assert.Equal(500000.0, LlamaConfig.FromJson(newer).RopeTheta);
    }

    [Fact]
    public void RopeScalingAndRopeParametersThatDisagreeAreRefused()
    {
        var classic = JsonNode.Parse(File.ReadAllText(SharedData.Fixture("models", "tiny-llama3-rope", "config.json")))!.AsObject();
        var both = ToRopeParameters(classic);
        both["rope_scaling"] = classic["rope_scaling"]!.DeepClone();
        Assert.NotNull(LlamaConfig.FromJson(both).RopeScaling);              // the same scaling twice is consistent
        both["rope_parameters"]!["factor"] = 4.0;
        Assert.Contains("describe different rotary scalings", Assert.Throws<InputException>(() => LlamaConfig.FromJson(both)).Message);
    }

    [Fact]
    public void ConfigThatIsNotAJsonObjectIsRefused()
    {
        var path = _temp.Write("config.json", "[1, 2]");
        Assert.Contains("expected a JSON object", Assert.Throws<InputException>(() => LlamaConfig.Load(path)).Message);
    }

    /// <summary>
    /// The transformers v5 form: rope_scaling and the top-level rope_theta moved into one
    /// rope_parameters object (with rope_type, factor, … and rope_theta).
    /// </summary>
    internal static JsonObject ToRopeParameters(JsonObject classic)
    {
        var json = JsonNode.Parse(classic.ToJsonString())!.AsObject();
        var rope = json["rope_scaling"]!.AsObject();
        json.Remove("rope_scaling");
        rope["rope_theta"] = json["rope_theta"]!.GetValue<double>();
        json.Remove("rope_theta");
        json["rope_parameters"] = rope;
        return json;
    }
}
