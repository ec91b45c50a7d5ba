using BabyPpo.Training.Model;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace BabyPpo.Training.Ppo;

/// <summary>
/// trl's value head: dropout, then <c>summary</c> = Linear(hidden, 1) on the final hidden state
/// (after the final norm). Its weights are saved as <c>v_head.summary.weight</c> / <c>.bias</c>,
/// trl's names, in <c>value_head.safetensors</c> beside the model.
/// </summary>
public sealed class ValueHead : Module<Tensor, Tensor>
{
    readonly Linear summary;
    readonly Dropout dropout;

    public ValueHead(int hidden, double dropoutProbability) : base(nameof(ValueHead))
    {
        summary = Linear(hidden, 1);   // PyTorch's default initialisation, as trl's default v_head init
        dropout = Dropout(dropoutProbability);
        RegisterComponents();
    }

    /// <summary>(B, T, H) → (B, T) values.</summary>
    public override Tensor forward(Tensor hidden) => summary.forward(dropout.forward(hidden)).squeeze(-1);

    public const string FileName = "value_head.safetensors";

    /// <summary>The head's tensors under trl's key names.</summary>
    public Dictionary<string, Tensor> TrlStateDict() =>
        state_dict().Where(kv => kv.Key.StartsWith("summary.", StringComparison.Ordinal))
            .ToDictionary(kv => "v_head." + kv.Key, kv => kv.Value);

    public void Save(string folder) => SafeTensors.Save(Path.Combine(folder, FileName), TrlStateDict());

    /// <summary>Loads v_head.summary.weight and .bias from a safetensors file (trl's names).</summary>
    public void Load(string path)
    {
        var tensors = SafeTensors.Load(path);
        try
        {
            using var _ = no_grad();
            var own = TrlStateDict();
            foreach (var (name, target) in own)
            {
                if (!tensors.TryGetValue(name, out var value))
                    throw InputException.At(path, $"missing tensor '{name}' (expected trl's value head keys v_head.summary.weight and v_head.summary.bias)");
                if (!value.shape.SequenceEqual(target.shape))
                    throw InputException.At(path, $"tensor '{name}' has shape [{string.Join(", ", value.shape)}], expected [{string.Join(", ", target.shape)}]");
                target.copy_(value);
            }
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
    }
}
