using System.Diagnostics;
using BabyPpo.Training.Model;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BabyPpo.Training.Ppo;

/// <summary>
/// The tensors of one PPO step before any update (trl's batch_dict), all (B, L) but the first two
/// (B, L + 1). Owned by the step's dispose scope: read them inside the inspect callback only.
/// </summary>
public sealed record PpoBatch(
    Tensor InputIds, Tensor AttentionMask, Tensor Masks, Tensor OldLogProbs, Tensor RefLogProbs, Tensor OldValues,
    Tensor Kls, Tensor Rewards, Tensor NonScoreRewards, Tensor Advantages, Tensor Returns);

/// <summary>What one <see cref="PpoTrainer.Step"/> did: trl's statistics by trl's names, and each mini-batch's.</summary>
public sealed record PpoStepResult(
    IReadOnlyDictionary<string, double> Stats,
    IReadOnlyList<(int[] Indices, MiniBatchStats Stats)> MiniBatches,
    double KlCoefBefore,
    double KlCoefAfter,
    bool EarlyStopped);

/// <summary>
/// One PPO optimisation step exactly as trl 0.8.6's <c>PPOTrainer.step</c>, numbered as trl's comments:
/// (1) forward passes of policy and reference over query + response, (2) per-token KL penalty
/// and the score at the last response token, (3) GAE and whitened advantages, (4) ppo_epochs passes
/// over shuffled mini-batches with clipped policy and value losses, (5) statistics and the KL
/// controller update. Generation and rewards are the caller's (see PpoRun).
/// </summary>
public sealed class PpoTrainer : IDisposable
{
    readonly OptimizerHelper _optimizer;
    readonly Parameter[] _parameters;
    readonly long _padId;
    Random _permutations;

    public CausalLM Policy { get; }
    public ValueHead ValueHead { get; }
    public CausalLM Reference { get; }
    public PpoConfig Config { get; }
    public KlController Kl { get; }
    public RunningMoments ScoreMoments { get; } = new();

    /// <summary>Mini-batch order of each epoch: a permutation of 0..B−1. Seeded from the config; replace it to replay a given order.</summary>
    public Func<int, int[]> Permutation { get; set; }

    public PpoTrainer(CausalLM policy, ValueHead valueHead, CausalLM reference, PpoConfig config, long padId)
    {
        config.Validate();
        Policy = policy;
        ValueHead = valueHead;
        Reference = reference;
        Config = config;
        _padId = padId;
        Kl = new KlController(config.InitKlCoef, config.AdaptiveKlControl, config.Target, config.Horizon);
        foreach (var p in reference.parameters()) p.requires_grad = false;
        reference.eval();
        // One Adam over policy and value head (trl: Adam(filter(requires_grad, model.parameters()))).
        // A tied embedding is one parameter here, so it is updated once per step.
        _parameters = [.. policy.parameters(), .. valueHead.parameters()];
        _optimizer = optim.Adam(_parameters, config.LearningRate, config.AdamBeta1, config.AdamBeta2, config.AdamEps);
        _permutations = new Random(config.Seed);
        Permutation = n => Shuffle(_permutations, n);
    }

    public OptimizerHelper Optimizer => _optimizer;

    /// <summary>The fewest response tokens a step can train on: the advantages are whitened with an unbiased variance.</summary>
    public const int MinResponseTokens = 2;

