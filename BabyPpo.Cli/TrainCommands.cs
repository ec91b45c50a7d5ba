using System.Globalization;
using System.Text.Json.Nodes;
using BabyPpo.Training;
using BabyPpo.Training.Model;
using BabyPpo.Training.Ppo;
using BabyPpo.Training.Rewards;

namespace BabyPpo.Cli;

/// <summary>train (a PPO run, headless) and bench ppo.</summary>
public static class TrainCommands
{
    public static IEnumerable<Command> All =>
    [
        new("train", "fine-tune a baby with PPO on mother utterances (resumable; metrics.jsonl, samples.jsonl and checkpoints in --out)",
        [
            new("model", "the baby: a Hugging Face checkpoint folder with its tokenizer"),
            new("prompts", "a prompt set: demo-prompts, dialogue-train, or a prompt-set JSONL path", Default: "demo-prompts"),
            new("reward", "bleu, semsim, score, confidence, or a weighted sum such as bleu:0.5+semsim:0.5", Default: "bleu"),
            new("config", "PPO settings as JSON with trl's PPOConfig names (learning_rate, batch_size, mini_batch_size, …); the rest keep trl's defaults"),
            new("steps", "PPO steps"),
            new("epochs", "passes over the prompt set (instead of --steps)"),
            new("out", "output folder (default runs/<model>-<reward>-seed<seed>)"),
            new("seed", "seed of data order, sampling and mini-batch order (default: the config's seed, else 0)"),
            new("resume", "continue the run in --out from its newest checkpoint", IsFlag: true),
            new("format", "chi-tag (\"*MOT: … *CHI:\") or free (\"*MOT: …\")", Default: "chi-tag"),
            new("min-prompt-words", "keep only utterances with more words than this (the seed used 3)", Default: "0"),
            new("reference-model", "the frozen reference of the KL penalty (default: the starting model)"),
            new("empty-answers", "keep (train on the token that ended an empty answer) or drop (leave it out of the step)", Default: "keep"),
            new("no-answer-reward", "the reward of a free-format answer in which the baby never wrote *CHI:", Default: "0"),
            new("max-new-tokens", "answer length in tokens at most", Default: "20"),
            new("min-new-tokens", "tokens before EOS is allowed", Default: "0"),
            new("top-p", "nucleus sampling mass", Default: "0.9"),
            new("top-k", "top-k sampling (0 = off)", Default: "0"),
            new("temperature", "sampling temperature", Default: "1.0"),
            new("generation-batch-size", "prompts per generation batch (trl's generate batch_size)", Default: "16"),
            new("checkpoint-every", "steps between resumable checkpoints", Default: "50"),
            new("sample-every", "steps between sample tables", Default: "10"),
            DataCommands.DataRoot,
            DataCommands.DemoRoot,
            new("judge", "judge LLM for the score reward: a checkpoint folder or a server URL"),
            new("judge-tokenizer", "tokenizer for a judge folder that has none"),
            new("judge-model", "the model name on the judge server"),
            new("teacher", "teacher LM for the confidence reward: a checkpoint folder or a server URL"),
            new("teacher-tokenizer", "tokenizer for a teacher folder that has none"),
            new("teacher-model", "the model name on the teacher server"),
            .. RewardCommands.RewardSettingOptions,
            .. RewardCommands.BackendOptions,
        ], Train),
        new("bench ppo", "seconds per PPO step on the BabyLM-sized Llama (batch 16, mini-batch 4, 4 epochs, 20 new tokens, top-p 0.9, BLEU), with the share of each phase",
        [
            new("tokenizer", "tokenizer.json or folder for the random model (its vocabulary must fit 16000)", Default: "models/demo-baby"),
            new("steps", "timed steps after one warm-up step", Default: "3"),
            DataCommands.DemoRoot,
        ], BenchPpo),
    ];

