using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using BabyPpo.Training.Data;
using BabyPpo.Training.Inference;
using BabyPpo.Training.Model;
using BabyPpo.Training.Rewards;
using TorchSharp;

namespace BabyPpo.Training.Ppo;

/// <summary>How the baby samples its answers during PPO (HF generate semantics).</summary>
public sealed record GenerationSettings
{
    /// <summary>New tokens per answer at most (the seed used 20).</summary>
    public int MaxNewTokens { get; init; } = 20;
    /// <summary>Tokens before EOS is allowed.</summary>
    public int MinNewTokens { get; init; }
    /// <summary>Top-k filter; 0 = off.</summary>
    public int TopK { get; init; }
    /// <summary>Nucleus mass; 1.0 = off (the seed used 0.9).</summary>
    public double TopP { get; init; } = 0.9;
    public double Temperature { get; init; } = 1.0;
    /// <summary>Prompts per generation batch (trl's generate batch_size).</summary>
    public int BatchSize { get; init; } = 16;
}

/// <summary>What to do with samples whose answer text is empty (the seed's trl crashed on them).</summary>
public enum EmptyAnswerPolicy
{
    /// <summary>Train on the sampled tokens anyway (at least the one that ended the answer); the reward sees an empty answer.</summary>
    Keep,
    /// <summary>Leave them out of the PPO batch (the step trains on fewer samples).</summary>
    Drop,
}

/// <summary>One experiment, as the form, the API and the CLI describe it. Everything a worker needs to run or resume it.</summary>
public sealed record RunSpec
{
    /// <summary>Checkpoint folder of the baby to fine-tune (HF layout with tokenizer).</summary>
    public string BaseModel { get; init; } = "";
    /// <summary>Frozen reference model folder; null = the base model.</summary>
    public string? ReferenceModel { get; init; }
    /// <summary>A catalogue prompt set ("demo-prompts", "dialogue-train") or the path of a prompt-set JSONL.</summary>
    public string PromptSet { get; init; } = "demo-prompts";
    /// <summary>Keep only mother utterances with more than this many words (the seed's filter "longer than 3 tokens" used 3); 0 = all.</summary>
    public int MinPromptWords { get; init; }
    public PromptFormat Format { get; init; } = PromptFormat.ChiTag;
    /// <summary>Reward names with weights, e.g. {"bleu": 1.0}.</summary>
    public IReadOnlyDictionary<string, double> Rewards { get; init; } = new Dictionary<string, double> { ["bleu"] = 1.0 };
    /// <summary>How the rewards are computed: judge template and fallback score, confidence variant, several references, running normalisation.</summary>
    public RewardOptions RewardSettings { get; init; } = new();
    /// <summary>PPO hyper-parameters; the seed system's batch 16, mini-batch 4 by default here.</summary>
    public PpoConfig Ppo { get; init; } = new() { BatchSize = 16, MiniBatchSize = 4 };
    public GenerationSettings Generation { get; init; } = new();
    /// <summary>PPO steps to run; when null, <see cref="Epochs"/> passes over the prompt set decide.</summary>
    public int? Steps { get; init; }
    public double? Epochs { get; init; }
    /// <summary>Save a resumable checkpoint every this many steps (and at the end, and on cancellation).</summary>
    public int CheckpointEvery { get; init; } = 50;
    /// <summary>Keep the newest this many step checkpoints on disk.</summary>
    public int KeepCheckpoints { get; init; } = 3;
    /// <summary>Record a sample table every this many steps.</summary>
    public int SampleEvery { get; init; } = 10;
    /// <summary>Rows of each sample table.</summary>
    public int SampleRows { get; init; } = 8;
    /// <summary>Seed of the prompt order, the sampling and the value-head initialisation (<see cref="PpoConfig.Seed"/> orders the mini-batches).</summary>
    public int Seed { get; init; }
    public EmptyAnswerPolicy EmptyAnswers { get; init; } = EmptyAnswerPolicy.Keep;
    /// <summary>Reward of a free-format answer in which the baby never wrote "*CHI:".</summary>
    public double NoAnswerReward { get; init; }

    public int TotalSteps(int promptCount)
    {
        if (Steps is int steps) return steps;
        if (Epochs is double epochs) return Math.Max(1, (int)Math.Ceiling(epochs * promptCount / Ppo.BatchSize));
        throw new InputException("give the number of steps or of epochs");
    }

    public void Validate() => SettingProblem.ThrowFirst(Problems());

