using System.Text.Json.Nodes;
using BabyPpo.Training;
using BabyPpo.Training.Pretrain;
using BabyPpo.Training.Text;
using static TorchSharp.torch;

namespace BabyPpo.Cli;

/// <summary>pretrain (a baby from dialogue text) and bench pretrain (training speed of the BabyLM-sized Llama).</summary>
public static class PretrainCommands
{
    static readonly PretrainConfig Defaults = new();

    /// <summary>Options that set training hyper-parameters: fixed by the checkpoint on --resume.</summary>
    static readonly string[] StoredOnResume =
        ["tokenizer", "vocab-size", "min-frequency", "config", "batch-size", "block-size", "lr", "min-lr", "warmup",
         "weight-decay", "grad-clip", "held-out", "seed"];

    public static IEnumerable<Command> All =>
    [
        new("pretrain", "pre-train a Llama on dialogue text (causal LM; checkpoints, resume, held-out loss)",
        [
            new("data", "dialogue pairs (.json/.jsonl/.csv: \"*MOT: … *CHI: …\" per exchange) or CHILDES-tagged text (.txt)"),
            new("out", "output folder: the final model, training_log.json, checkpoints/"),
            new("config", $"model size ({string.Join(", ", ModelPresets.Names)}) or a config.json path (default small)"),
            new("tokenizer", "tokenizer.json (or a folder) to use; default: train a byte-level BPE on the training text"),
            new("vocab-size", "vocabulary of the trained tokenizer (default 4000)"),
            new("min-frequency", "minimum pair frequency of the trained tokenizer (default 2)"),
            new("steps", $"optimizer steps of the whole run (default {Defaults.Steps})"),
            new("batch-size", $"blocks per step (default {Defaults.BatchSize})"),
            new("block-size", $"tokens per block (default {Defaults.BlockSize}, at most the model's context)"),
            new("lr", $"peak learning rate (default {Defaults.LearningRate})"),
            new("min-lr", $"learning rate at the end of the cosine decay (default {Defaults.MinLearningRate})"),
            new("warmup", $"linear warm-up steps (default {Defaults.WarmupSteps})"),
            new("weight-decay", $"AdamW weight decay on matrices (default {Defaults.WeightDecay})"),
            new("grad-clip", $"max global gradient norm, 0 = off (default {Defaults.GradClip})"),
            new("held-out", $"share of documents held out for the evaluation loss (default {Defaults.HeldOutFraction})"),
            new("eval-every", $"steps between held-out evaluations (default {Defaults.EvalEvery})"),
            new("eval-blocks", $"held-out blocks per evaluation, 0 = all (default {Defaults.EvalBlocks})"),
            new("checkpoint-every", $"steps between checkpoints (default {Defaults.CheckpointEvery})"),
            new("seed", "seed of the weights, the held-out split and the data order (default 0)"),
            new("resume", "continue from the newest checkpoint in --out with its stored settings (--steps may change)", IsFlag: true),
        ], Pretrain),
        new("bench pretrain", "training tokens/s and model-FLOP utilisation of the BabyLM-sized Llama (batch 16 × 64 tokens)",
            [
                new("repeats", "timed steps (the median is reported)", Default: "5"),
            ], BenchPretrain),
        new("bench tokenizer", "seconds per MB of byte-level BPE training, on a synthetic Zipf corpus of --mb MB or on --data",
            [
                new("mb", "size of the synthetic corpus in MB (UTF-8)", Default: "20"),
                new("data", "time on this file instead (any pretrain --data format)"),
                new("vocab-size", "vocabulary to train", Default: "16000"),
                new("min-frequency", "minimum pair frequency", Default: "2"),
            ], BenchTokenizer),
    ];

