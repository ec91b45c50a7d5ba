using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace BabyPpo.Training.Ppo;

/// <summary>
/// The PPO arithmetic of trl 0.8.6 (trl/core.py and PPOTrainer), one small function each, in the
/// order a step uses them. Shapes: B samples, L = padded length − 1 (position t predicts token
/// t + 1), V vocabulary. Masks are 1 on response tokens.
/// </summary>
public static class PpoMath
{
    /// <summary>ln p(labels) under the logits: (B, L, V), (B, L) → (B, L).</summary>
    public static Tensor LogProbsFromLogits(Tensor logits, Tensor labels) =>
        logits.log_softmax(-1).gather(2, labels.unsqueeze(2)).squeeze(-1);

    /// <summary>Mean of the values where mask is 1 (over everything).</summary>
    public static Tensor MaskedMean(Tensor values, Tensor mask) => (values * mask).sum() / mask.sum();

    /// <summary>Unbiased variance of the values where mask is 1 (trl masked_var, Bessel-corrected).</summary>
    public static Tensor MaskedVar(Tensor values, Tensor mask)
    {
        var centred = values - MaskedMean(values, mask);
        var variance = MaskedMean(centred.square(), mask);
        var count = mask.sum();
        if (count.item<float>() == 0)
            throw new InvalidOperationException("masked variance over no response tokens: use a larger mini-batch");
        // One token gives 0 · 1/0 = NaN, as in trl: a NaN statistic, not a crash (the trainer refuses
        // steps with fewer than two response tokens, whose advantages could not be whitened).
        return variance * (count / (count - 1));
    }

    /// <summary>(values − mean) / sqrt(var + 1e-8) over the masked values; the mean is added back when <paramref name="shiftMean"/> is false.</summary>
    public static Tensor MaskedWhiten(Tensor values, Tensor mask, bool shiftMean = true)
    {
        var mean = MaskedMean(values, mask);
        var whitened = (values - mean) * (MaskedVar(values, mask) + 1e-8).rsqrt();
        return shiftMean ? whitened : whitened + mean;
    }

    /// <summary>Entropy of each next-token distribution: logsumexp(z) − Σ softmax(z)·z, (B, L, V) → (B, L).</summary>
    public static Tensor EntropyFromLogits(Tensor logits) =>
        logits.logsumexp(-1) - (logits.softmax(-1) * logits).sum(-1);