    /// <summary>
    /// Runs one step on the batch (trl requires exactly <see cref="PpoConfig.BatchSize"/> samples; fewer
    /// are accepted here, e.g. when empty answers were dropped). Responses must be
    /// non-empty (the caller decides how to treat empty ones). <paramref name="inspect"/> sees the
    /// prepared tensors before the first update (used by the trl parity test).
    /// </summary>
    public PpoStepResult Step(IReadOnlyList<int[]> queries, IReadOnlyList<int[]> responses, IReadOnlyList<double> scores, Action<PpoBatch>? inspect = null)
    {
        int b = queries.Count;
        if (b == 0 || b > Config.BatchSize || responses.Count != b || scores.Count != b)
            throw new ArgumentException($"a PPO step needs 1..batch_size ({Config.BatchSize}) samples with one response and score each; got {queries.Count} queries, {responses.Count} responses, {scores.Count} scores");
        for (int i = 0; i < b; i++)
        {
            if (queries[i].Length == 0) throw new ArgumentException($"query {i} is empty");
            if (responses[i].Length == 0) throw new ArgumentException($"response {i} is empty (trl cannot train on it; keep one token or drop the sample)");
        }
        if (responses.Sum(r => r.Length) < MinResponseTokens)
            throw new ArgumentException($"a PPO step needs at least {MinResponseTokens} response tokens in all to whiten the advantages; got {responses.Sum(r => r.Length)}");

        var clock = Stopwatch.StartNew();
        var timing = new Dictionary<string, double>();
        var scaled = ScaleScores(scores);
        using var scope = NewDisposeScope();
        var (inputIds, attention) = RightPad(queries, responses);                  // (B, T)
        var queryLengths = queries.Select(q => q.Length).ToArray();
        var responseLengths = responses.Select(r => r.Length).ToArray();

        // (1) forward passes without gradients, in chunks of mini_batch_size
        var phase = Stopwatch.StartNew();
        PpoBatch batch;
        Tensor oldLogProbs, oldValues, masks, refLogProbs;
        using (no_grad())
        {
            bool full = Config.KlPenalty == KlPenalty.Full;
            var policyPass = BatchedForward(Policy, ValueHead, inputIds, attention, queryLengths, responseLengths, returnLogits: full, train: false);
            var refPass = BatchedForward(Reference, null, inputIds, attention, queryLengths, responseLengths, returnLogits: full, train: false);
            (oldLogProbs, oldValues, masks, refLogProbs) = (policyPass.LogProbs, policyPass.Values!, policyPass.Masks, refPass.LogProbs);
            timing["time/ppo/forward_pass"] = phase.Elapsed.TotalSeconds;

            // (2) per-token KL penalty, score at the last response token
            phase.Restart();
            var maskF = masks.to(ScalarType.Float32);
            var kls = full
                ? policyPass.Widen(PpoMath.KlPenaltyOf(policyPass.Logits!.log_softmax(-1), refPass.Logits!.log_softmax(-1), KlPenalty.Full))
                : PpoMath.KlPenaltyOf(oldLogProbs, refLogProbs, Config.KlPenalty);
            var scoreTensor = tensor(scaled.Select(s => (float)s).ToArray(), device: Policy.Device);
            var (rewards, nonScore, _) = PpoMath.ComputeRewards(scoreTensor, kls, maskF, Kl.Value);
            timing["time/ppo/compute_rewards"] = phase.Elapsed.TotalSeconds;

            // (3) advantages
            phase.Restart();
            var (values, advantages, returns) = PpoMath.ComputeAdvantages(oldValues, rewards, maskF, Config.Gamma, Config.Lam, Config.WhitenRewards);
            timing["time/ppo/compute_advantages"] = phase.Elapsed.TotalSeconds;
            batch = new PpoBatch(inputIds, attention, masks, oldLogProbs, refLogProbs, values, kls, rewards, nonScore, advantages, returns);
        }
        inspect?.Invoke(batch);

        // (4) epochs over shuffled mini-batches
        phase.Restart();
        var miniBatches = new List<(int[], MiniBatchStats)>();
        bool earlyStopped = false;
        int accumulated = 0;
        for (int epoch = 0; epoch < Config.PpoEpochs && !earlyStopped; epoch++)
        {
            var order = Permutation(b);
            if (order.Length != b || order.Order().Where((v, i) => v != i).Any())
                throw new InvalidOperationException($"the permutation source returned [{string.Join(", ", order)}], not a permutation of 0..{b - 1}");
            for (int start = 0; start < b; start += Config.MiniBatchSize)
            {
                var indices = order[start..Math.Min(b, start + Config.MiniBatchSize)];
                var stats = TrainMiniBatch(batch, indices, queryLengths, responseLengths);
                miniBatches.Add((indices, stats));
                if (++accumulated % Config.GradientAccumulationSteps == 0) OptimizerStep();
            }
            if (Config.EarlyStopping && miniBatches[^1].Item2.PolicyKl > 1.5 * Config.TargetKl)
            {
                _optimizer.zero_grad();
                earlyStopped = true;
            }
        }
        // A batch smaller than batch_size (dropped samples) can end inside an accumulation cycle:
        // apply what was accumulated rather than carry it into the next step (trl never gets here).
        if (!earlyStopped && accumulated % Config.GradientAccumulationSteps != 0) OptimizerStep();
        timing["time/ppo/optimize_step"] = phase.Elapsed.TotalSeconds;

        // (5) statistics, then the KL controller
        var statsOut = StepStats(batch, scores, scaled, queryLengths, responseLengths, miniBatches.Select(m => m.Item2).ToList());
        double klBefore = Kl.Value;
        Kl.Update(statsOut["objective/kl"], Config.BatchSize);   // trl passes config.batch_size, also for a smaller batch
        foreach (var (k, v) in timing) statsOut[k] = v;
        statsOut["time/ppo/total"] = clock.Elapsed.TotalSeconds;
        statsOut["ppo/early_stopped"] = earlyStopped ? 1 : 0;
        return new PpoStepResult(statsOut, miniBatches, klBefore, Kl.Value, earlyStopped);
    }