    static int Pretrain(Args args, Output output)
    {
        bool resume = args.Flag("resume");
        if (resume && StoredOnResume.FirstOrDefault(args.Has) is { } fixedOption)
            throw new InputException($"pretrain: --{fixedOption} cannot be given with --resume: the run continues with the settings stored in its checkpoint (only --steps may change)");
        if (args.Has("tokenizer") && args.Has("vocab-size"))
            throw new InputException("pretrain: give --tokenizer PATH or --vocab-size N, not both");
        var config = new PretrainConfig
        {
            Steps = args.Int("steps", Defaults.Steps),
            BatchSize = args.Int("batch-size", Defaults.BatchSize),
            BlockSize = args.Int("block-size", Defaults.BlockSize),
            LearningRate = args.Double("lr", Defaults.LearningRate),
            MinLearningRate = args.Double("min-lr", Math.Min(Defaults.MinLearningRate, args.Double("lr", Defaults.LearningRate))),
            WarmupSteps = args.Int("warmup", Defaults.WarmupSteps),
            WeightDecay = args.Double("weight-decay", Defaults.WeightDecay),
            GradClip = args.Double("grad-clip", Defaults.GradClip),
            HeldOutFraction = args.Double("held-out", Defaults.HeldOutFraction),
            EvalEvery = args.Int("eval-every", Defaults.EvalEvery),
            EvalBlocks = args.Int("eval-blocks", Defaults.EvalBlocks),
            CheckpointEvery = args.Int("checkpoint-every", Defaults.CheckpointEvery),
            Seed = args.Long("seed", 0),
        };
        var request = new PretrainRequest
        {
            DataPath = args.Required("data"),
            OutputFolder = args.Required("out"),
            Model = args.Get("config") ?? "small",
            TokenizerPath = args.Get("tokenizer"),
            VocabSize = args.Int("vocab-size", 4000),
            MinFrequency = args.Int("min-frequency", 2),
            Config = config,
            Resume = resume,
        };

        using var cancel = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            e.Cancel = true;   // finish the step, write a checkpoint, then stop
            cancel.Cancel();
        };
        Console.CancelKeyPress += onCancel;
        try
        {
            var printer = new ProgressPrinter(output.Err);
            var result = Pretrainer.Run(request, printer, cancel.Token);
            printer.Finish();
            output.Result(new JsonObject
            {
                ["steps"] = result.Steps,
                ["parameters"] = result.Parameters,
                ["final_loss"] = result.FinalLoss,
                ["held_out_loss"] = result.HeldOutLoss,
                ["out"] = result.OutputFolder,
            }, () => $"pre-trained {result.Parameters:N0} parameters for {result.Steps} steps: loss {result.FinalLoss:F3}, held-out loss {result.HeldOutLoss:F3}\nmodel written to {result.OutputFolder}");
            return 0;
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
    }

    /// <summary>
    /// One progress line on stderr, rewritten in place ("\r") on a terminal; every evaluation and
    /// checkpoint also gets a line of its own. Redirected, it prints a line every 10 steps instead.
    /// </summary>
    sealed class ProgressPrinter(TextWriter err) : IProgress<PretrainProgress>
    {
        readonly bool _terminal = ReferenceEquals(err, Console.Error) && !Console.IsErrorRedirected;
        bool _pending;

        public void Report(PretrainProgress p)
        {
            string line = $"step {p.Step}/{p.TotalSteps}  loss {p.Loss:F3}  lr {p.LearningRate:0.00e+00}  {p.TokensPerSecond:N0} tok/s";
            if (p.HeldOutLoss is not null || p.Checkpoint is not null)
            {
                Finish();
                err.WriteLine(line + (p.HeldOutLoss is { } h ? $"  held-out {h:F3}" : "") + (p.Checkpoint is { } c ? $"  saved {c}" : ""));
            }
            else if (_terminal)
            {
                err.Write("\r" + line + "   ");
                _pending = true;
            }
            else if (p.Step % 10 == 0)
            {
                err.WriteLine(line);
            }
        }

        public void Finish()
        {
            if (_pending) err.WriteLine();
            _pending = false;
        }
    }

    /// <summary>
    /// Times <see cref="BpeTrainer.Train"/> from texts in memory to a finished vocabulary. The default
    /// corpus is synthetic but shaped like language where it matters for BPE: utterances of 2–12
    /// words drawn from a Zipf(1) distribution over 200,000 pseudo-words of 1–4 syllables, so that
    /// the number of distinct words keeps growing with the corpus (Heaps' law), as it does in real
    /// text; a repeated small corpus would have too few distinct words and flatter the trainer.
    /// </summary>
    static int BenchTokenizer(Args args, Output output)
    {
        var options = new BpeTrainerOptions { VocabSize = args.Int("vocab-size", 16000), MinFrequency = args.Int("min-frequency", 2) };
        options.Validate();
        var texts = args.Get("data") is { } path ? PretrainCorpus.ReadDocuments(path) : ZipfCorpus(args.Double("mb", 20));
        double megabytes = texts.Sum(t => (long)System.Text.Encoding.UTF8.GetByteCount(t) + 1) / 1e6;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var trained = BpeTrainer.Train(texts, options);
        double seconds = clock.Elapsed.TotalSeconds;
        output.Result(new JsonObject
        {
            ["megabytes"] = megabytes,
            ["documents"] = texts.Count,
            ["seconds"] = seconds,
            ["seconds_per_mb"] = seconds / megabytes,
            ["vocab_size"] = trained.Tokens.Count,
            ["merges"] = trained.Merges.Count,
        }, () => $"BPE training on {megabytes:F1} MB ({texts.Count:N0} documents{(args.Has("data") ? "" : ", synthetic Zipf corpus")}):\n" +
                 $"  {seconds:F1} s = {seconds / megabytes:F3} s/MB, {trained.Merges.Count:N0} merges, vocabulary {trained.Tokens.Count:N0}");
        return 0;
    }

