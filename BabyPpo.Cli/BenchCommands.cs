using System.Diagnostics;
using System.Text.Json.Nodes;
using BabyPpo.Training;
using BabyPpo.Training.Inference;
using BabyPpo.Training.Model;
using static TorchSharp.torch;

namespace BabyPpo.Cli;

/// <summary>
/// Benchmarks that print figures (never timed unit tests). All run on a randomly initialised
/// Llama of the size the BabyLM dialogue models use, and compare with the FLOP rate of a plain
/// 1024×1024 float32 matmul measured in the same process.
/// </summary>
public static class BenchCommands
{
    public static IEnumerable<Command> All =>
    [
        new("bench generate", "generated tokens/s with and without the KV cache (batch 16 × 20 new tokens)",
            [new("repeats", "timed runs of each path, alternating (medians are reported)", Default: "7")], BenchGenerate),
        new("bench score", "scored tokens/s for 1024 sentences of 8–16 tokens, and utilisation of the matmul rate",
            [new("repeats", "timed runs (the median is reported)", Default: "3")], BenchScore),
    ];

    /// <summary>hidden 256, 8 layers, 8 heads, intermediate 1024, vocabulary 16000, tied embeddings.</summary>
    public static CausalLM BabyLmSizedModel(long seed = 0)
    {
        var model = CausalLM.Initialise(LlamaConfig.Baby(), seed);
        model.eval();
        return model;
    }