    MiniBatchStats TrainMiniBatch(PpoBatch batch, int[] indices, int[] queryLengths, int[] responseLengths)
    {
        using var scope = NewDisposeScope();
        var rows = tensor(indices.Select(i => (long)i).ToArray(), device: Policy.Device);
        var pass = BatchedForward(Policy, ValueHead,
            batch.InputIds.index_select(0, rows), batch.AttentionMask.index_select(0, rows),
            indices.Select(i => queryLengths[i]).ToArray(), indices.Select(i => responseLengths[i]).ToArray(),
            returnLogits: true, train: true);
        // Everything outside the response window has mask 0 and adds nothing to the masked means.
        Tensor Window(Tensor t) => t.narrow(1, pass.WindowStart, pass.WindowLength);
        var loss = PpoMath.Loss(
            Window(batch.OldLogProbs.index_select(0, rows)), Window(batch.OldValues.index_select(0, rows)), pass.Logits!, Window(pass.Values!),
            Window(pass.LogProbs), Window(batch.Masks.index_select(0, rows)).to(ScalarType.Float32),
            Window(batch.Advantages.index_select(0, rows)), Window(batch.Returns.index_select(0, rows)), Config);
        // accelerate divides the loss by the accumulation steps before backward
        (loss.Total / Config.GradientAccumulationSteps).backward();
        return loss.Stats;
    }

    void OptimizerStep()
    {
        if (Config.MaxGradNorm is double maxNorm) nn.utils.clip_grad_norm_(_parameters, maxNorm);
        _optimizer.step();
        _optimizer.zero_grad();
    }

    /// <summary>
    /// Output of a forward pass over query + response: log-probs, values and masks (B, L), and the
    /// logits (B, W, V) of the response window [WindowStart, WindowStart + W) only, the positions
    /// where any row's mask can be 1: the output head and its softmax are computed there alone.
    /// </summary>
    sealed record Pass(Tensor LogProbs, Tensor? Logits, Tensor? Values, Tensor Masks, long WindowStart, long WindowLength)
    {
        /// <summary>A (B, W) tensor of the window placed in a zero (B, L) tensor.</summary>
        public Tensor Widen(Tensor window) => Widen(window, WindowStart, Masks.shape[1]);

        public static Tensor Widen(Tensor window, long start, long length) =>
            nn.functional.pad(window, [start, length - start - window.shape[1]]);
    }