    /// <summary>
    /// Every setting out of range, the nested ones' fields under "ppo.", "rewardSettings." and
    /// "generation.", in the order <see cref="Validate"/> checks them.
    /// </summary>
    public IEnumerable<SettingProblem> Problems()
    {
        if (string.IsNullOrWhiteSpace(BaseModel)) yield return new("baseModel", "run spec: the base model is required");
        if (Steps is <= 0) yield return new("steps", $"run spec: steps must be at least 1, got {Steps}");
        if (Epochs is <= 0) yield return new("epochs", $"run spec: epochs must be > 0, got {Epochs}");
        if (Steps is null && Epochs is null) yield return new(["steps", "epochs"], "run spec: give steps or epochs");
        if (Rewards.Count == 0) yield return new("rewards", "run spec: choose at least one reward");
        foreach (var (field, value) in new[] { ("checkpointEvery", CheckpointEvery), ("sampleEvery", SampleEvery), ("keepCheckpoints", KeepCheckpoints) })
            if (value < 1) yield return new(field, "run spec: checkpoint and sample intervals must be at least 1");
        foreach (var problem in Ppo.Problems()) yield return problem.Under("ppo");
        foreach (var problem in RewardSettings.Problems()) yield return problem.Under("rewardSettings");
        var sampling = new SamplingOptions { MaxNewTokens = Generation.MaxNewTokens, MinNewTokens = Generation.MinNewTokens, TopK = Generation.TopK, TopP = Generation.TopP, Temperature = Generation.Temperature, BatchSize = Generation.BatchSize };
        foreach (var problem in sampling.Problems()) yield return problem.Under("generation");
    }

    public static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.KebabCaseLower) },
    };

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    public static RunSpec FromJson(string json, string source = "spec.json")
    {
        try
        {
            return JsonSerializer.Deserialize<RunSpec>(json, Json) ?? throw new JsonException("empty");
        }
        catch (JsonException e)
        {
            throw InputException.At(source, $"not a valid run spec ({e.Message})");
        }
    }
}

/// <summary>Where a run writes and reads, on this machine.</summary>
public sealed record RunEnvironment(string OutputFolder, string DataRoot, string? DemoRoot = null, string Device = "cpu");

/// <summary>One row of a sample table.</summary>
public sealed record PpoSample(int Step, string Prompt, string Answer, string Reference, double Reward);

/// <summary>What each step reports: trl's metrics by trl's names plus env/*, time/* and reward/*; warnings; samples on sample steps.</summary>
public sealed record PpoStepStats(int Step, int TotalSteps, IReadOnlyDictionary<string, double> Metrics, IReadOnlyList<PpoSample> Samples, IReadOnlyList<string> Warnings, TimeSpan Elapsed);

/// <summary>A checkpoint folder that was just written completely.</summary>
public sealed record CheckpointSaved(int Step, string Folder, bool Final);

public sealed record PpoRunResult(int StepsDone, int TotalSteps, string FinalFolder, bool Cancelled);

/// <summary>
/// A PPO experiment, step after step: pick prompts, generate, read the answers, reward them, and
/// hand exactly the sampled tokens to <see cref="PpoTrainer.Step"/>; write metrics and samples as
/// JSONL, checkpoints that resume exactly (every source of randomness derives from seed and step),
/// and report each step. Cancellation is honoured between steps, after a checkpoint.
/// </summary>
public static class PpoRun
{
    public const string MetricsFile = "metrics.jsonl";
    public const string SamplesFile = "samples.jsonl";
    public const string SpecFile = "spec.json";
    public const string StateFile = "trainer_state.json";
    public const string OptimizerFile = "optimizer.bin";
    public const string FinalFolder = "final";