    static int Train(Args args, Output output)
    {
        var weights = RewardFactory.ParseSpec(args.Required("reward"));
        var ppo = args.Get("config") is { } configPath
            ? PpoConfig.FromTrlJson(ReadFile(configPath), configPath)
            : new RunSpec().Ppo;
        int seed = args.IntOrNull("seed") ?? ppo.Seed;   // --seed wins over the config's seed
        var spec = new RunSpec
        {
            BaseModel = args.Required("model"),
            ReferenceModel = args.Get("reference-model"),
            PromptSet = args.Get("prompts") ?? "demo-prompts",
            Format = args.Get("format") switch
            {
                "chi-tag" or null => PromptFormat.ChiTag,
                "free" => PromptFormat.Free,
                var other => throw new InputException($"train: --format expects chi-tag or free, got '{other}'"),
            },
            Rewards = weights,
            RewardSettings = RewardCommands.RewardSettings(args),
            Ppo = ppo with { Seed = seed },
            Generation = new GenerationSettings
            {
                MaxNewTokens = args.Int("max-new-tokens", 20), MinNewTokens = args.Int("min-new-tokens", 0),
                TopP = args.Double("top-p", 0.9), TopK = args.Int("top-k", 0), Temperature = args.Double("temperature", 1.0),
                BatchSize = args.Int("generation-batch-size", 16),
            },
            Steps = args.IntOrNull("steps"),
            Epochs = args.DoubleOrNull("epochs"),
            CheckpointEvery = args.Int("checkpoint-every", 50),
            SampleEvery = args.Int("sample-every", 10),
            MinPromptWords = args.Int("min-prompt-words", 0),
            EmptyAnswers = args.Get("empty-answers") switch
            {
                "keep" or null => EmptyAnswerPolicy.Keep,
                "drop" => EmptyAnswerPolicy.Drop,
                var other => throw new InputException($"train: --empty-answers expects keep or drop, got '{other}'"),
            },
            NoAnswerReward = args.Double("no-answer-reward", 0),
            Seed = seed,
        };
        if (spec.Steps is null && spec.Epochs is null) throw new InputException("train: give --steps N or --epochs E");
        spec.Validate();
        var outFolder = args.Get("out") ?? Path.Combine("runs", $"{Path.GetFileName(Path.TrimEndingDirectorySeparator(spec.BaseModel))}-{args.Required("reward").Replace(':', '_')}-seed{spec.Seed}");
        var (dataRoot, demoRoot) = DataCommands.Roots(args);

        using var judge = weights.ContainsKey("score") ? RewardCommands.Open(args, args.Get("judge") ?? throw new InputException("train: the score reward needs --judge"), "judge-tokenizer", "judge-model") : null;
        using var teacher = weights.ContainsKey("confidence") ? RewardCommands.Open(args, args.Get("teacher") ?? throw new InputException("train: the confidence reward needs --teacher"), "teacher-tokenizer", "teacher-model") : null;
        var reward = RewardFactory.Create(weights, spec.RewardSettings with { Judge = judge, Teacher = teacher });

        using var cancel = new CancellationTokenSource();
        ConsoleCancelEventHandler onCtrlC = (_, e) =>
        {
            e.Cancel = true;                       // finish the step, save a checkpoint, then stop
            cancel.Cancel();
            output.Err.WriteLine("\ncancelling after this step (a checkpoint will be saved; --resume continues)…");
        };
        Console.CancelKeyPress += onCtrlC;
        try
        {
            var bar = new ProgressLine(output.Err);
            var result = PpoRun.Run(spec, reward, new RunEnvironment(outFolder, dataRoot, demoRoot, RewardCommands.Device(args).ToString()),
                args.Flag("resume"), bar, null, cancel.Token);
            bar.Finish();
            output.Result(new JsonObject
            {
                ["out"] = outFolder,
                ["steps_done"] = result.StepsDone,
                ["total_steps"] = result.TotalSteps,
                ["cancelled"] = result.Cancelled,
                ["final"] = result.FinalFolder,
            }, () => $"{(result.Cancelled ? "cancelled" : "done")}: {result.StepsDone}/{result.TotalSteps} steps; model in {result.FinalFolder}; metrics in {Path.Combine(outFolder, PpoRun.MetricsFile)}");
            return result.Cancelled ? 130 : 0;
        }
        finally
        {
            Console.CancelKeyPress -= onCtrlC;
        }
    }

    /// <summary>One progress line on stderr, rewritten each step; warnings and sample tables on lines of their own.</summary>
    sealed class ProgressLine(TextWriter err) : IProgress<PpoStepStats>
    {
        public void Report(PpoStepStats s)
        {
            double perStep = s.Elapsed.TotalSeconds / Math.Max(1, s.Step);
            var eta = TimeSpan.FromSeconds(perStep * (s.TotalSteps - s.Step));
            int filled = (int)Math.Round(20.0 * s.Step / s.TotalSteps);
            string M(string key, string format) => s.Metrics.TryGetValue(key, out var v) ? v.ToString(format, CultureInfo.InvariantCulture) : "–";
            err.Write($"\rstep {s.Step}/{s.TotalSteps} [{new string('#', filled)}{new string('.', 20 - filled)}] reward {M("env/reward_mean", "F3")} kl {M("objective/kl", "F3")} {M("time/step", "F2")} s/step ETA {eta:hh\\:mm\\:ss}   ");
            foreach (var warning in s.Warnings) err.Write($"\nwarning: {warning}");
            if (s.Samples.Count > 0)
            {
                err.WriteLine();
                foreach (var sample in s.Samples) err.WriteLine($"  {sample.Reward,6:F3}  MOT: {sample.Prompt}  →  CHI: {sample.Answer}   (ref: {sample.Reference})");
            }
        }