    /// <summary>
    /// trl's batched_forward_pass: log-probs of each next token, values, and the response mask
    /// (1 from position len(query) − 1, shifted past left padding, for len(response) positions),
    /// in chunks of mini_batch_size rows. Log-probs outside the response window are 0 (trl computes
    /// them and then masks them out; no statistic or loss reads them).
    /// </summary>
    Pass BatchedForward(CausalLM model, ValueHead? head, Tensor inputIds, Tensor attention, int[] queryLengths, int[] responseLengths, bool returnLogits, bool train)
    {
        long b = inputIds.shape[0], t = inputIds.shape[1];
        var masks = ResponseMasks(attention, queryLengths, responseLengths, out long windowStart, out long windowEnd);
        long windowLength = windowEnd - windowStart;
        // Right padding (as prepared here) needs no mask: under the causal mask no real token sees
        // the padding after it, so the fused causal attention gives the same values at real positions.
        bool leftPadded = attention.select(1, 0).min().item<long>() == 0;
        head?.train(train && Config.ValueHeadDropoutInTraining);   // trl runs every forward in eval mode
        var logProbs = new List<Tensor>();
        var logits = new List<Tensor>();
        var values = new List<Tensor>();
        for (long start = 0; start < b; start += Config.MiniBatchSize)
        {
            long n = Math.Min(Config.MiniBatchSize, b - start);
            var ids = inputIds.narrow(0, start, n);
            var hidden = model.Hidden(ids, leftPadded ? attention.narrow(0, start, n) : null);  // (n, T, H)
            var windowLogits = model.Logits(hidden.narrow(1, windowStart, windowLength));       // (n, W, V)
            logProbs.Add(PpoMath.LogProbsFromLogits(windowLogits, ids.narrow(1, windowStart + 1, windowLength)));
            if (returnLogits) logits.Add(windowLogits);
            if (head is not null) values.Add(head.forward(hidden).narrow(1, 0, t - 1));
        }
        return new Pass(Pass.Widen(cat(logProbs), windowStart, t - 1), returnLogits ? cat(logits) : null,
            head is null ? null : cat(values), masks, windowStart, windowLength);
    }

    /// <summary>(B, L) long mask: 1 on the positions that predict response tokens.</summary>
    static Tensor ResponseMasks(Tensor attention, int[] queryLengths, int[] responseLengths, out long windowStart, out long windowEnd)
    {
        long b = attention.shape[0], t = attention.shape[1];
        var host = attention.cpu().data<long>().ToArray();
        var masks = new long[b * (t - 1)];
        (windowStart, windowEnd) = (t - 1, 0);
        for (int r = 0; r < b; r++)
        {
            long leftPadding = 0;
            while (leftPadding < t && host[r * t + leftPadding] == 0) leftPadding++;
            long start = queryLengths[r] - 1 + leftPadding, end = Math.Min(start + responseLengths[r], t - 1);
            for (long p = start; p < end; p++) masks[r * (t - 1) + p] = host[r * t + p + 1];
            (windowStart, windowEnd) = (Math.Min(windowStart, start), Math.Max(windowEnd, end));
        }
        return tensor(masks, [b, t - 1], device: attention.device);
    }

    /// <summary>Query + response concatenated and right-padded with the pad id, as trl's collator does.</summary>
    (Tensor Ids, Tensor Mask) RightPad(IReadOnlyList<int[]> queries, IReadOnlyList<int[]> responses)
    {
        int b = queries.Count, t = Enumerable.Range(0, b).Max(i => queries[i].Length + responses[i].Length);
        var ids = new long[b * t];
        var mask = new long[b * t];
        Array.Fill(ids, _padId);
        for (int r = 0; r < b; r++)
        {
            int j = 0;
            foreach (var id in queries[r].Concat(responses[r]))
            {
                ids[r * t + j] = id;
                mask[r * t + j++] = 1;
            }
        }
        return (tensor(ids, [b, t], device: Policy.Device), tensor(mask, [b, t], device: Policy.Device));
    }

    /// <summary>Optional score scaling, normalisation and clipping (trl use_score_scaling / use_score_norm / score_clip).</summary>
    double[] ScaleScores(IReadOnlyList<double> scores)
    {
        var scaled = scores.ToArray();
        if (Config.UseScoreScaling)
        {
            ScoreMoments.Update(scaled);
            double factor = ScoreMoments.Std + 1.1920929e-07;   // torch.finfo(float32).eps, as trl
            scaled = Config.UseScoreNorm ? scaled.Select(s => (s - ScoreMoments.Mean) / factor).ToArray() : scaled.Select(s => s / factor).ToArray();
        }
        if (Config.ScoreClip is double clip) scaled = scaled.Select(s => Math.Clamp(s, -clip, clip)).ToArray();
        return scaled;
    }

