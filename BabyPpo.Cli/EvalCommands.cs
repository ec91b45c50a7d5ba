using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using BabyPpo.Evaluation;
using BabyPpo.Training;
using BabyPpo.Training.Inference;
using BabyPpo.Training.Model;
using BabyPpo.Training.Text;
using static TorchSharp.torch;

namespace BabyPpo.Cli;

/// <summary>eval TASK, compare and bench eval: thin wrappers over <see cref="Tasks"/> and <see cref="Reports"/>.</summary>
public static class EvalCommands
{
    public static IEnumerable<Command> All =>
    [
        EvalCommand("zorro", "Zorro grammaticality pairs: a folder of paradigm files (../shared/data/zorro)"),
        EvalCommand("pairs", "minimal pairs in BLiMP's JSON lines format (sentence_good, sentence_bad), a file or a folder"),
        EvalCommand("dialogue", "dialogue minimal pairs: prompt + chosen vs. prompt + rejected (eval_words.json, eval_tokens.json)"),
        EvalCommand("lexical", "lexical decision: a real word (lexeme) vs. a pseudo-word (wug), CSV or JSON lines"),
        new("compare", "paired comparison of two reports of the same task: B − A with its bootstrap interval, McNemar p",
        [
            new("a", "report A (JSON written by eval --out)"),
            new("b", "report B"),
        ], Compare),
        new("bench eval", "seconds for the whole Zorro suite on the BabyLM-sized random Llama, and utilisation of the matmul rate",
        [
            new("data", "the Zorro folder (default: $BABYPPO_SHARED/data/zorro or ../shared/data/zorro)"),
            new("tokenizer", "a byte-level tokenizer whose ids are below 16000 (default: the shared fixture bytelevel-bpe)"),
            new("batch-tokens", "padded tokens per forward pass", Default: new ScorerOptions().MaxBatchTokens.ToString(CultureInfo.InvariantCulture)),
            new("no-prefix-sharing", "score both sentences of a pair in full (for comparison)", IsFlag: true),
            new("repeats", "timed runs (the median is reported)", Default: "1"),
        ], BenchEval),
    ];

    static Command EvalCommand(string task, string summary) => new($"eval {task}", summary,
    [
        new("model", "Hugging Face checkpoint folder"),
        new("data", task == "zorro" ? "the Zorro folder" : "the data file"),
        new("name", "the model's name in the report (default: the --model path)"),
        new("limit", task is "zorro" or "pairs" ? "at most N pairs of each paradigm (group)" : "at most the first N items"),
        new("bow-correction", "apply the beginning-of-word correction", IsFlag: true),
        new("lowercase", "lower-case every sentence before encoding it", IsFlag: true),
        .. task == "pairs" ? new[] { new Option("group-field", "the JSON field to group pairs by (default: UID, field or linguistics_term when present)") } : [],
        new("batch-tokens", "padded tokens per forward pass", Default: new ScorerOptions().MaxBatchTokens.ToString(CultureInfo.InvariantCulture)),
        new("out", "write the full report (with per-item outcomes, for compare) to this JSON file"),
        new("csv", "write per-paradigm accuracies as CSV to this file"),
        new("markdown", "write a Markdown table to this file"),
    ], (args, output) => Eval(task, args, output));

