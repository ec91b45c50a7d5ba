using System.Globalization;
using System.Text.Json.Nodes;
using BabyPpo.Training;
using BabyPpo.Training.Data;
using BabyPpo.Training.Rewards;
using Microsoft.Extensions.Hosting;
using static TorchSharp.torch;

namespace BabyPpo.Cli;

/// <summary>reward, teacher and serve: the rewards and the LLM back-ends behind them.</summary>
public static class RewardCommands
{
    public static IEnumerable<Command> All =>
    [
        new("reward", "rate one answer: bleu, semsim, score, confidence, or a weighted sum (bleu:0.5+semsim:0.5)",
        [
            new("reward", "the reward spec: NAME or NAME:WEIGHT joined with +"),
            new("mot", "the mother's utterance"),
            new("chi", "the child's answer (may be empty)"),
            new("reference", "a teacher answer (repeatable; bleu, semsim and confidence need one)", Repeatable: true),
            new("judge", "the judge LLM of score: a checkpoint folder or a server URL"),
            new("judge-tokenizer", "tokenizer.json (or a folder) for a judge folder that has none"),
            new("judge-model", "the model name on the judge server (default: the first it lists)"),
            new("teacher", "the teacher LM of confidence: a checkpoint folder or a server URL"),
            new("teacher-tokenizer", "tokenizer.json (or a folder) for a teacher folder that has none"),
            new("teacher-model", "the model name on the teacher server (default: the first it lists)"),
            .. RewardSettingOptions,
            .. BackendOptions,
        ], Reward),
        new("teacher", "write N teacher answers per utterance as a prompt set (JSON lines); resumable",
        [
            new("backend", "the teacher LLM: a checkpoint folder or a server URL"),
            new("prompts", "utterances: a prompt set or train.json (.json/.jsonl with \"prompt\"), or a .txt with one per line"),
            new("n", "answers per utterance", Default: "10"),
            new("out", "the output .jsonl; appended to, utterances already in it are skipped"),
            new("model", "the model name on the server (default: the first it lists)"),
            new("tokenizer", "tokenizer.json (or a folder) for a checkpoint folder that has none"),
            new("batch", "utterances per back-end call", Default: "16"),
            new("seed", "sampling seed (default: random)"),
            .. BackendOptions,
        ], Teacher),
        new("serve", "serve a checkpoint as an OpenAI-compatible /v1/completions and /v1/models",
        [
            new("model", "Hugging Face checkpoint folder"),
            new("tokenizer", "tokenizer.json (or a folder) when the checkpoint has none"),
            new("host", "the address to listen on", Default: "127.0.0.1"),
            new("port", "the port (0 = a free one)", Default: "8000"),
            new("name", "the model name clients ask for (default: the folder's name)"),
            new("device", "cpu or cuda", Default: "cpu"),
        ], ServeCommand),
    ];

    /// <summary>Where the judge and teacher run: keys and limits for server URLs, the device for checkpoint folders.</summary>
    internal static IEnumerable<Option> BackendOptions =>
    [
        new("api-key", "API key for server URLs (default: $OPENAI_API_KEY)"),
        new("timeout", "seconds allowed for one request to a server URL", Default: "120"),
        new("retries", "further attempts after a timeout, 408, 429 or 5xx, with doubling back-off", Default: "4"),
        new("concurrency", "requests in flight at once to a server URL", Default: "4"),
        new("device", "where checkpoint folders run: cpu or cuda", Default: "cpu"),
    ];

    /// <summary>The reward settings that --judge-template, --default-score, --length-normalised, --references and --normalise-rewards give.</summary>
    internal static IEnumerable<Option> RewardSettingOptions =>
    [
        new("judge-template", "the judge prompt with {mot} and {chi} (default: the seed's)"),
        new("default-score", "the score of a judge output without a number in 0–5", Default: "0"),
        new("length-normalised", "confidence ranks the mean log-probability per token instead of the sum", IsFlag: true),
        new("references", "how bleu and semsim combine several teacher answers: mean, max or first", Default: "mean"),
        new("normalise-rewards", "standardise each part of a combined reward by its running mean and std", IsFlag: true),
    ];

    internal static RewardOptions RewardSettings(Args args) => new()
    {
        JudgeTemplate = args.Get("judge-template") ?? JudgeReward.SeedTemplate,
        DefaultScore = args.Double("default-score", 0),
        ConfidenceVariant = args.Flag("length-normalised") ? ConfidenceVariant.MeanPerToken : ConfidenceVariant.Sum,
        ReferenceAggregation = args.Get("references") switch
        {
            "mean" or null => ReferenceAggregation.Mean,
            "max" => ReferenceAggregation.Max,
            "first" => ReferenceAggregation.First,
            var other => throw new InputException($"--references expects mean, max or first, got '{other}'"),
        },
        RunningNormalisation = args.Flag("normalise-rewards"),
    };

