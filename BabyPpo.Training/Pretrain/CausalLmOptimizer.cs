using System.Globalization;
using BabyPpo.Training.Model;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace BabyPpo.Training.Pretrain;

/// <summary>
/// The training step of a causal LM: next-token cross-entropy, backward, global-norm gradient
/// clipping and a TorchSharp AdamW update with decoupled weight decay on the matrices (the tied
/// embedding included) and none on the 1-D norm weights and biases. Its moments can be saved and
/// restored by parameter name, for exact resumption.
/// </summary>
public sealed class CausalLmOptimizer : IDisposable
{
    readonly CausalLM _model;
    readonly AdamW _adam;
    readonly List<(string Name, Parameter Parameter)> _parameters;   // in the optimizer's state order
    readonly double _gradClip;

    public CausalLmOptimizer(CausalLM model, PretrainConfig config)
    {
        _model = model;
        _gradClip = config.GradClip;
        var trainable = model.named_parameters().Where(p => p.parameter.requires_grad).ToList();
        _parameters = [.. trainable.Where(p => p.parameter.dim() >= 2), .. trainable.Where(p => p.parameter.dim() < 2)];
        var decay = _parameters.Where(p => p.Parameter.dim() >= 2).Select(p => p.Parameter).ToList();
        var noDecay = _parameters.Where(p => p.Parameter.dim() < 2).Select(p => p.Parameter).ToList();
        _adam = optim.AdamW(
            [
                new AdamW.ParamGroup(decay, config.LearningRate, config.Beta1, config.Beta2, config.Epsilon, config.WeightDecay),
                new AdamW.ParamGroup(noDecay, config.LearningRate, config.Beta1, config.Beta2, config.Epsilon, 0.0),
            ],
            config.LearningRate, config.Beta1, config.Beta2, config.Epsilon, config.WeightDecay);
        // The moments live as long as the optimizer: keep them out of any dispose scope the caller has open.
        foreach (var state in States())
        {
            state.exp_avg.DetachFromDisposeScope();
            state.exp_avg_sq.DetachFromDisposeScope();
        }
    }

    /// <summary>Parameters being trained, the tied embedding counted once.</summary>
    public long Parameters => _parameters.Sum(p => p.Parameter.numel());

    /// <summary>AdamW's step count (the same for every parameter).</summary>
    public long AdamStep
    {
        get
        {
            var steps = States().Select(s => s.step).Distinct().ToList();
            return steps.Count == 1 ? steps[0] : throw new InvalidOperationException($"AdamW parameters are at different steps ({string.Join(", ", steps)})");
        }
    }

    /// <summary>
    /// One update on <paramref name="batch"/> rows of <paramref name="length"/> token ids each (row-major
    /// in <paramref name="ids"/>): the inputs are a row's first <c>length − 1</c> tokens, the targets its
    /// last <c>length − 1</c>. Returns the mean cross-entropy (nats per token) before the update.
    /// </summary>
    public double Step(long[] ids, int batch, int length, double learningRate)
    {
        if (ids.Length != batch * length) throw new ArgumentException($"expected {batch} × {length} ids, got {ids.Length}", nameof(ids));
        using var scope = NewDisposeScope();
        _model.train();
        foreach (var group in _adam.ParamGroups) group.LearningRate = learningRate;
        var rows = tensor(ids, [batch, length], device: _model.Device);              // (B, T+1)
        var inputs = rows.narrow(1, 0, length - 1);                                  // (B, T)
        var targets = rows.narrow(1, 1, length - 1).reshape(-1);                     // (B·T)
        var logits = _model.forward(inputs);                                         // (B, T, V)
        var loss = F.cross_entropy(logits.view(-1, logits.shape[^1]), targets);
        _adam.zero_grad();
        loss.backward();
        if (_gradClip > 0) nn.utils.clip_grad_norm_(_parameters.Select(p => p.Parameter), _gradClip);
        _adam.step();
        return loss.item<float>();
    }

    /// <summary>Writes AdamW's moments as safetensors, <c>NAME.exp_avg</c> and <c>NAME.exp_avg_sq</c> per parameter, the step in the metadata.</summary>
    public void Save(string path)
    {
        var states = States();
        var tensors = new Dictionary<string, Tensor>();
        for (int i = 0; i < _parameters.Count; i++)
        {
            tensors[$"{_parameters[i].Name}.exp_avg"] = states[i].exp_avg;
            tensors[$"{_parameters[i].Name}.exp_avg_sq"] = states[i].exp_avg_sq;
        }
        using var scope = NewDisposeScope();
        SafeTensors.Save(path, tensors, new Dictionary<string, string> { ["format"] = "babyppo-adamw", ["step"] = AdamStep.ToString(CultureInfo.InvariantCulture) });
    }

    /// <summary>Restores the moments written by <see cref="Save"/> and sets every parameter's step to <paramref name="adamStep"/>.</summary>
    /// <exception cref="InputException">A moment is missing or has another shape.</exception>
    public void Load(string path, long adamStep)
    {
        var tensors = SafeTensors.Load(path);
        try
        {
            var states = States();
            using var noGrad = no_grad();
            for (int i = 0; i < _parameters.Count; i++)
            {
                foreach (var (suffix, target) in new[] { ("exp_avg", states[i].exp_avg), ("exp_avg_sq", states[i].exp_avg_sq) })
                {
                    var key = $"{_parameters[i].Name}.{suffix}";
                    if (!tensors.TryGetValue(key, out var value) || !value.shape.SequenceEqual(target.shape))
                        throw InputException.At(path, $"missing or mis-shaped optimizer tensor '{key}'");
                    target.copy_(value);
                }
                states[i].step = adamStep;
            }
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
    }

    List<AdamW.State> States() => _adam.state_dict().State.Cast<AdamW.State>().ToList();

    public void Dispose() => _adam.Dispose();
}