    static int Eval(string task, Args args, Output output)
    {
        string modelPath = args.Required("model");
        string data = args.Required("data");
        var options = new EvalOptions
        {
            LowerCase = args.Flag("lowercase"),
            Limit = args.IntOrNull("limit"),
            GroupField = args.Get("group-field"),
            ModelName = args.Get("name") ?? modelPath,
        };
        var scoring = new ScorerOptions { BowCorrection = args.Flag("bow-correction"), MaxBatchTokens = args.Int("batch-tokens", 0) };
        using var pretrained = Checkpoint.Load(modelPath);
        var scorer = new Scorer(pretrained.Model, pretrained.Tokenizer, scoring);
        if (scoring.BowCorrection && !scorer.AppliesBowCorrection)
            output.Err.WriteLine($"eval {task}: the tokenizer marks no word starts, so --bow-correction changes nothing");
        var clock = Stopwatch.StartNew();
        var report = Tasks.Run(task, scorer, data, options, new StderrProgress(output.Err, clock));
        double seconds = clock.Elapsed.TotalSeconds;

        if (args.Get("out") is { } outPath) Reports.Save(report, outPath);
        if (args.Get("csv") is { } csvPath) File.WriteAllText(csvPath, Reports.ToCsv(report));
        if (args.Get("markdown") is { } mdPath) File.WriteAllText(mdPath, Reports.ToMarkdown([report]));
        ReportUnscorable(report, output.Err);

        var json = JsonNode.Parse(Reports.ToJson(report, includeItems: false))!.AsObject();
        if (report.MacroAccuracy is null) json.Remove("macro_accuracy");
        json["seconds"] = Math.Round(seconds, 3);
        output.Result(json, () => Human(report, seconds));
        return 0;
    }

    static void ReportUnscorable(EvalReport report, TextWriter err)
    {
        if (report.Unscorable == 0) return;
        var ids = report.Items.Where(i => double.IsNaN(i.ScoreGood) || double.IsNaN(i.ScoreBad)).Select(i => i.Id).ToList();
        err.WriteLine($"eval {report.Task}: {ids.Count} of {report.N} items could not be scored (an empty word or only special tokens) and count as wrong: " +
                      $"item {string.Join(", ", ids.Take(10))}{(ids.Count > 10 ? ", …" : "")}");
    }

    static string Human(EvalReport r, double seconds)
    {
        var lines = new List<string>
        {
            $"{r.Task} · {r.Model} · {r.Dataset}",
            $"  accuracy {Percent(r.Accuracy)} [{Percent(r.Ci95.Low)}, {Percent(r.Ci95.High)}] over {r.N} items{(r.Unscorable > 0 ? $" ({r.Unscorable} unscorable, counted wrong)" : "")}",
        };
        if (r.MacroAccuracy is { } macro)
            lines.Add($"  macro    {Percent(macro)} [{Percent(r.HeadlineCi95.Low)}, {Percent(r.HeadlineCi95.High)}] over {r.PerParadigm.Count} paradigms");
        lines.Add("  (95% bootstrap intervals in brackets)");
        int width = r.PerParadigm.Keys.Select(k => k.Length).DefaultIfEmpty(0).Max();
        foreach (var (name, group) in r.PerParadigm)
            lines.Add($"    {name.PadRight(width)}  {Percent(group.Accuracy),6}  n={group.N}");
        lines.Add($"  {seconds:F1} s");
        return string.Join("\n", lines);
    }

    static string Percent(double fraction) => (100 * fraction).ToString("F1", CultureInfo.InvariantCulture) + "%";

    static int Compare(Args args, Output output)
    {
        var a = Reports.Load(args.Required("a"));
        var b = Reports.Load(args.Required("b"));
        var comparison = Reports.Compare(a, b);
        var json = JsonNode.Parse(Reports.ComparisonToJson(a, b, comparison))!.AsObject();
        output.Result(json, () =>
            $"{a.Task}, {comparison.N} items: A {a.Model} {Percent(comparison.AccuracyA)}, B {b.Model} {Percent(comparison.AccuracyB)}\n" +
            $"  B − A = {100 * comparison.Difference:+0.0;-0.0;0.0} points, 95% CI [{100 * comparison.DifferenceCi95.Low:F1}, {100 * comparison.DifferenceCi95.High:F1}]\n" +
            $"  only A right {comparison.OnlyACorrect}, only B right {comparison.OnlyBCorrect}; exact McNemar p = {comparison.McNemarP:G4}");
        return 0;
    }