    /// <summary>
    /// Per-token KL penalty (B, L). For <see cref="KlPenalty.Full"/> the arguments are the full
    /// log-distributions (B, L, V) and the KL is summed over the vocabulary.
    /// </summary>
    public static Tensor KlPenaltyOf(Tensor logProbs, Tensor refLogProbs, KlPenalty kind) => kind switch
    {
        KlPenalty.Kl => logProbs - refLogProbs,
        KlPenalty.Abs => (logProbs - refLogProbs).abs(),
        KlPenalty.Mse => 0.5 * (logProbs - refLogProbs).square(),
        // trl: F.kl_div(ref_logprob, logprob, log_target=True, reduction="none").sum(-1) = Σ p (log p − log p_ref)
        KlPenalty.Full => (logProbs.exp() * (logProbs - refLogProbs)).sum(-1),
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    /// <summary>
    /// Rewards per token: −kl_coef · KL everywhere, plus the score at each row's last response
    /// token (trl compute_rewards). Returns (rewards, non-score rewards, kls), each (B, L).
    /// </summary>
    public static (Tensor Rewards, Tensor NonScoreRewards, Tensor Kls) ComputeRewards(
        Tensor scores, Tensor kls, Tensor masks, double klCoef)
    {
        var nonScore = -klCoef * kls;                                                // (B, L)
        long width = masks.shape[1];
        // index of the last 1 in each mask row: argmax of position · mask
        var last = (arange(width, device: masks.device).unsqueeze(0) * masks).argmax(1, keepdim: true); // (B, 1)
        var rewards = nonScore.scatter_add(1, last, scores.to(nonScore.dtype).unsqueeze(1));
        return (rewards, nonScore, kls);
    }

    /// <summary>
    /// Generalised advantage estimation backwards over all L positions (trl compute_advantages):
    /// values and rewards are masked first, advantages are whitened over the mask afterwards, and
    /// returns = advantages (before whitening) + values. Returns (masked values, advantages, returns).
    /// </summary>
    public static (Tensor Values, Tensor Advantages, Tensor Returns) ComputeAdvantages(
        Tensor values, Tensor rewards, Tensor masks, double gamma, double lam, bool whitenRewards)
    {
        values = values * masks;
        rewards = rewards * masks;
        if (whitenRewards) rewards = MaskedWhiten(rewards, masks, shiftMean: false);
        long length = rewards.shape[1];
        var reversed = new List<Tensor>((int)length);
        Tensor lastGaeLam = zeros_like(rewards.select(1, 0));                          // (B)
        for (long t = length - 1; t >= 0; t--)
        {
            var nextValues = t < length - 1 ? values.select(1, t + 1) : zeros_like(lastGaeLam);
            var delta = rewards.select(1, t) + gamma * nextValues - values.select(1, t);
            lastGaeLam = delta + gamma * lam * lastGaeLam;
            reversed.Add(lastGaeLam);
        }
        reversed.Reverse();
        var advantages = stack(reversed, 1);                                            // (B, L)
        var returns = advantages + values;
        advantages = MaskedWhiten(advantages, masks).detach();
        return (values, advantages, returns);
    }

    /// <summary>The losses of one mini-batch and their diagnostics (trl PPOTrainer.loss).</summary>
    public sealed record LossResult(Tensor PolicyLoss, Tensor ValueLoss, Tensor Total, MiniBatchStats Stats);

    /// <summary>
    /// Clipped policy loss, clipped value loss (½ max of the two squared errors) and their
    /// diagnostics. <paramref name="total"/> = pg_loss + vf_coef · vf_loss; a mini-batch whose mean
    /// ratio exceeds the threshold contributes zero loss (trl skips it).
    /// </summary>
    public static LossResult Loss(
        Tensor oldLogProbs, Tensor oldValues, Tensor logits, Tensor valuePredictions, Tensor logProbs,
        Tensor mask, Tensor advantages, Tensor returns, PpoConfig config)
    {
        var clippedValues = minimum(maximum(valuePredictions, oldValues - config.ClipRangeValue), oldValues + config.ClipRangeValue);
        var vfLosses1 = (valuePredictions - returns).square();
        var vfLosses2 = (clippedValues - returns).square();
        var vfLoss = 0.5 * MaskedMean(maximum(vfLosses1, vfLosses2), mask);
        var vfClipFrac = MaskedMean(vfLosses2.gt(vfLosses1).to(ScalarType.Float32), mask);

        var ratio = (logProbs - oldLogProbs).exp();
        var pgLosses = -advantages * ratio;
        var pgLosses2 = -advantages * ratio.clamp(1.0 - config.ClipRange, 1.0 + config.ClipRange);
        var pgLoss = MaskedMean(maximum(pgLosses, pgLosses2), mask);
        var pgClipFrac = MaskedMean(pgLosses2.gt(pgLosses).to(ScalarType.Float32), mask);

        var total = pgLoss + config.VfCoef * vfLoss;
        double averageRatio = MaskedMean(ratio, mask).item<float>();
        bool skipped = averageRatio > config.RatioThreshold;
        if (skipped)
        {
            pgLoss = pgLoss * 0.0;
            vfLoss = vfLoss * 0.0;
            total = total * 0.0;
        }

        using var _ = no_grad();
        var stats = new MiniBatchStats
        {
            PolicyLoss = pgLoss.item<float>(),
            ValueLoss = vfLoss.item<float>(),
            TotalLoss = total.item<float>(),
            PolicyClipFrac = pgClipFrac.item<float>(),
            ValueClipFrac = vfClipFrac.item<float>(),
            Entropy = MaskedMean(EntropyFromLogits(logits), mask).item<float>(),
            ApproxKl = (0.5 * MaskedMean((logProbs - oldLogProbs).square(), mask)).item<float>(),
            PolicyKl = MaskedMean(oldLogProbs - logProbs, mask).item<float>(),
            AverageRatio = averageRatio,
            AdvantagesMean = MaskedMean(advantages, mask).item<float>(),
            ReturnsMean = MaskedMean(returns, mask).item<float>(),
            ReturnsVar = MaskedVar(returns, mask).item<float>(),
            ValuePrediction = MaskedMean(valuePredictions, mask).item<float>(),
            ValueError = MaskedMean((valuePredictions - returns).square(), mask).item<float>(),
            ValuesMean = MaskedMean(oldValues, mask).item<float>(),
            ValuesVar = MaskedVar(oldValues, mask).item<float>(),
            Skipped = skipped,
        };
        return new LossResult(pgLoss, config.VfCoef * vfLoss, total, stats);
    }
}

/// <summary>Diagnostics of one PPO mini-batch, with trl's meanings (ppo/loss/*, ppo/policy/*, ppo/returns/*, ppo/val/*).</summary>
public sealed record MiniBatchStats
{
    public double PolicyLoss { get; init; }
    /// <summary>½ masked mean of the larger squared value error, before the vf_coef weight.</summary>
    public double ValueLoss { get; init; }
    public double TotalLoss { get; init; }
    public double PolicyClipFrac { get; init; }
    public double ValueClipFrac { get; init; }
    public double Entropy { get; init; }
    public double ApproxKl { get; init; }
    public double PolicyKl { get; init; }
    public double AverageRatio { get; init; }
    public double AdvantagesMean { get; init; }
    public double ReturnsMean { get; init; }
    public double ReturnsVar { get; init; }
    public double ValuePrediction { get; init; }
    public double ValueError { get; init; }
    public double ValuesMean { get; init; }
    public double ValuesVar { get; init; }
    /// <summary>The mean ratio exceeded ratio_threshold and the mini-batch contributed no gradient.</summary>
    public bool Skipped { get; init; }
}

/// <summary>trl's adaptive KL controller (Ziegler et al. 2019), or a fixed coefficient.</summary>
public sealed class KlController(double initialCoef, bool adaptive, double target, double horizon)
{
    public double Value { get; private set; } = initialCoef;