    static int Reward(Args args, Output output)
    {
        var weights = RewardFactory.ParseSpec(args.Required("reward"));
        var input = new RewardInput(args.Required("mot"), args.Required("chi"), args.All("reference"));
        using var judge = weights.ContainsKey("score") ? Open(args, args.Required("judge"), "judge-tokenizer", "judge-model") : null;
        using var teacher = weights.ContainsKey("confidence") ? Open(args, args.Required("teacher"), "teacher-tokenizer", "teacher-model") : null;
        var reward = RewardFactory.Create(weights, RewardSettings(args) with { Judge = judge, Teacher = teacher });
        var result = reward.Score([input]);
        var metrics = new JsonObject();
        foreach (var (key, value) in result.Metrics) metrics[key] = value;
        output.Result(new JsonObject { ["reward"] = result.Values[0], ["metrics"] = metrics },
            () => $"{reward.Name}: {result.Values[0].ToString("0.######", CultureInfo.InvariantCulture)}");
        return 0;
    }

    static int Teacher(Args args, Output output)
    {
        var utterances = Datasets.ReadUtterances(args.Required("prompts"));
        string outPath = args.Required("out");
        int n = args.Int("n", 10), batch = args.Int("batch", 16);
        if (batch < 1) throw new InputException($"teacher: --batch must be at least 1, got {batch}");
        ulong? seed = args.Get("seed") is null ? null : (ulong)args.Long("seed", 0);
        using var backend = Open(args, args.Required("backend"), "tokenizer", "model");
        var progress = new Progress(output.Err, outPath);
        int written = TeacherAnswers.Write(backend, utterances, n, outPath, progress, batch, seed);
        output.Result(new JsonObject { ["out"] = outPath, ["written"] = written, ["already_answered"] = progress.Skipped },
            () => $"{written} utterances answered into {outPath} ({progress.Skipped} were already there)");
        return 0;
    }

    static int ServeCommand(Args args, Output output)
    {
        using var backend = new LocalLlmBackend(args.Required("model"), args.Get("tokenizer"), Device(args));
        var endpoint = new OpenAiEndpoint(backend, args.Get("name"));
        var app = Serve.StartAsync(endpoint, args.Get("host")!, args.Int("port", 8000), output.Err).GetAwaiter().GetResult();
        string url = app.Urls.First();
        output.Result(new JsonObject { ["url"] = url, ["model"] = endpoint.ModelId },
            () => $"serving {endpoint.ModelId} on {url}/v1 (Ctrl-C stops)");
        output.Out.Flush();
        app.WaitForShutdownAsync().GetAwaiter().GetResult();
        app.DisposeAsync().AsTask().GetAwaiter().GetResult();
        return 0;
    }

    /// <summary>A judge or teacher back-end from a checkpoint folder or a server URL, with the shared options.</summary>
    internal static ILlmBackend Open(Args args, string folderOrUrl, string tokenizerOption, string modelOption)
    {
        double timeout = args.Double("timeout", 120);
        int retries = args.Int("retries", 4), concurrency = args.Int("concurrency", 4);
        if (timeout <= 0) throw new InputException($"--timeout must be positive, got {timeout.ToString(CultureInfo.InvariantCulture)}");
        if (retries < 0) throw new InputException($"--retries must be 0 or more, got {retries}");
        if (concurrency < 1) throw new InputException($"--concurrency must be at least 1, got {concurrency}");
        var server = new OpenAiOptions { BaseUrl = folderOrUrl, Timeout = TimeSpan.FromSeconds(timeout), MaxRetries = retries, MaxConcurrency = concurrency };
        return LlmBackend.Open(folderOrUrl, args.Get(tokenizerOption), args.Get(modelOption),
            args.Get("api-key") ?? Environment.GetEnvironmentVariable("OPENAI_API_KEY"), LlmBackend.IsUrl(folderOrUrl) ? null : Device(args), server);
    }

    /// <summary>--device: cpu, cuda or cuda:N (checked to exist).</summary>
    internal static Device Device(Args args)
    {
        string name = args.Get("device") ?? "cpu";
        if (name is not ("cpu" or "cuda") && !name.StartsWith("cuda:", StringComparison.Ordinal))
            throw new InputException($"--device expects cpu, cuda or cuda:N, got '{name}'");
        if (name != "cpu" && !cuda.is_available()) throw new InputException($"--device {name}: no CUDA device is available (is the CUDA libtorch package installed?)");
        return device(name);
    }

    /// <summary>Teacher progress on stderr, one line per back-end call.</summary>
    sealed class Progress(TextWriter err, string outPath) : IProgress<TeacherProgress>
    {
        public int Skipped { get; private set; }

        public void Report(TeacherProgress value)
        {
            Skipped = value.AlreadyAnswered;
            err.WriteLine($"teacher: {value.Answered}/{value.ToAnswer} utterances answered ({value.AlreadyAnswered} already in {outPath})");
        }
    }
}
