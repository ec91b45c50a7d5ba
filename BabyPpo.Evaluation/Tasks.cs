using System.Globalization;
using BabyPpo.Training;
using BabyPpo.Training.Data;
using BabyPpo.Training.Inference;

namespace BabyPpo.Evaluation;

/// <summary>
/// What an evaluation reads and how it names things. How sentences are scored (beginning-of-word
/// correction, batch size, prefix sharing) is the <see cref="Scorer"/>'s own <see cref="ScorerOptions"/>;
/// the report records both.
/// </summary>
public sealed record EvalOptions
{
    /// <summary>Lower-case every sentence before encoding it (the seed system lower-cases Zorro; its files already are).</summary>
    public bool LowerCase { get; init; }

    /// <summary>
    /// Evaluate at most this many items: the first N of each paradigm (group) when the items have
    /// groups, else the first N. Null: all items.
    /// </summary>
    public int? Limit { get; init; }

    /// <summary>Minimal pairs from JSON lines: the field to group by; null takes the first present of UID, field, linguistics_term.</summary>
    public string? GroupField { get; init; }

    /// <summary>The model's name in the report (reports are paired and tabulated by it).</summary>
    public string ModelName { get; init; } = "model";
}

/// <summary>Progress of a long evaluation: sentences scored so far, of all the task scores.</summary>
public sealed record EvalProgress(string Task, int SentencesDone, int Sentences);

/// <summary>
/// The four evaluation tasks of the seed system, as functions from a <see cref="Scorer"/> and a data
/// file to an <see cref="EvalReport"/> with per-item outcomes (so that two models can be compared).
/// A sentence's score is its summed log-probability after the first token (BOS), natural log.
/// Each task scores all its sentences in one batched scorer call; ties count as wrong.
/// </summary>
public static class Tasks
{
    /// <summary>The task names the command line and the reports use.</summary>
    public static readonly IReadOnlyList<string> Names = ["zorro", "pairs", "dialogue", "lexical"];

    /// <summary>Runs the task named <paramref name="task"/> (one of <see cref="Names"/>) on <paramref name="path"/>.</summary>
    public static EvalReport Run(string task, Scorer scorer, string path, EvalOptions? options = null,
        IProgress<EvalProgress>? progress = null, CancellationToken cancellationToken = default) => task switch
        {
            "zorro" => Zorro(scorer, path, options, progress, cancellationToken),
            "pairs" => MinimalPairs(scorer, path, options, progress, cancellationToken),
            "dialogue" => Dialogue(scorer, path, options, progress, cancellationToken),
            "lexical" => LexicalDecision(scorer, path, options, progress, cancellationToken),
            _ => throw new InputException($"unknown task '{task}'; expected one of {string.Join(", ", Names)}"),
        };

    /// <summary>
    /// Zorro (Huebner et al. 2021): a folder of paradigm files, pairs of lines, grammatical first. A
    /// pair is correct when the grammatical sentence scores higher. Per-paradigm accuracies and their
    /// macro average; item ids "paradigm:k", k counting the paradigm's pairs from 0.
    /// </summary>
    public static EvalReport Zorro(Scorer scorer, string folder, EvalOptions? options = null,
        IProgress<EvalProgress>? progress = null, CancellationToken cancellationToken = default) =>
        ScoreMinimalPairs("zorro", scorer, folder, Datasets.ReadZorro(folder), options ?? new(), progress, cancellationToken);

    /// <summary>
    /// Minimal pairs in BLiMP's format: a JSON lines file (or a folder of them) with "sentence_good" and
    /// "sentence_bad", grouped by <see cref="EvalOptions.GroupField"/> (or UID / field / linguistics_term
    /// when present). Item ids "group:k" (k counting the group's pairs from 0), or the pair's index.
    /// </summary>
    public static EvalReport MinimalPairs(Scorer scorer, string path, EvalOptions? options = null,
        IProgress<EvalProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        options ??= new();
        var pairs = Directory.Exists(path)
            ? Datasets.ReadMinimalPairsFolder(path, options.GroupField)
            : Datasets.ReadMinimalPairsJsonl(path, options.GroupField);
        return ScoreMinimalPairs("pairs", scorer, path, pairs, options, progress, cancellationToken);
    }

    /// <summary>
    /// Dialogue minimal pairs: correct when score(prompt + " " + chosen) > score(prompt + " " + rejected).
    /// The two texts share the prompt, which the scorer computes once. Item ids are the pair's index.
    /// </summary>
    public static EvalReport Dialogue(Scorer scorer, string path, EvalOptions? options = null,
        IProgress<EvalProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        options ??= new();
        var pairs = Datasets.ReadDialoguePairs(path)
            .Select(p => new MinimalPair($"{p.Prompt} {p.Chosen}", $"{p.Prompt} {p.Rejected}")).ToList();
        return ScoreMinimalPairs("dialogue", scorer, path, pairs, options, progress, cancellationToken);
    }