    public static PpoRunResult Run(RunSpec spec, IReward reward, RunEnvironment env, bool resume = false,
        IProgress<PpoStepStats>? progress = null, Action<CheckpointSaved>? onCheckpoint = null, CancellationToken cancellationToken = default)
    {
        spec.Validate();
        var prompts = Datasets.KeepLongerThan(DataCatalog.LoadPromptSet(spec.PromptSet, env.DataRoot, env.DemoRoot), spec.MinPromptWords);
        if (prompts.Count == 0) throw new InputException($"prompt set {spec.PromptSet} has no prompts left after filtering");
        int totalSteps = spec.TotalSteps(prompts.Count);

        Directory.CreateDirectory(env.OutputFolder);
        var checkpoints = Path.Combine(env.OutputFolder, "checkpoints");
        var latest = LatestCheckpoint(env.OutputFolder);
        var specFile = Path.Combine(env.OutputFolder, SpecFile);
        if (!resume && (latest is not null || File.Exists(Path.Combine(env.OutputFolder, MetricsFile))))
            throw new InputException($"{env.OutputFolder}: already holds a run; resume it or choose another output folder");
        if (resume && File.Exists(specFile))
        {
            var changed = TrainingChanges(RunSpec.FromJson(File.ReadAllText(specFile), specFile), spec);
            if (changed.Count > 0)
                throw InputException.At(specFile, $"the run was started with other settings, so it cannot resume exactly: {string.Join("; ", changed)}");
        }
        if (resume && latest is { } done && done.Step >= totalSteps)
            return new PpoRunResult(done.Step, totalSteps, done.Folder, Cancelled: false);   // already finished
        File.WriteAllText(specFile, spec.ToJson());

        var device = new torch.Device(env.Device);
        var tokenizer = Text.Tokenizer.Load(spec.BaseModel);
        int startStep = resume && latest is not null ? latest.Value.Step : 0;
        string policyFolder = startStep > 0 ? latest!.Value.Folder : spec.BaseModel;
        using var policy = Checkpoint.LoadModel(policyFolder, device);
        using var reference = Checkpoint.LoadModel(spec.ReferenceModel ?? spec.BaseModel, device);
        torch.manual_seed(spec.Seed);                                   // the value head's initialisation
        using var head = new ValueHead(policy.Config.HiddenSize, spec.Ppo.ValueHeadDropout);
        head.to(device);
        if (startStep > 0) head.Load(Path.Combine(policyFolder, ValueHead.FileName));
        long pad = tokenizer.PadId ?? policy.Config.PadTokenId ?? 0;
        using var trainer = new PpoTrainer(policy, head, reference, spec.Ppo, pad);
        if (startStep > 0) RestoreState(trainer, reward, policyFolder);
        TrimLog(Path.Combine(env.OutputFolder, MetricsFile), startStep);
        TrimLog(Path.Combine(env.OutputFolder, SamplesFile), startStep);

        var generator = new Generator(policy, tokenizer);
        var order = new DataOrder(prompts.Count, spec.Seed);
        var clock = Stopwatch.StartNew();
        int step = startStep;
        PpoRunResult Cancel()
        {
            SaveCheckpoint(trainer, reward, tokenizer, checkpoints, step, spec, onCheckpoint);
            return new PpoRunResult(step, totalSteps, step == 0 ? spec.BaseModel : Path.Combine(checkpoints, StepFolderName(step)), Cancelled: true);
        }
        while (step < totalSteps)
        {
            if (cancellationToken.IsCancellationRequested) return Cancel();
            PpoStepStats stats;
            try
            {
                stats = RunStep(step + 1, totalSteps, spec, prompts, order, generator, reward, trainer, cancellationToken);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return Cancel();   // cancelled while rewarding: the policy has not changed yet in this step
            }
            step++;
            var report = stats with { Elapsed = clock.Elapsed };
            AppendJsonLine(Path.Combine(env.OutputFolder, MetricsFile), MetricsLine(step, report.Metrics));
            foreach (var sample in report.Samples)
                AppendJsonLine(Path.Combine(env.OutputFolder, SamplesFile), JsonSerializer.SerializeToNode(sample, RunSpec.Json)!.AsObject());
            progress?.Report(report);
            if (step % spec.CheckpointEvery == 0 && step < totalSteps)
                SaveCheckpoint(trainer, reward, tokenizer, checkpoints, step, spec, onCheckpoint);
        }

        var final = Path.Combine(env.OutputFolder, FinalFolder);
        WriteAtomically(final, folder => SaveState(trainer, reward, tokenizer, folder, step));
        onCheckpoint?.Invoke(new CheckpointSaved(step, final, Final: true));
        return new PpoRunResult(step, totalSteps, final, Cancelled: false);
    }

