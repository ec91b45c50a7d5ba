using System.Text.Json.Nodes;
using BabyPpo.Training.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace BabyPpo.Training.Model;

/// <summary>A model with the tokenizer it was trained with.</summary>
public sealed record Pretrained(CausalLM Model, Tokenizer Tokenizer) : IDisposable
{
    public void Dispose() => Model.Dispose();
}

/// <summary>
/// Hugging Face checkpoint folders: <c>config.json</c> + <c>model.safetensors</c> (or a sharded
/// <c>model.safetensors.index.json</c>), as <c>save_pretrained</c> writes them and the hub serves
/// them. Loading checks every key and shape against the config and names the file on a mismatch.
/// </summary>
public static class Checkpoint
{
    public const string ConfigFile = "config.json";
    public const string WeightsFile = "model.safetensors";
    public const string ShardIndexFile = "model.safetensors.index.json";

    /// <summary>Loads a folder's model and its tokenizer (tokenizer.json and tokenizer_config.json).</summary>
    public static Pretrained Load(string folder, Device? device = null)
    {
        RequireFolder(folder);
        var tokenizer = Tokenizer.Load(folder);
        return new Pretrained(LoadModel(folder, device), tokenizer);
    }

    /// <summary>The folder's tokenizer, or null when it has no tokenizer.json (e.g. a bare weights folder).</summary>
    public static Tokenizer? TryLoadTokenizer(string folder) =>
        File.Exists(Path.Combine(folder, "tokenizer.json")) ? Tokenizer.Load(folder) : null;

    /// <summary>Writes a folder HF transformers loads unchanged: config, weights and tokenizer files.</summary>
    public static void Save(CausalLM model, Tokenizer tokenizer, string folder)
    {
        SaveModel(model, folder);
        tokenizer.Save(folder);
    }

    /// <summary>Builds the model a folder's config.json describes and loads its weights.</summary>
    public static CausalLM LoadModel(string folder, Device? device = null)
    {
        RequireFolder(folder);
        var config = LlamaConfig.Load(Path.Combine(folder, ConfigFile));
        var model = new CausalLM(config);
        try
        {
            LoadWeights(model, folder);
        }
        catch
        {
            model.Dispose();
            throw;
        }
        model.eval();
        return device is null || device.type == DeviceType.CPU ? model : model.to(device);
    }

    /// <summary>The dtypes a weight may be stored in; all are read as float32.</summary>
    public static readonly IReadOnlySet<string> WeightDTypes = new HashSet<string>(StringComparer.Ordinal) { "F32", "F16", "BF16" };

    /// <summary>
    /// Copies a folder's weights into <paramref name="model"/>; every key must match in name and
    /// shape, and be stored as a float (<see cref="WeightDTypes"/>): integer or boolean data is no weight.
    /// </summary>
    public static void LoadWeights(CausalLM model, string folder)
    {
        var expected = model.state_dict();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        using var noGrad = no_grad();
        foreach (var file in WeightFiles(folder))
        {
            foreach (var entry in SafeTensors.ReadHeader(file, out _))
                if (expected.ContainsKey(entry.Name) && !WeightDTypes.Contains(entry.DType))
                    throw InputException.At(file, $"tensor '{entry.Name}' is stored as {entry.DType}; weights must be F32, F16 or BF16");
            var tensors = SafeTensors.Load(file);
            try
            {
                foreach (var (name, value) in tensors)
                {
                    if (!expected.TryGetValue(name, out var target))
                    {
                        if (IsIgnorable(name, model.Config)) continue;
                        throw InputException.At(file, $"unexpected tensor '{name}': a {Architecture(model.Config)} with this config.json has no such weight");
                    }
                    if (!target.shape.SequenceEqual(value.shape))
                        throw InputException.At(file, $"tensor '{name}' has shape [{string.Join(", ", value.shape)}], config.json implies [{string.Join(", ", target.shape)}]");
                    target.copy_(value);
                    seen.Add(name);
                }
            }
            finally
            {
                foreach (var t in tensors.Values) t.Dispose();
            }
        }
        var missing = expected.Keys.Where(k => !seen.Contains(k)).ToList();
        if (missing.Count > 0)
            throw InputException.At(WeightFiles(folder)[0], $"missing tensor{(missing.Count > 1 ? "s" : "")} {string.Join(", ", missing.Take(5).Select(m => $"'{m}'"))}{(missing.Count > 5 ? $" and {missing.Count - 5} more" : "")}");
    }

    /// <summary>Writes config.json and model.safetensors (float32; tied checkpoints omit lm_head.weight, as HF does).</summary>
    public static void SaveModel(CausalLM model, string folder)
    {
        Directory.CreateDirectory(folder);
        model.Config.Save(Path.Combine(folder, ConfigFile));
        var metadata = new Dictionary<string, string> { ["format"] = "pt" };
        SafeTensors.Save(Path.Combine(folder, WeightsFile), model.state_dict(), metadata);
    }

    /// <summary>The safetensors file(s) of a folder, in the order of the shard index when there is one.</summary>
    public static IReadOnlyList<string> WeightFiles(string folder)
    {
        RequireFolder(folder);
        var single = Path.Combine(folder, WeightsFile);
        if (File.Exists(single)) return [single];
        var index = Path.Combine(folder, ShardIndexFile);
        if (File.Exists(index))
        {
            try
            {
                var map = JsonNode.Parse(File.ReadAllText(index))!["weight_map"]!.AsObject();
                return map.Select(kv => kv.Value!.GetValue<string>()).Distinct().Select(f => Path.Combine(folder, f)).ToList();
            }
            catch (Exception e) when (e is System.Text.Json.JsonException or NullReferenceException or InvalidOperationException)
            {
                throw InputException.At(index, "expected a JSON object with a \"weight_map\" of tensor names to shard files");
            }
        }
        if (File.Exists(Path.Combine(folder, "pytorch_model.bin")))
            throw InputException.At(Path.Combine(folder, "pytorch_model.bin"), "pickled PyTorch weights are not read (they can run code); convert the folder to safetensors with transformers' save_pretrained(safe_serialization=True)");
        throw InputException.At(folder, $"no {WeightsFile} or {ShardIndexFile} in this folder");
    }

    /// <summary>Refuses a path that is not an existing folder ("checkpoint folder not found", or a file given instead).</summary>
    public static void RequireFolder(string folder)
    {
        if (File.Exists(folder)) throw InputException.At(folder, "expected a checkpoint folder (config.json, model.safetensors), got a file");
        if (!Directory.Exists(folder)) throw InputException.At(folder, "checkpoint folder not found");
    }

    // HF ignores these too: the rotary table is recomputed, and a tied head is the embedding.
    static bool IsIgnorable(string name, LlamaConfig config) =>
        name.EndsWith("rotary_emb.inv_freq", StringComparison.Ordinal) || (config.TieWordEmbeddings && name == "lm_head.weight");

    static string Architecture(LlamaConfig config) => config.IsOlmo2 ? "Olmo2ForCausalLM" : "LlamaForCausalLM";
}