    /// <summary>
    /// Lexical decision: correct when score(lexeme) > score(wug). A word that leaves no token to score
    /// (empty, or only special tokens) makes its row unscorable: the row is reported (NaN score,
    /// <see cref="EvalReport.Unscorable"/>) and counts as wrong, so the denominator is every row.
    /// Item ids are the row's index.
    /// </summary>
    public static EvalReport LexicalDecision(Scorer scorer, string path, EvalOptions? options = null,
        IProgress<EvalProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        options ??= new();
        var rows = Limit(Datasets.ReadLexicalDecision(path), options.Limit, _ => null);
        var tokenizer = scorer.Tokenizer;
        var words = rows.SelectMany(r => new[] { r.Item.Lexeme, r.Item.Wug }).Select(w => tokenizer.Encode(Prepare(w, options))).ToList();
        var scorable = words.Select((ids, i) => (ids, i)).Where(x => Scorable(x.ids, tokenizer)).ToList();
        var scores = Enumerable.Repeat(double.NaN, words.Count).ToArray();
        var relay = Relay("lexical", scorable.Count, progress);
        var scored = scorer.Score(scorable.Select(x => x.ids).ToList(), null, relay, cancellationToken);
        for (int k = 0; k < scorable.Count; k++) scores[scorable[k].i] = scored[k].Sum;

        var items = new List<ItemResult>(rows.Count);
        int unscorable = 0;
        for (int r = 0; r < rows.Count; r++)
        {
            double lexeme = scores[2 * r], wug = scores[2 * r + 1];
            if (double.IsNaN(lexeme) || double.IsNaN(wug)) unscorable++;
            items.Add(new ItemResult(rows[r].Id, lexeme > wug, lexeme, wug));
        }
        return Reports.Build("lexical", options.ModelName, path, items, Describe(scorer, options), unscorable);
    }

    /// <summary>Whether a sentence's encoding leaves a token after the first that is not a special token.</summary>
    static bool Scorable(int[] ids, Training.Text.Tokenizer tokenizer) => ids.Skip(1).Any(id => !tokenizer.IsSpecial(id));

    static EvalReport ScoreMinimalPairs(string task, Scorer scorer, string dataset, IReadOnlyList<MinimalPair> pairs,
        EvalOptions options, IProgress<EvalProgress>? progress, CancellationToken cancellationToken)
    {
        var kept = Limit(pairs, options.Limit, p => p.Group);
        var texts = kept.Select(k => (Prepare(k.Item.Good, options), Prepare(k.Item.Bad, options))).ToList();
        var scores = scorer.ScoreTextPairs(texts, Relay(task, 2 * texts.Count, progress), cancellationToken);
        var items = kept.Select((k, i) => new ItemResult(k.Id, scores[i].A > scores[i].B, scores[i].A, scores[i].B, k.Item.Group)).ToList();
        return Reports.Build(task, options.ModelName, dataset, items, Describe(scorer, options));
    }

    /// <summary>
    /// The items an evaluation keeps (the first <paramref name="limit"/> of each group, or of all
    /// when ungrouped) with their ids: "group:k" with k counting within the group, or the index.
    /// </summary>
    static List<(string Id, T Item)> Limit<T>(IReadOnlyList<T> items, int? limit, Func<T, string?> groupOf)
    {
        if (limit is < 1) throw new InputException($"limit must be at least 1, got {limit}");
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        var kept = new List<(string, T)>();
        for (int i = 0; i < items.Count; i++)
        {
            string? group = groupOf(items[i]);
            int k = i;
            if (group is not null)
            {
                k = seen.GetValueOrDefault(group);
                seen[group] = k + 1;
            }
            if (limit is int n && k >= n) continue;
            kept.Add((group is null ? k.ToString(CultureInfo.InvariantCulture) : $"{group}:{k}", items[i]));
        }
        if (kept.Count == 0) throw new InputException("no items to evaluate");
        return kept;
    }

    static string Prepare(string text, EvalOptions options) => options.LowerCase ? text.ToLowerInvariant() : text;

    static Dictionary<string, string> Describe(Scorer scorer, EvalOptions options)
    {
        var described = new Dictionary<string, string>
        {
            ["bow_correction"] = Flag(scorer.AppliesBowCorrection),
            ["lowercase"] = Flag(options.LowerCase),
            ["limit"] = options.Limit?.ToString(CultureInfo.InvariantCulture) ?? "none",
            ["max_batch_tokens"] = scorer.Options.MaxBatchTokens.ToString(CultureInfo.InvariantCulture),
            ["score"] = "sum of ln p(token | prefix) after the first token",
        };
        if (options.GroupField is not null) described["group_field"] = options.GroupField;
        return described;
    }

    static string Flag(bool value) => value ? "true" : "false";

    /// <summary>Turns the scorer's count of scored sentences into <see cref="EvalProgress"/>, synchronously.</summary>
    static IProgress<int>? Relay(string task, int total, IProgress<EvalProgress>? progress) =>
        progress is null ? null : new Forward(done => progress.Report(new EvalProgress(task, done, total)));

    sealed class Forward(Action<int> report) : IProgress<int>
    {
        public void Report(int value) => report(value);
    }
}