    static PpoStepStats RunStep(int step, int totalSteps, RunSpec spec, IReadOnlyList<PromptItem> prompts, DataOrder order,
        Generator generator, IReward reward, PpoTrainer trainer, CancellationToken cancellationToken)
    {
        var timing = Stopwatch.StartNew();
        int b = spec.Ppo.BatchSize;
        var items = Enumerable.Range(0, b).Select(i => prompts[order.At((long)(step - 1) * b + i)]).ToList();
        var queries = items.Select(p => PromptFormats.Query(spec.Format, p.Utterance)).ToList();

        // Generate: every step samples with its own seed, so a resumed run draws the same tokens.
        var sampling = new SamplingOptions
        {
            MaxNewTokens = spec.Generation.MaxNewTokens, MinNewTokens = spec.Generation.MinNewTokens,
            TopK = spec.Generation.TopK, TopP = spec.Generation.TopP, Temperature = spec.Generation.Temperature,
            BatchSize = spec.Generation.BatchSize, Seed = (ulong)spec.Seed * 1_000_003UL + (ulong)step,
        };
        var completions = generator.Generate(queries, sampling);
        double generateSeconds = timing.Elapsed.TotalSeconds;

        // Read the answers; PPO trains on the sampled tokens up to and including the one that ended the answer.
        var tokenizer = generator.Tokenizer;
        var cuts = completions.Select(c => PromptFormats.Cut(spec.Format, c.Text)).ToList();
        var responses = completions.Select((c, i) => c.NewIds[..PromptFormats.TokensCovering(c.NewIds, cuts[i].KeepChars, ids => tokenizer.Decode(ids))]).ToArray();

        timing.Restart();
        var inputs = items.Select((p, i) => new RewardInput(p.Utterance, cuts[i].Answer, References(p))).ToList();
        var rewarded = reward.Score(inputs, cancellationToken);
        var scores = rewarded.Values.Select((v, i) => cuts[i].Found ? v : spec.NoAnswerReward).ToArray();
        double rewardSeconds = timing.Elapsed.TotalSeconds;

        // Drop leaves out found-but-empty answers only: a free-format answer without "*CHI:" is
        // trained on with the no-answer reward, or the baby would never learn to write the tag.
        int empty = cuts.Count(c => c.Found && c.Answer.Length == 0), notFound = cuts.Count(c => !c.Found);
        var keep = Enumerable.Range(0, b).Where(i => spec.EmptyAnswers == EmptyAnswerPolicy.Keep || !cuts[i].Found || cuts[i].Answer.Length > 0).ToArray();
        var warnings = new List<string>();
        var metrics = new Dictionary<string, double>();
        if (keep.Sum(i => responses[i].Length) < PpoTrainer.MinResponseTokens)
        {
            warnings.Add($"step {step}: {keep.Length} answer(s) with {keep.Sum(i => responses[i].Length)} token(s) left after dropping empty ones; no update");
        }
        else
        {
            var queryIds = keep.Select(i => completions[i].PromptIds).ToList();
            trainer.ReseedPermutations(unchecked(spec.Ppo.Seed * 1_000_003 + step));
            var result = trainer.Step(queryIds, keep.Select(i => responses[i]).ToList(), keep.Select(i => scores[i]).ToList());
            foreach (var (k, v) in result.Stats) metrics[k] = v;
            if (result.Stats["objective/kl"] < -1)
                warnings.Add($"step {step}: KL divergence is negative ({result.Stats["objective/kl"]:F2}), which may precede failed training; check the generation settings");
            if (result.Stats["ppo/skipped_minibatches"] > 0)
                warnings.Add($"step {step}: {result.Stats["ppo/skipped_minibatches"]} mini-batch(es) skipped: mean ratio above {spec.Ppo.RatioThreshold}");
        }
        metrics["env/reward_mean"] = scores.Average();
        metrics["env/reward_std"] = scores.Length > 1 ? Math.Sqrt(scores.Sum(s => Math.Pow(s - scores.Average(), 2)) / (scores.Length - 1)) : 0;
        metrics["env/empty_answers"] = empty;
        metrics["env/no_answer"] = notFound;
        metrics["env/answer_words_mean"] = cuts.Average(c => c.Answer.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length);
        metrics["tokens/responses_len_mean"] = responses.Average(r => r.Length);
        foreach (var (k, v) in rewarded.Metrics) metrics[$"reward/{k}"] = v;
        metrics["time/generate"] = generateSeconds;
        metrics["time/reward"] = rewardSeconds;
        metrics["time/forward"] = metrics.GetValueOrDefault("time/ppo/forward_pass") + metrics.GetValueOrDefault("time/ppo/compute_rewards") + metrics.GetValueOrDefault("time/ppo/compute_advantages");
        metrics["time/optimize"] = metrics.GetValueOrDefault("time/ppo/optimize_step");
        metrics["time/step"] = generateSeconds + rewardSeconds + metrics.GetValueOrDefault("time/ppo/total");

        var samples = step % spec.SampleEvery == 0 || step == 1
            ? Enumerable.Range(0, Math.Min(spec.SampleRows, b)).Select(i => new PpoSample(step, items[i].Utterance, cuts[i].Answer, References(items[i]).FirstOrDefault() ?? "", scores[i])).ToList()
            : [];
        return new PpoStepStats(step, totalSteps, metrics, samples, warnings, TimeSpan.Zero);
    }