    static int BenchEval(Args args, Output output)
    {
        string shared = Environment.GetEnvironmentVariable("BABYPPO_SHARED") is { Length: > 0 } root ? root : Path.Combine("..", "shared");
        string data = args.Get("data") ?? Path.Combine(shared, "data", "zorro");
        string tokenizerPath = args.Get("tokenizer") ?? Path.Combine(shared, "fixtures", "tokenizers", "bytelevel-bpe");
        if (!Directory.Exists(data)) throw InputException.At(data, "folder not found; give the Zorro folder with --data");
        var tokenizer = Tokenizer.Load(tokenizerPath);
        using var model = BenchCommands.BabyLmSizedModel();
        int maxId = Enumerable.Range(0, tokenizer.VocabSize).Where(id => tokenizer.IdToToken(id) is not null).DefaultIfEmpty(0).Max();
        if (maxId >= model.Config.VocabSize)
            throw InputException.At(tokenizerPath, $"token id {maxId} does not fit the benchmark model's {model.Config.VocabSize} embedding rows; expected a tokenizer with ids below {model.Config.VocabSize}");

        var scorer = new Scorer(model, tokenizer, new ScorerOptions
        {
            MaxBatchTokens = args.Int("batch-tokens", 0),
            SharePrefixes = !args.Flag("no-prefix-sharing"),
        });
        var pairs = BabyPpo.Training.Data.Datasets.ReadZorro(data);
        long tokens = pairs.Sum(p => (long)tokenizer.Encode(p.Good).Length + tokenizer.Encode(p.Bad).Length);
        Tasks.Zorro(scorer, data, new EvalOptions { Limit = 5 });                     // warm-up
        EvalReport? report = null;
        var times = new List<double>();
        for (int i = 0; i < Math.Max(1, args.Int("repeats", 1)); i++)
        {
            var clock = Stopwatch.StartNew();
            report = Tasks.Zorro(scorer, data);
            times.Add(clock.Elapsed.TotalSeconds);
        }
        times.Sort();
        double seconds = times[times.Count / 2];
        double matmul = BenchCommands.MatmulGflops();
        double gflops = 2.0 * BenchCommands.Parameters(model) * tokens / seconds / 1e9;
        var json = new JsonObject
        {
            ["seconds"] = seconds,
            ["pairs_per_s"] = report!.N / seconds,
            ["matmul_gflops"] = matmul,
            ["utilisation"] = gflops / matmul,
            ["pairs"] = report.N,
            ["accuracy"] = report.Accuracy,
            ["paradigms"] = report.PerParadigm.Count,
            ["tokens_in_full"] = tokens,
            ["scoring_gflops"] = gflops,
            ["prefix_sharing"] = scorer.Options.SharePrefixes,
            ["max_batch_tokens"] = scorer.Options.MaxBatchTokens,
            ["threads"] = get_num_threads(),
            ["tokenizer"] = $"{tokenizerPath}: byte-level BPE, {tokenizer.VocabSize} ids (all below the model's {model.Config.VocabSize} rows, so they index its embedding directly)",
        };
        output.Result(json, () =>
            $"eval zorro, {report.N} pairs ({tokens} tokens in full) on the BabyLM-sized Llama, {get_num_threads()} threads, " +
            $"{(scorer.Options.SharePrefixes ? "shared prefixes" : "no prefix sharing")}, tokenizer {tokenizerPath} ({tokenizer.VocabSize} ids < {model.Config.VocabSize})\n" +
            $"  time:        {seconds,8:F1} s = {report.N / seconds:F0} pairs/s\n" +
            $"  scored:      {gflops,8:F1} GFLOP/s (2 × params × tokens in full)\n" +
            $"  matmul:      {matmul,8:F1} GFLOP/s (1024² float32)\n  utilisation: {gflops / matmul,8:P1}");
        return 0;
    }

    /// <summary>Progress on stderr, at most every two seconds, so that the JSON on stdout stays clean.</summary>
    sealed class StderrProgress(TextWriter err, Stopwatch clock) : IProgress<EvalProgress>
    {
        double _last = -1;

        public void Report(EvalProgress value)
        {
            double now = clock.Elapsed.TotalSeconds;
            if (now - _last < 2 && value.SentencesDone < value.Sentences) return;
            _last = now;
            err.WriteLine($"eval {value.Task}: {value.SentencesDone}/{value.Sentences} sentences scored ({100.0 * value.SentencesDone / value.Sentences:F0}%), {now:F0} s");
        }
    }
}