    /// <summary>
    /// trl's record_step_stats: objective/*, ppo/* (means over mini-batches), tokens/*. As in trl,
    /// ppo/mean_scores is of the scaled and clipped scores, env/reward_* of the raw ones.
    /// </summary>
    Dictionary<string, double> StepStats(PpoBatch batch, IReadOnlyList<double> scores, IReadOnlyList<double> scaled, int[] queryLengths, int[] responseLengths, List<MiniBatchStats> mbs)
    {
        using var scope = NewDisposeScope();
        var mask = batch.Masks.to(ScalarType.Float32);
        double meanKl = (batch.Kls * mask).sum(-1).mean().item<float>();
        double entropy = (-batch.OldLogProbs * mask).sum(-1).mean().item<float>();
        double Mean(Func<MiniBatchStats, double> f) => mbs.Count == 0 ? double.NaN : mbs.Average(f);
        var stats = new Dictionary<string, double>
        {
            ["objective/kl"] = meanKl,
            ["objective/kl_coef"] = Kl.Value,
            ["objective/entropy"] = entropy,
            ["ppo/mean_non_score_reward"] = PpoMath.MaskedMean(batch.NonScoreRewards, mask).item<float>(),
            ["ppo/mean_scores"] = scaled.Average(),
            ["ppo/std_scores"] = SampleStd(scaled),
            ["env/reward_mean"] = scores.Average(),
            ["env/reward_std"] = SampleStd(scores),
            ["tokens/queries_len_mean"] = queryLengths.Average(),
            ["tokens/queries_len_std"] = SampleStd(queryLengths.Select(x => (double)x).ToList()),
            ["tokens/responses_len_mean"] = responseLengths.Average(),
            ["tokens/responses_len_std"] = SampleStd(responseLengths.Select(x => (double)x).ToList()),
            ["ppo/loss/policy"] = Mean(m => m.PolicyLoss),
            ["ppo/loss/value"] = Mean(m => m.ValueLoss),
            ["ppo/loss/total"] = Mean(m => m.TotalLoss),
            ["ppo/policy/entropy"] = Mean(m => m.Entropy),
            ["ppo/policy/approxkl"] = Mean(m => m.ApproxKl),
            ["ppo/policy/policykl"] = Mean(m => m.PolicyKl),
            ["ppo/policy/clipfrac"] = Mean(m => m.PolicyClipFrac),
            ["ppo/policy/advantages_mean"] = Mean(m => m.AdvantagesMean),
            ["ppo/returns/mean"] = Mean(m => m.ReturnsMean),
            ["ppo/returns/var"] = Mean(m => m.ReturnsVar),
            ["ppo/val/vpred"] = Mean(m => m.ValuePrediction),
            ["ppo/val/error"] = Mean(m => m.ValueError),
            ["ppo/val/clipfrac"] = Mean(m => m.ValueClipFrac),
            ["ppo/val/mean"] = Mean(m => m.ValuesMean),
            ["ppo/val/var"] = Mean(m => m.ValuesVar),
            ["ppo/skipped_minibatches"] = mbs.Count(m => m.Skipped),
            ["ppo/learning_rate"] = Config.LearningRate,
        };
        stats["ppo/val/var_explained"] = 1 - stats["ppo/val/error"] / stats["ppo/returns/var"];
        return stats;
    }

    static double SampleStd(IReadOnlyList<double> xs)
    {
        if (xs.Count < 2) return double.NaN;
        double mean = xs.Average();
        return Math.Sqrt(xs.Sum(x => (x - mean) * (x - mean)) / (xs.Count - 1));
    }

    static int[] Shuffle(Random random, int n)
    {
        var order = Enumerable.Range(0, n).ToArray();
        random.Shuffle(order);
        return order;
    }

    /// <summary>Re-seeds the default permutation source; a run re-seeds it from (seed, step) every step so that a resumed run replays the same order.</summary>
    public void ReseedPermutations(int seed) => _permutations = new Random(seed);

    public void Dispose() => _optimizer.Dispose();
}
