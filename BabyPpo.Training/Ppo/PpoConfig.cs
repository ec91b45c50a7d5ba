using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace BabyPpo.Training.Ppo;

/// <summary>How the per-token KL penalty between policy and reference is estimated (trl's <c>kl_penalty</c>).</summary>
public enum KlPenalty
{
    /// <summary>logp − logp_ref, the sampled estimate (trl's default).</summary>
    Kl,
    /// <summary>|logp − logp_ref|.</summary>
    Abs,
    /// <summary>½ (logp − logp_ref)².</summary>
    Mse,
    /// <summary>The exact KL of the two next-token distributions, summed over the vocabulary.</summary>
    Full,
}

/// <summary>
/// PPO hyper-parameters, field by field those of trl 0.8.6's <c>PPOConfig</c>, with its defaults.
/// The seed system's runs used BatchSize 16 with MiniBatchSize 4 (or 2).
/// </summary>
public sealed record PpoConfig
{
    /// <summary>Seed of the mini-batch permutations (trl: <c>seed</c>, via numpy).</summary>
    public int Seed { get; init; }
    /// <summary>Adam learning rate (trl: <c>learning_rate</c>).</summary>
    public double LearningRate { get; init; } = 1.41e-5;
    /// <summary>Adapt the KL coefficient towards <see cref="Target"/> (trl: <c>adap_kl_ctrl</c>); false keeps it fixed.</summary>
    public bool AdaptiveKlControl { get; init; } = true;
    /// <summary>Initial KL coefficient (trl: <c>init_kl_coef</c>).</summary>
    public double InitKlCoef { get; init; } = 0.2;
    /// <summary>Per-token KL estimator used in the reward (trl: <c>kl_penalty</c>).</summary>
    public KlPenalty KlPenalty { get; init; } = KlPenalty.Kl;
    /// <summary>Target KL of the adaptive controller (trl: <c>target</c>).</summary>
    public double Target { get; init; } = 6;
    /// <summary>Horizon of the adaptive controller, in samples (trl: <c>horizon</c>).</summary>
    public double Horizon { get; init; } = 10000;
    /// <summary>Discount factor (trl: <c>gamma</c>).</summary>
    public double Gamma { get; init; } = 1;
    /// <summary>GAE λ (trl: <c>lam</c>).</summary>
    public double Lam { get; init; } = 0.95;
    /// <summary>Clip range of the policy ratio (trl: <c>cliprange</c>).</summary>
    public double ClipRange { get; init; } = 0.2;
    /// <summary>Clip range of the value prediction around the old value (trl: <c>cliprange_value</c>).</summary>
    public double ClipRangeValue { get; init; } = 0.2;
    /// <summary>Weight of the value loss (trl: <c>vf_coef</c>).</summary>
    public double VfCoef { get; init; } = 0.1;
    /// <summary>Prompts per PPO step (trl: <c>batch_size</c>).</summary>
    public int BatchSize { get; init; } = 128;
    /// <summary>Samples per forward/backward pass (trl: <c>mini_batch_size</c>).</summary>
    public int MiniBatchSize { get; init; } = 128;
    /// <summary>Mini-batches whose gradients are summed before one optimizer step (trl: <c>gradient_accumulation_steps</c>).</summary>
    public int GradientAccumulationSteps { get; init; } = 1;
    /// <summary>Passes over the batch per step (trl: <c>ppo_epochs</c>).</summary>
    public int PpoEpochs { get; init; } = 4;
    /// <summary>Clip the gradient norm to this before each optimizer step; null = off (trl: <c>max_grad_norm</c>).</summary>
    public double? MaxGradNorm { get; init; }
    /// <summary>Stop the epochs of a step early when the policy KL exceeds 1.5 × <see cref="TargetKl"/> (trl: <c>early_stopping</c>).</summary>
    public bool EarlyStopping { get; init; }
    /// <summary>KL threshold of early stopping (trl: <c>target_kl</c>).</summary>
    public double TargetKl { get; init; } = 1;
    /// <summary>Skip a mini-batch whose mean ratio exceeds this (trl: <c>ratio_threshold</c>).</summary>
    public double RatioThreshold { get; init; } = 10.0;
    /// <summary>Divide scores by their running standard deviation (trl: <c>use_score_scaling</c>).</summary>
    public bool UseScoreScaling { get; init; }
    /// <summary>With score scaling, also subtract the running mean (trl: <c>use_score_norm</c>).</summary>
    public bool UseScoreNorm { get; init; }
    /// <summary>Clip scores to ±this; null = off (trl: <c>score_clip</c>).</summary>
    public double? ScoreClip { get; init; }
    /// <summary>Whiten the per-token rewards before GAE (trl: <c>whiten_rewards</c>).</summary>
    public bool WhitenRewards { get; init; }
    /// <summary>Adam β₁, β₂ and ε (trl builds torch.optim.Adam with its defaults; no weight decay).</summary>
    public double AdamBeta1 { get; init; } = 0.9;
    public double AdamBeta2 { get; init; } = 0.999;
    public double AdamEps { get; init; } = 1e-8;
    /// <summary>
    /// Dropout before the value head (trl's <c>summary_dropout_prob</c>, 0.1). trl 0.8.6 puts the
    /// model in eval mode before every forward pass, so the dropout never acts there;
    /// <see cref="ValueHeadDropoutInTraining"/> = true applies it to the training forward passes.
    /// </summary>
    public double ValueHeadDropout { get; init; } = 0.1;
    public bool ValueHeadDropoutInTraining { get; init; }