    static List<string> ZipfCorpus(double megabytes)
    {
        if (megabytes is <= 0 or > 1000) throw new InputException($"--mb must be in (0, 1000], got {megabytes}");
        string[] onsets = ["", "b", "d", "g", "k", "l", "m", "n", "p", "s", "t", "w", "br", "st", "pl", "sh", "ch", "th"];
        string[] vowels = ["a", "e", "i", "o", "u", "ee", "oo", "ay", "ow"];
        string[] codas = ["", "", "n", "t", "s", "l", "k", "ng", "p"];
        var random = new Random(0);
        const int lexiconSize = 200_000;
        var lexicon = new string[lexiconSize];
        for (int w = 0; w < lexiconSize; w++)
            lexicon[w] = string.Concat(Enumerable.Range(0, 1 + random.Next(4)).Select(_ => onsets[random.Next(onsets.Length)] + vowels[random.Next(vowels.Length)] + codas[random.Next(codas.Length)]));
        var cumulative = new double[lexiconSize];                                      // Zipf(1): p(rank r) ∝ 1 / r
        double total = 0;
        for (int r = 0; r < lexiconSize; r++) cumulative[r] = total += 1.0 / (r + 1);
        var texts = new List<string>();
        long bytes = 0, target = (long)(megabytes * 1e6);
        var words = new List<string>();
        while (bytes < target)
        {
            words.Clear();
            int length = 2 + random.Next(11);
            for (int i = 0; i < length; i++)
            {
                int rank = Array.BinarySearch(cumulative, random.NextDouble() * total);
                words.Add(lexicon[rank < 0 ? ~rank : rank]);
            }
            var text = $"*{(texts.Count % 2 == 0 ? "MOT" : "CHI")}: {string.Join(' ', words)} .";
            texts.Add(text);
            bytes += text.Length + 1;
        }
        return texts;
    }

    static int BenchPretrain(Args args, Output output)
    {
        int repeats = args.Int("repeats", 5);
        const int batch = 16, tokens = 64;
        using var model = BenchCommands.BabyLmSizedModel();
        using var optimizer = new CausalLmOptimizer(model, new PretrainConfig());
        var random = new Random(0);
        var ids = Enumerable.Range(0, batch * (tokens + 1)).Select(_ => (long)random.Next(3, model.Config.VocabSize)).ToArray();
        double seconds = BenchCommands.MedianSeconds(repeats, () => optimizer.Step(ids, batch, tokens + 1, 1e-4));
        double matmul = BenchCommands.MatmulGflops();
        long parameters = BenchCommands.Parameters(model);
        double tokensPerSecond = batch * tokens / seconds;
        double gflops = 6.0 * parameters * tokensPerSecond / 1e9;
        output.Result(new JsonObject
        {
            ["tokens_per_s"] = tokensPerSecond,
            ["matmul_gflops"] = matmul,
            ["mfu"] = gflops / matmul,
            ["step_seconds"] = seconds,
            ["parameters"] = parameters,
            ["threads"] = get_num_threads(),
        }, () => $"pretrain step, batch {batch} × {tokens} tokens, {parameters:N0} parameters, {get_num_threads()} threads\n" +
                 $"  step:        {seconds * 1000,8:F0} ms (forward, cross-entropy, backward, clipping, AdamW)\n" +
                 $"  trained:     {tokensPerSecond,8:F0} tokens/s = {gflops:F1} GFLOP/s (6 × params × tokens)\n" +
                 $"  matmul:      {matmul,8:F1} GFLOP/s (1024² float32)\n  MFU:         {gflops / matmul,8:P1}");
        return 0;
    }
}
