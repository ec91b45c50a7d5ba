using System.Text.Json;
using System.Text.Json.Nodes;
using BabyPpo.Training;

namespace BabyPpo.Cli;

/// <summary>A verb of the <c>babyppo</c> command.</summary>
public sealed record Command(string Name, string Summary, IReadOnlyList<Option> Options, Func<Args, Output, int> Run);

/// <summary>Where a command writes: human-readable lines, or one JSON object with <c>--json</c>.</summary>
public sealed class Output(TextWriter stdout, TextWriter stderr, bool json)
{
    // Relaxed escaping keeps tokens such as "<s>" and "Ġthe" readable; the output is still valid JSON.
    static readonly JsonSerializerOptions Compact = new() { WriteIndented = false, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public bool Json { get; } = json;
    public TextWriter Out { get; } = stdout;
    /// <summary>Progress and warnings: never mixed into the JSON on stdout.</summary>
    public TextWriter Err { get; } = stderr;

    /// <summary>Prints the result: the JSON object with --json, else the human-readable text.</summary>
    public void Result(JsonObject json, Func<string> human)
    {
        if (Json) Out.WriteLine(json.ToJsonString(Compact));
        else Out.WriteLine(human());
    }
}

/// <summary>Parses the verb, runs it, and turns user errors into one line and exit code 2.</summary>
public static class Cli
{
    public static readonly IReadOnlyList<Command> Commands =
    [
        .. ModelCommands.All,
        .. PretrainCommands.All,
        .. BenchCommands.All,
        .. RewardCommands.All,
        .. TrainCommands.All,
        .. EvalCommands.All,
        .. DataCommands.All,
    ];

    public static int Run(string[] argv, TextWriter stdout, TextWriter stderr)
    {
        if (argv.Length == 0 || argv[0] is "--help" or "-h" or "help")
        {
            stdout.WriteLine(Usage());
            return argv.Length == 0 ? 2 : 0;
        }
        // Verbs may have two words ("bench generate").
        var command = Commands.FirstOrDefault(c => argv.Length > 1 && c.Name == $"{argv[0]} {argv[1]}")
                      ?? Commands.FirstOrDefault(c => c.Name == argv[0]);
        if (command is null)
        {
            stderr.WriteLine($"error: unknown command '{argv[0]}'\n\n{Usage()}");
            return 2;
        }
        var rest = argv.Skip(command.Name.Split(' ').Length).ToArray();
        if (rest.Contains("--help") || rest.Contains("-h"))
        {
            stdout.WriteLine(Help(command));
            return 0;
        }
        try
        {
            var args = Args.Parse(command.Name, [.. command.Options, .. GlobalOptions], rest);
            SetThreads(args, command.Name);
            return command.Run(args, new Output(stdout, stderr, args.Flag("json")));
        }
        catch (InputException e)
        {
            stderr.WriteLine($"error: {e.Message}");
            return 2;
        }
        catch (OperationCanceledException)
        {
            stderr.WriteLine("cancelled");
            return 130;
        }
    }

    /// <summary>Options every command takes.</summary>
    static readonly Option[] GlobalOptions =
    [
        new("json", "print one JSON object instead of text", IsFlag: true),
        new("threads", "CPU threads for libtorch (default: $BABYPPO_THREADS, else one per core; 1 is often faster on a busy machine)"),
    ];

    /// <summary>
    /// libtorch's intra-op threads: --threads, else $BABYPPO_THREADS, else libtorch's default (one per
    /// core). When other processes hold the cores, libtorch's threads stall waiting for each other,
    /// and fewer threads are then much faster.
    /// </summary>
    static void SetThreads(Args args, string command)
    {
        var value = args.Get("threads") ?? Environment.GetEnvironmentVariable("BABYPPO_THREADS");
        if (string.IsNullOrEmpty(value)) return;
        if (!int.TryParse(value, out int threads) || threads < 1)
            throw new InputException($"{command}: --threads (or BABYPPO_THREADS) must be a whole number of at least 1, got '{value}'");
        TorchSharp.torch.set_num_threads(threads);
    }

    static string Usage() =>
        "usage: babyppo <command> [options]   (babyppo <command> --help for its options)\n\ncommands:\n" +
        string.Join("\n", Commands.Select(c => $"  {c.Name,-18} {c.Summary}"));

    static string Help(Command c) =>
        $"babyppo {c.Name}: {c.Summary}\n\noptions:\n" +
        string.Join("\n", c.Options.Concat(GlobalOptions).Select(o => $"  --{o.Name}{(o.IsFlag ? "" : " VALUE"),-8} {o.Help}{(o.Default is null ? "" : $" (default {o.Default})")}"));
}