    /// <summary>Samples per optimizer step (trl: <c>backward_batch_size</c>).</summary>
    public int BackwardBatchSize => MiniBatchSize * GradientAccumulationSteps;

    // trl names that differ from the snake_case of ours, and trl settings that do not apply here.
    static readonly Dictionary<string, string> TrlAliases = new()
    {
        ["cliprange"] = "clip_range", ["cliprange_value"] = "clip_range_value", ["adap_kl_ctrl"] = "adaptive_kl_control",
    };
    static readonly HashSet<string> TrlIgnored =
    [
        "exp_name", "log_with", "task_name", "model_name", "query_dataset", "reward_model", "remove_unused_columns", "tracker_kwargs",
        "accelerator_kwargs", "project_kwargs", "tracker_project_name", "push_to_hub_if_best_kwargs", "steps", "forward_batch_size",
        "world_size", "optimize_cuda_cache", "optimize_device_cache", "compare_steps", "is_encoder_decoder", "is_peft_model",
        "backward_batch_size", "global_backward_batch_size", "global_batch_size",
    ];

    /// <summary>
    /// Reads a PPO config JSON written with trl's <c>PPOConfig</c> field names (learning_rate,
    /// batch_size, mini_batch_size, cliprange, adap_kl_ctrl, …). Fields left out keep trl's defaults;
    /// trl settings without meaning here (logging, hub, devices) are ignored; anything else is an error.
    /// </summary>
    public static PpoConfig FromTrlJson(string json, string source = "ppo.json")
    {
        JsonObject o;
        try { o = JsonNode.Parse(json)?.AsObject() ?? throw new JsonException("empty"); }
        catch (Exception e) when (e is JsonException or InvalidOperationException) { throw InputException.At(source, $"not a JSON object ({e.Message})"); }
        var known = typeof(PpoConfig).GetProperties().Where(p => p.CanWrite).Select(p => JsonNamingPolicy.SnakeCaseLower.ConvertName(p.Name)).ToHashSet();
        var cleaned = new JsonObject();
        foreach (var (key, value) in o)
        {
            var name = TrlAliases.GetValueOrDefault(key, key);
            if (TrlIgnored.Contains(key)) continue;
            if (!known.Contains(name))
                throw InputException.At(source, $"unknown PPO setting \"{key}\"; expected trl PPOConfig fields such as {string.Join(", ", known.Order().Take(8))}, …");
            cleaned[name] = value?.DeepClone();
        }
        try
        {
            var config = cleaned.Deserialize<PpoConfig>(new JsonSerializerOptions
            {
                PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
                Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
            })!;
            config.Validate();
            return config;
        }
        catch (JsonException e)
        {
            throw InputException.At(source, $"bad value: {e.Message}");
        }
        catch (InputException e)
        {
            throw InputException.At(source, e.Message);
        }
    }

