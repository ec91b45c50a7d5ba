using System.Text.Json.Nodes;
using BabyPpo.Training.Data;

namespace BabyPpo.Cli;

/// <summary>data: the data sets the project knows, which of them this machine has, and where to get the others.</summary>
public static class DataCommands
{
    public static IEnumerable<Command> All =>
    [
        new("data", "list the known data sets: present here or missing, with their paths, public source and licence",
        [
            DataRoot,
            DemoRoot,
        ], List),
    ];

    /// <summary>--data-root: where the public data sets are (the app's Data:Root).</summary>
    internal static Option DataRoot => new("data-root", "folder holding the public data sets (dialogue/, zorro/, …)", Default: "data");

    /// <summary>--demo-root: the team's own sets, committed in the repository (the app's Data:DemoRoot).</summary>
    internal static Option DemoRoot => new("demo-root", "folder holding the demo sets (prompts.jsonl, lexical-decision.csv)", Default: "data/demo");

    internal static (string Data, string Demo) Roots(Args args) => (args.Get("data-root") ?? "data", args.Get("demo-root") ?? Path.Combine("data", "demo"));

    static int List(Args args, Output output)
    {
        var (root, demo) = Roots(args);
        var sets = DataCatalog.Resolve(root, demo);
        output.Result(new JsonObject
        {
            ["data_root"] = Path.GetFullPath(root),
            ["demo_root"] = Path.GetFullPath(demo),
            ["sets"] = new JsonArray(sets.Select(s => (JsonNode)new JsonObject
            {
                ["name"] = s.Info.Name,
                ["kind"] = s.Info.Kind.ToString(),
                ["present"] = s.Present,
                ["paths"] = new JsonArray(s.FullPaths.Select(p => (JsonNode)p).ToArray()),
                ["description"] = s.Info.Description,
                ["source"] = s.Info.Source,
                ["licence"] = s.Info.Licence,
            }).ToArray()),
        }, () => string.Join("\n", sets.Select(s =>
            $"{(s.Present ? "present" : "MISSING"),-8} {s.Info.Name,-22} {s.Info.Description}\n" +
            $"         at {string.Join(", ", s.FullPaths)}" +
            (s.Present ? "" : $"\n         get it from {s.Info.Source} (licence: {s.Info.Licence})"))));
        return 0;
    }
}