        public void Finish() => err.WriteLine();
    }

    static int BenchPpo(Args args, Output output)
    {
        int steps = args.Int("steps", 3);
        var folder = Path.Combine(Path.GetTempPath(), "babyppo-bench-ppo-" + Guid.NewGuid().ToString("N"));
        try
        {
            var tokenizer = Training.Text.Tokenizer.Load(args.Get("tokenizer") ?? "models/demo-baby");
            using (var model = BenchCommands.BabyLmSizedModel())
            {
                if (tokenizer.VocabSize > model.Config.VocabSize)
                    throw new InputException($"bench ppo: the tokenizer has {tokenizer.VocabSize} tokens, more than the benchmark model's {model.Config.VocabSize}");
                Checkpoint.Save(model, tokenizer, Path.Combine(folder, "model"));
            }
            var spec = new RunSpec
            {
                BaseModel = Path.Combine(folder, "model"),
                PromptSet = "demo-prompts",
                Rewards = new Dictionary<string, double> { ["bleu"] = 1.0 },
                Ppo = new PpoConfig { BatchSize = 16, MiniBatchSize = 4, PpoEpochs = 4 },
                Generation = new GenerationSettings { MaxNewTokens = 20, TopP = 0.9, BatchSize = 16 },
                Steps = steps + 1,
                CheckpointEvery = 1_000_000,
                SampleEvery = 1_000_000,
            };
            var perStep = new List<IReadOnlyDictionary<string, double>>();
            var collect = new Collect(s => perStep.Add(s.Metrics));
            PpoRun.Run(spec, RewardFactory.Create(spec.Rewards, new RewardOptions()), new RunEnvironment(Path.Combine(folder, "run"), "data", DataCommands.Roots(args).Demo), progress: collect);
            var timed = perStep.Skip(1).ToList();
            double Median(string key) => timed.Select(m => m[key]).Order().ElementAt(timed.Count / 2);
            var phases = new JsonObject
            {
                ["generate"] = Median("time/generate"),
                ["reward"] = Median("time/reward"),
                ["forward"] = Median("time/forward"),
                ["optimise"] = Median("time/optimize"),
            };
            double total = Median("time/step");
            double matmul = BenchCommands.MatmulGflops();
            // Optimisation FLOPs: 6 × parameters × the real (unpadded) tokens the 4 epochs process.
            using var probe = BenchCommands.BabyLmSizedModel();
            double tokens = timed.Select(m => 4 * 16 * (m["tokens/queries_len_mean"] + m["tokens/responses_len_mean"])).Average();
            double utilisation = 6.0 * BenchCommands.Parameters(probe) * tokens / Median("time/optimize") / 1e9 / matmul;
            output.Result(new JsonObject
            {
                ["seconds_per_step"] = total,
                ["phases"] = phases,
                ["optimise_utilisation"] = utilisation,
                ["matmul_gflops"] = matmul,
                ["threads"] = TorchSharp.torch.get_num_threads(),
            }, () => $"ppo step, batch 16 / mini-batch 4 / 4 epochs, 20 new tokens, BLEU ({steps} timed steps, median)\n" +
                     $"  seconds per step: {total:F2}\n" +
                     string.Join("\n", phases.OrderByDescending(p => p.Value!.GetValue<double>()).Select(p => $"  {p.Key,-10} {p.Value!.GetValue<double>(),6:F2} s  {p.Value!.GetValue<double>() / total,6:P0}")) +
                     $"\n  optimise utilisation: {utilisation:P1} of {matmul:F1} GFLOP/s");
            return 0;
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
    }

    sealed class Collect(Action<PpoStepStats> onStep) : IProgress<PpoStepStats>
    {
        public void Report(PpoStepStats value) => onStep(value);
    }

    static string ReadFile(string path) =>
        File.Exists(path) ? File.ReadAllText(path) : throw InputException.At(path, "file not found");
}