    /// <summary>Checks the relations trl checks, with messages that name the field.</summary>
    public void Validate() => SettingProblem.ThrowFirst(Problems());

    /// <summary>Every setting out of range, in the order <see cref="Validate"/> checks them.</summary>
    public IEnumerable<SettingProblem> Problems()
    {
        static SettingProblem Problem(string[] fields, string message) => new(fields, $"ppo config: {message}");
        if (BatchSize < 1) yield return Problem(["batchSize"], $"batch_size must be at least 1, got {BatchSize}");
        if (MiniBatchSize < 1) yield return Problem(["miniBatchSize"], $"mini_batch_size must be at least 1, got {MiniBatchSize}");
        if (GradientAccumulationSteps < 1) yield return Problem(["gradientAccumulationSteps"], $"gradient_accumulation_steps must be at least 1, got {GradientAccumulationSteps}");
        if (BatchSize >= 1 && BackwardBatchSize >= 1 && BatchSize % BackwardBatchSize != 0)
            yield return Problem(["batchSize", "miniBatchSize", "gradientAccumulationSteps"], $"batch_size ({BatchSize}) must be a multiple of mini_batch_size × gradient_accumulation_steps ({BackwardBatchSize})");
        if (PpoEpochs < 1) yield return Problem(["ppoEpochs"], $"ppo_epochs must be at least 1, got {PpoEpochs}");
        if (!(LearningRate > 0)) yield return Problem(["learningRate"], $"learning_rate must be > 0, got {LearningRate}");
        if (!(InitKlCoef >= 0)) yield return Problem(["initKlCoef"], $"init_kl_coef must be >= 0, got {InitKlCoef}");
        if (!(Target > 0 && Horizon > 0)) yield return Problem(Target > 0 ? ["horizon"] : Horizon > 0 ? ["target"] : ["target", "horizon"], "target and horizon must be > 0");
        if (Gamma is not (>= 0 and <= 1)) yield return Problem(["gamma"], $"gamma must be in [0, 1], got {Gamma}");
        if (Lam is not (>= 0 and <= 1)) yield return Problem(["lam"], $"lam must be in [0, 1], got {Lam}");
        if (!(ClipRange > 0 && ClipRangeValue > 0))
            yield return Problem(ClipRange > 0 ? ["clipRangeValue"] : ClipRangeValue > 0 ? ["clipRange"] : ["clipRange", "clipRangeValue"], "cliprange and cliprange_value must be > 0");
        if (!(VfCoef >= 0)) yield return Problem(["vfCoef"], $"vf_coef must be >= 0, got {VfCoef}");
        if (!(RatioThreshold > 0)) yield return Problem(["ratioThreshold"], $"ratio_threshold must be > 0, got {RatioThreshold}");
        if (MaxGradNorm is not (null or > 0)) yield return Problem(["maxGradNorm"], $"max_grad_norm must be > 0 when set, got {MaxGradNorm}");
        if (ScoreClip is not (null or > 0)) yield return Problem(["scoreClip"], $"score_clip must be > 0 when set, got {ScoreClip}");
        if (ValueHeadDropout is not (>= 0 and < 1)) yield return Problem(["valueHeadDropout"], $"value head dropout must be in [0, 1), got {ValueHeadDropout}");
    }
}