    /// <summary>Teacher answers when the prompt set has them, else the real child reply.</summary>
    static IReadOnlyList<string> References(PromptItem item) =>
        item.References.Count > 0 ? item.References : item.ChildReply is { } child ? [child] : [];

    /// <summary>Sample i of the run: epochs are seeded permutations of the prompt set, so the order survives a resume.</summary>
    sealed class DataOrder(int count, int seed)
    {
        readonly Dictionary<long, int[]> _epochs = [];

        public int At(long index)
        {
            long epoch = index / count;
            if (!_epochs.TryGetValue(epoch, out var permutation))
            {
                permutation = Enumerable.Range(0, count).ToArray();
                new Random(unchecked(seed * 1_000_003 + (int)epoch)).Shuffle(permutation);   // not HashCode: it is salted per process
                _epochs[epoch] = permutation;
            }
            return permutation[index % count];
        }
    }

    // ---- checkpoints -------------------------------------------------------------------------

    static string StepFolderName(int step) => $"step-{step:D6}";

    /// <summary>
    /// The newest complete checkpoint of the run in <paramref name="outputFolder"/>: a step
    /// checkpoint or the final folder, whichever holds the later step (a run extended with more
    /// steps goes on from its final folder). A checkpoint is complete when its state file exists.
    /// </summary>
    public static (int Step, string Folder)? LatestCheckpoint(string outputFolder)
    {
        var checkpoints = Path.Combine(outputFolder, "checkpoints");
        var folders = Directory.Exists(checkpoints) ? Directory.GetDirectories(checkpoints, "step-*").ToList() : [];
        folders.Add(Path.Combine(outputFolder, FinalFolder));
        return folders
            .Select(d => (Step: StateStep(d), Folder: d))
            .Where(c => c.Step > 0)
            .OrderByDescending(c => c.Step)
            .Select(c => ((int, string)?)c)
            .FirstOrDefault();
    }

