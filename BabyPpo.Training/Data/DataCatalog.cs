namespace BabyPpo.Training.Data;

/// <summary>What a data set is for, which decides the reader.</summary>
public enum DataKind
{
    /// <summary>PPO prompts with references (<see cref="Datasets.ReadPromptSet"/>, <see cref="Datasets.ReadChildesPromptSet"/>).</summary>
    PromptSet,
    /// <summary>Dialogue minimal pairs (<see cref="Datasets.ReadDialoguePairs"/>).</summary>
    DialoguePairs,
    /// <summary>A folder of Zorro paradigms (<see cref="Datasets.ReadZorro"/>).</summary>
    Zorro,
    /// <summary>A folder of BLiMP-style JSON lines (<see cref="Datasets.ReadMinimalPairsFolder"/>).</summary>
    MinimalPairs,
    /// <summary>Words against pseudo-words (<see cref="Datasets.ReadLexicalDecision"/>).</summary>
    LexicalDecision,
}

/// <summary>
/// A known data set: its id, kind, one-line description, the path(s) it is expected at, where a
/// user with internet access can fetch it, and its licence. <see cref="RelativePaths"/> are
/// relative to the data root, or to the demo folder when <see cref="IsDemo"/> (the team's own
/// sets, committed under data/demo). A path without an extension is a folder.
/// </summary>
public sealed record DataSetInfo(string Name, DataKind Kind, string Description, IReadOnlyList<string> RelativePaths, string Source, string Licence)
{
    /// <summary>True for the sets in the repository's data/demo folder.</summary>
    public bool IsDemo { get; init; }
}

/// <summary>A known data set as found on this machine: whether all its files are there, and where.</summary>
public sealed record DataSetStatus(DataSetInfo Info, bool Present, IReadOnlyList<string> FullPaths);

/// <summary>
/// The catalogue of the data sets the project knows, and where each one is on this machine. The
/// public sets are never copied into the repository: users put them under a data root (e.g. the
/// repository's ignored data/ folder, or ../shared/data in tests); only the demo sets are committed.
/// </summary>
public static class DataCatalog
{
    const string ChildesSource = "the communicative-baby DPO work of the CLAUSE group, Bielefeld University (github.com/clause-bielefeld), built from TalkBank CHILDES (childes.talkbank.org)";
    const string ChildesLicence = "CHILDES data terms, CC BY-NC-SA 3.0: local research use, do not redistribute";
    const string DemoLicence = "written by the BabyPpo team; same licence as the repository";

    /// <summary>Every data set the project knows, demo sets first.</summary>
    public static IReadOnlyList<DataSetInfo> Known { get; } =
    [
        new("demo-prompts", DataKind.PromptSet,
            "300+ short caregiver utterances with child-like reference answers, written by the team (prompt-set JSONL)",
            ["prompts.jsonl"], "the repository itself (data/demo)", DemoLicence) { IsDemo = true },
        new("lexical-decision-demo", DataKind.LexicalDecision,
            "about 120 common words against pronounceable pseudo-words, written by the team (CSV lexeme,wug)",
            ["lexical-decision.csv"], "the repository itself (data/demo)", DemoLicence) { IsDemo = true },
        new("dialogue-train", DataKind.PromptSet,
            "18,000 CHILDES mother utterances with the child's real reply (train.json) and one teacher answer each (teacher_single.json)",
            ["dialogue/train.json", "dialogue/teacher_single.json"], ChildesSource, ChildesLicence),
        new("dialogue-eval-words", DataKind.DialoguePairs,
            "7,548 CHILDES dialogue minimal pairs, the rejected reply length-matched in words",
            ["dialogue/eval_words.json"], ChildesSource, ChildesLicence),
        new("dialogue-eval-tokens", DataKind.DialoguePairs,
            "7,520 CHILDES dialogue minimal pairs, the rejected reply length-matched in subword tokens",
            ["dialogue/eval_tokens.json"], ChildesSource, ChildesLicence),
        new("zorro", DataKind.Zorro,
            "Zorro grammaticality minimal pairs in child-directed vocabulary: 23 paradigms × 2,000 pairs, grammatical line first",
            ["zorro"], "github.com/phueb/UnMasked (test_suites/zorro, this line order) or github.com/phueb/Zorro (sentences/, ungrammatical first: swap)",
            "MIT (c) Philip Huebner"),
        new("lexical-decision", DataKind.LexicalDecision,
            "4,311 real words against pseudo-words (wugs); save the hub's table as CSV or JSON lines with lexeme and wug",
            ["lexical-decision/lexical-decision.csv"], "huggingface.co/datasets/bbunzeck/lexical-decision",
            "see the dataset card on the hub"),
        new("teacher-10", DataKind.PromptSet,
            "the 10-answer teacher set: each CHILDES mother utterance with ten teacher answers (prompt-set JSONL: prompt, references, child)",
            ["dialogue/teacher_10.jsonl"], ChildesSource + "; not distributed with the offline data", ChildesLicence),
        new("blimp", DataKind.MinimalPairs,
            "optional generic minimal pairs: BLiMP-style JSON lines (sentence_good, sentence_bad, UID), one file per paradigm",
            ["blimp"], "github.com/alexwarstadt/blimp, or the BabyLM 2025 evaluation data on OSF (osf.io)",
            "CC BY 4.0 (BLiMP); see the BabyLM evaluation data's own terms"),
    ];