    /// <summary>value · (1 + clip(kl / target − 1, ±0.2) · samples / horizon); no change when fixed.</summary>
    public void Update(double currentKl, int samples)
    {
        if (!adaptive) return;
        double error = Math.Clamp(currentKl / target - 1, -0.2, 0.2);
        Value *= 1 + error * samples / horizon;
    }

    /// <summary>Restores the coefficient from a checkpoint.</summary>
    public void Restore(double value) => Value = value;
}

/// <summary>Running mean and standard deviation of scores for score scaling (trl RunningMoments).</summary>
public sealed class RunningMoments
{
    public double Mean { get; private set; }
    public double Std { get; private set; } = 1;
    public double Var { get; private set; } = 1;
    public double Count { get; private set; } = 1e-24;

    /// <summary>Adds a batch (population mean/variance merged by Chan's formula, as trl does).</summary>
    public void Update(IReadOnlyList<double> xs)
    {
        double n = xs.Count;
        double mean = xs.Average();
        double variance = xs.Sum(x => (x - mean) * (x - mean)) / n;
        double delta = mean - Mean;
        double total = Count + n;
        double oldSum = Var * Count + delta * delta * Count * n / total;
        Mean += delta * n / total;
        Var = (oldSum + variance * n) / total;
        Std = Math.Sqrt(Var * total / (total - 1));
        Count = total;
    }

    public void Restore(double mean, double std, double var, double count) => (Mean, Std, Var, Count) = (mean, std, var, count);
}