    /// <summary>The step a checkpoint's state file records; 0 when there is none or it cannot be read.</summary>
    static int StateStep(string folder)
    {
        var path = Path.Combine(folder, StateFile);
        if (!File.Exists(path)) return 0;
        try { return JsonNode.Parse(File.ReadAllText(path))?["step"]?.GetValue<int>() ?? 0; }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException) { return 0; }
    }

    /// <summary>
    /// The settings that shape training and differ between the saved spec and the new one: an
    /// exact resume needs the same PPO, generation, reward, data and seed. The model paths (a worker
    /// keeps them in its own cache), the length of the run and the bookkeeping intervals may change.
    /// </summary>
    public static List<string> TrainingChanges(RunSpec saved, RunSpec now)
    {
        static JsonObject Shape(RunSpec s) => JsonSerializer.SerializeToNode(s with
        {
            BaseModel = "", ReferenceModel = null, Steps = null, Epochs = null,
            CheckpointEvery = 1, KeepCheckpoints = 1, SampleEvery = 1, SampleRows = 1,
        }, RunSpec.Json)!.AsObject();
        var changes = new List<string>();
        void Diff(JsonNode? a, JsonNode? b, string path)
        {
            if (a is JsonObject oa && b is JsonObject ob)
            {
                foreach (var key in oa.Select(kv => kv.Key).Union(ob.Select(kv => kv.Key)))
                    Diff(oa[key], ob[key], path.Length == 0 ? key : $"{path}.{key}");
            }
            else if (!JsonNode.DeepEquals(a, b))
                changes.Add($"{path} was {a?.ToJsonString() ?? "null"}, now {b?.ToJsonString() ?? "null"}");
        }
        Diff(Shape(saved), Shape(now), "");
        return changes;
    }

    static void SaveCheckpoint(PpoTrainer trainer, IReward reward, Text.Tokenizer tokenizer, string checkpoints, int step, RunSpec spec, Action<CheckpointSaved>? onCheckpoint)
    {
        if (step == 0) return;
        var folder = Path.Combine(checkpoints, StepFolderName(step));
        WriteAtomically(folder, f => SaveState(trainer, reward, tokenizer, f, step));
        foreach (var old in Directory.GetDirectories(checkpoints, "step-*").Order().SkipLast(spec.KeepCheckpoints))
            Directory.Delete(old, recursive: true);
        onCheckpoint?.Invoke(new CheckpointSaved(step, folder, Final: false));
    }

    /// <summary>HF folder (config, weights, tokenizer) + value head + optimizer + trainer state, the state file last.</summary>
    static void SaveState(PpoTrainer trainer, IReward reward, Text.Tokenizer tokenizer, string folder, int step)
    {
        Checkpoint.Save(trainer.Policy, tokenizer, folder);
        trainer.ValueHead.Save(folder);
        trainer.Optimizer.save_state_dict(Path.Combine(folder, OptimizerFile));
        var m = trainer.ScoreMoments;
        var state = new JsonObject
        {
            ["step"] = step,
            ["kl_coef"] = trainer.Kl.Value,
            ["score_moments"] = new JsonObject { ["mean"] = m.Mean, ["std"] = m.Std, ["var"] = m.Var, ["count"] = m.Count },
        };
        if (reward is IStatefulReward stateful) state["reward"] = stateful.SaveState();
        File.WriteAllText(Path.Combine(folder, StateFile), state.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    static void RestoreState(PpoTrainer trainer, IReward reward, string folder)
    {
        var stateFile = Path.Combine(folder, StateFile);
        try
        {
            var state = JsonNode.Parse(File.ReadAllText(stateFile))!;
            trainer.Kl.Restore(state["kl_coef"]!.GetValue<double>());
            var m = state["score_moments"]!;
            trainer.ScoreMoments.Restore(m["mean"]!.GetValue<double>(), m["std"]!.GetValue<double>(), m["var"]!.GetValue<double>(), m["count"]!.GetValue<double>());
            if (reward is IStatefulReward stateful && state["reward"] is { } rewardState) stateful.RestoreState(rewardState);
        }
        catch (Exception e) when (e is JsonException or NullReferenceException or InvalidOperationException)
        {
            throw InputException.At(stateFile, "damaged trainer state (expected step, kl_coef and score_moments)");
        }
        trainer.Optimizer.load_state_dict(Path.Combine(folder, OptimizerFile));
    }

    /// <summary>Writes a folder under a temporary name and renames it when complete, so a crash never leaves half a checkpoint.</summary>
    static void WriteAtomically(string folder, Action<string> write)
    {
        var parent = Path.GetDirectoryName(folder)!;
        Directory.CreateDirectory(parent);
        var temp = Path.Combine(parent, $".{Path.GetFileName(folder)}.{Guid.NewGuid():N}.tmp");
        write(temp);
        if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        Directory.Move(temp, folder);
    }

    // ---- logs ---------------------------------------------------------------------------------

    static JsonObject MetricsLine(int step, IReadOnlyDictionary<string, double> metrics)
    {
        var line = new JsonObject { ["step"] = step };
        foreach (var (k, v) in metrics.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            line[k] = double.IsFinite(v) ? v : null;
        return line;
    }

    static void AppendJsonLine(string path, JsonObject line)
    {
        using var stream = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read);
        using var writer = new StreamWriter(stream);
        writer.WriteLine(line.ToJsonString());
        writer.Flush();
        stream.Flush(flushToDisk: true);
    }

    /// <summary>Keeps the lines of steps up to <paramref name="step"/>: a resumed run rewrites what came after its checkpoint.</summary>
    static void TrimLog(string path, int step)
    {
        if (!File.Exists(path)) return;
        var kept = File.ReadLines(path).Where(line =>
        {
            try { return JsonNode.Parse(line)?["step"]?.GetValue<int>() <= step; }
            catch (JsonException) { return false; }   // a half-written last line from a crash
        }).ToList();
        File.WriteAllLines(path + ".tmp", kept);
        File.Move(path + ".tmp", path, overwrite: true);
    }

    /// <summary>Reads a run's metrics back (one dictionary per step).</summary>
    public static List<Dictionary<string, double>> ReadMetrics(string outputFolder)
    {
        var path = Path.Combine(outputFolder, MetricsFile);
        if (!File.Exists(path)) return [];
        return File.ReadLines(path).Select(line => JsonNode.Parse(line)!.AsObject()
            .ToDictionary(kv => kv.Key, kv => kv.Value is null ? double.NaN : kv.Value.GetValue<double>())).ToList();
    }
}