    /// <summary>
    /// Every known set with where it would be and whether it is there. Never throws for a missing
    /// set. <paramref name="demoRoot"/> defaults to <c>&lt;dataRoot&gt;/demo</c>.
    /// </summary>
    public static IReadOnlyList<DataSetStatus> Resolve(string dataRoot, string? demoRoot = null) =>
        Known.Select(info => StatusOf(info, dataRoot, demoRoot)).ToList();

    /// <summary>
    /// One known set, which must be present. An unknown name, or a set that is not there, is an
    /// <see cref="InputException"/> (listing the known names, resp. saying where to get it).
    /// </summary>
    public static DataSetStatus Find(string name, string dataRoot, string? demoRoot = null)
    {
        var info = Known.FirstOrDefault(known => known.Name == name)
            ?? throw new InputException($"unknown data set \"{name}\"; expected one of: {string.Join(", ", Known.Select(k => k.Name))}");
        var status = StatusOf(info, dataRoot, demoRoot);
        if (status.Present) return status;
        var missing = status.FullPaths.First(path => !IsThere(path, info.Kind));
        throw InputException.At(missing, $"data set \"{name}\" is not here; get it from {info.Source} and put it at this path (licence: {info.Licence})");
    }

    /// <summary>
    /// The prompts of a known prompt set ("demo-prompts", "dialogue-train", "teacher-10") or of a
    /// user's prompt-set JSONL file given by its path.
    /// </summary>
    public static IReadOnlyList<PromptItem> LoadPromptSet(string name, string dataRoot, string? demoRoot = null)
    {
        if (Known.Any(known => known.Name == name)) return LoadKnownPromptSet(Find(name, dataRoot, demoRoot));
        if (File.Exists(name) || LooksLikePath(name)) return Datasets.ReadPromptSet(name);
        throw new InputException($"unknown prompt set \"{name}\"; expected one of {string.Join(", ", PromptSetNames)} or the path of a prompt-set JSONL file");
    }

    static IReadOnlyList<PromptItem> LoadKnownPromptSet(DataSetStatus status)
    {
        if (status.Info.Kind != DataKind.PromptSet)
            throw new InputException($"data set \"{status.Info.Name}\" is a {status.Info.Kind} set, not a prompt set; expected one of {string.Join(", ", PromptSetNames)} or the path of a prompt-set JSONL file");
        return status.Info.Name == "dialogue-train"
            ? Datasets.ReadChildesPromptSet(status.FullPaths[0], status.FullPaths[1])
            : Datasets.ReadPromptSet(status.FullPaths[0]);
    }

    static IEnumerable<string> PromptSetNames => Known.Where(known => known.Kind == DataKind.PromptSet).Select(known => known.Name);

    static DataSetStatus StatusOf(DataSetInfo info, string dataRoot, string? demoRoot)
    {
        if (string.IsNullOrWhiteSpace(dataRoot)) throw new InputException("no data root given");
        var root = info.IsDemo ? demoRoot ?? Path.Combine(dataRoot, "demo") : dataRoot;
        var paths = info.RelativePaths.Select(relative => Path.GetFullPath(Path.Combine(root, relative))).ToList();
        return new DataSetStatus(info, paths.All(path => IsThere(path, info.Kind)), paths);
    }

    /// <summary>A file that exists, or a folder holding at least one file the set's reader takes.</summary>
    static bool IsThere(string path, DataKind kind) =>
        Path.HasExtension(path)
            ? File.Exists(path)
            : Directory.Exists(path) && Directory.EnumerateFiles(path, kind == DataKind.Zorro ? "*.txt" : "*.jsonl").Any();

    static bool LooksLikePath(string name) =>
        name.Contains('/') || name.Contains('\\') || Path.HasExtension(name);
}