    /// <summary>GFLOP/s of a 1024×1024 float32 matmul (2·1024³ FLOPs), the machine's reference rate.</summary>
    public static double MatmulGflops()
    {
        using var _ = NewDisposeScope();
        var a = randn(1024, 1024);
        var b = randn(1024, 1024);
        for (int i = 0; i < 5; i++) a.mm(b).Dispose();
        int n = 0;
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed.TotalSeconds < 1.0 || n < 20)
        {
            a.mm(b).Dispose();
            n++;
        }
        return 2.0 * 1024 * 1024 * 1024 * n / clock.Elapsed.TotalSeconds / 1e9;
    }

    /// <summary>Parameters as the FLOP formulas count them (the tied embedding once).</summary>
    public static long Parameters(CausalLM model) => model.parameters().Sum(p => p.numel());

    /// <summary>Median of the timed runs of <paramref name="work"/>, after one warm-up run.</summary>
    public static double MedianSeconds(int repeats, Action work)
    {
        work();
        var times = new List<double>();
        for (int i = 0; i < Math.Max(1, repeats); i++) times.Add(Seconds(work));
        return Median(times);
    }

    /// <summary>
    /// Two workloads timed alternately (a, b, a, b, …) after one warm-up run of each, so that both
    /// see the same machine load, however it drifts. Returns the median time of each and the median
    /// of the per-round ratios b / a (each ratio is taken from two runs made back to back).
    /// </summary>
    public static (double A, double B, double Ratio) PairedMedianSeconds(int repeats, Action a, Action b)
    {
        a();
        b();
        var (timesA, timesB, ratios) = (new List<double>(), new List<double>(), new List<double>());
        for (int i = 0; i < Math.Max(1, repeats); i++)
        {
            timesA.Add(Seconds(a));
            timesB.Add(Seconds(b));
            ratios.Add(timesB[^1] / timesA[^1]);
        }
        return (Median(timesA), Median(timesB), Median(ratios));
    }

    static double Seconds(Action work)
    {
        var clock = Stopwatch.StartNew();
        work();
        return clock.Elapsed.TotalSeconds;
    }

    static double Median(List<double> values)
    {
        var sorted = values.Order().ToList();
        int n = sorted.Count;
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    }

    /// <summary>
    /// What scoring <paramref name="sentences"/> computes: a sentence of T tokens feeds its first
    /// T − 1 tokens (the last predicts nothing) and scores T − 1 predictions, at 2 FLOPs per
    /// parameter per fed token (attention's own FLOPs, small at these lengths, are not counted).
    /// </summary>
    public static (long Tokens, double Flops) ScoringWork(IReadOnlyList<int[]> sentences, long parameters)
    {
        long predicted = sentences.Sum(s => (long)Math.Max(0, s.Length - 1));
        return (predicted, 2.0 * parameters * predicted);
    }

    static int BenchGenerate(Args args, Output output)
    {
        int repeats = args.Int("repeats", 7);
        if (repeats < 1) throw new InputException($"bench generate: --repeats must be at least 1, got {repeats}");
        using var model = BabyLmSizedModel();
        var random = new Random(0);
        var prompts = Enumerable.Range(0, 16).Select(_ => Enumerable.Range(0, random.Next(8, 17)).Select(_ => random.Next(3, 16000)).ToArray()).ToList();
        var generator = new BabyPpo.Training.Inference.Generator(model, null);
        var withCache = new SamplingOptions { MaxNewTokens = 20, EosTokenId = -1, Seed = 1, BatchSize = 16 };
        // Re-running the prefix as a plain loop does, model(ids).logits[:, -1] each step (the
        // reference the target was set with), and as HF generate does it, the head at the last position only.
        var plainRerun = withCache with { UseKvCache = false, AllPositionLogits = true };
        var lastPositionRerun = withCache with { UseKvCache = false };
        var (cached, uncached, speedup) = PairedMedianSeconds(repeats,
            () => generator.Generate(prompts, withCache), () => generator.Generate(prompts, plainRerun));
        var (cachedAgain, uncachedLast, speedupLast) = PairedMedianSeconds(repeats,
            () => generator.Generate(prompts, withCache), () => generator.Generate(prompts, lastPositionRerun));
        double tokens = 16 * 20;
        output.Result(new JsonObject
        {
            ["kv_cache_tokens_per_s"] = tokens / cached,
            ["no_cache_tokens_per_s"] = tokens / uncached,
            ["speedup"] = speedup,
            ["no_cache_last_position_tokens_per_s"] = tokens / uncachedLast,
            ["speedup_last_position"] = speedupLast,
            ["repeats"] = repeats,
            ["threads"] = get_num_threads(),
        }, () => $"generate, batch 16 × 20 new tokens, {get_num_threads()} threads, median of {repeats} alternating runs each\n" +
                 $"  KV cache:    {tokens / cached,8:F1} tokens/s\n" +
                 $"  no cache:    {tokens / uncached,8:F1} tokens/s re-running the prefix with a plain forward (all logits)\n" +
                 $"  speed-up:    {speedup,8:F2}× (median of the per-round ratios)\n" +
                 $"  no cache:    {tokens / uncachedLast,8:F1} tokens/s re-running it with the head at the last position only (HF generate)\n" +
                 $"  speed-up:    {speedupLast,8:F2}× over that (KV cache {tokens / cachedAgain:F1} tokens/s in these rounds)");
        return 0;
    }

    static int BenchScore(Args args, Output output)
    {
        int repeats = args.Int("repeats", 3);
        if (repeats < 1) throw new InputException($"bench score: --repeats must be at least 1, got {repeats}");
        using var model = BabyLmSizedModel();
        var random = new Random(0);
        var sentences = Enumerable.Range(0, 1024).Select(_ => Enumerable.Range(0, random.Next(8, 17)).Select(_ => random.Next(3, 16000)).ToArray()).ToList();
        var (tokens, flops) = ScoringWork(sentences, Parameters(model));
        var scorer = new Scorer(model);
        double seconds = MedianSeconds(repeats, () => scorer.Score(sentences));
        double matmul = MatmulGflops();
        double gflops = flops / seconds / 1e9;
        output.Result(new JsonObject
        {
            ["scored_tokens_per_s"] = tokens / seconds,
            ["scored_tokens"] = tokens,
            ["scoring_gflops"] = gflops,
            ["matmul_gflops"] = matmul,
            ["utilisation"] = gflops / matmul,
            ["threads"] = get_num_threads(),
        }, () => $"score, 1024 sentences of 8–16 tokens ({tokens} predicted tokens), {get_num_threads()} threads\n" +
                 $"  scored:      {tokens / seconds,8:F0} tokens/s = {gflops:F1} GFLOP/s (2 × params × fed tokens)\n" +
                 $"  matmul:      {matmul,8:F1} GFLOP/s (1024² float32)\n  utilisation: {gflops / matmul,8:P1}");
        return 0;
    }
}
