using System.Text.RegularExpressions;

namespace BabyPpo.Training.Data;

/// <summary>A dialogue minimal pair: <c>"*MOT: …"</c> and two <c>"*CHI: …"</c> replies, the real one first.</summary>
public sealed record DialoguePair(string Prompt, string Chosen, string Rejected);

/// <summary>One line of a CHILDES transcript: the speaker code without its tag ("MOT") and the words.</summary>
public sealed record Utterance(string Speaker, string Text);

/// <summary>
/// A PPO prompt: the caregiver's words without the <c>"*MOT:"</c> tag, the teacher answers the
/// rewards compare with, and the child's real reply (without <c>"*CHI:"</c>) when it is known.
/// </summary>
public sealed record PromptItem(string Utterance, IReadOnlyList<string> References, string? ChildReply = null);

/// <summary>A grammatical and an ungrammatical sentence; <see cref="Group"/> is the paradigm, UID or field.</summary>
public sealed record MinimalPair(string Good, string Bad, string? Group = null);

/// <summary>A lexical decision item: a real word and a pronounceable pseudo-word (either may be empty).</summary>
public sealed record LexicalItem(string Lexeme, string Wug);

/// <summary>
/// Readers for every data format the project uses. Each reads a whole file, checks it, and throws
/// an <see cref="InputException"/> naming the file, the line or record, and what was expected.
/// </summary>
public static class Datasets
{
    static readonly Regex SpeakerTag = new(@"^\*(?<speaker>[A-Za-z0-9_+-]+):\s*(?<text>.*)$", RegexOptions.Compiled);
    static readonly string[] DefaultGroupFields = ["UID", "field", "linguistics_term"];

    // ── Dialogue pairs (train.json, eval_words.json, eval_tokens.json) ──────────────────────────

    /// <summary>
    /// Dialogue pairs from a JSON array (.json) or JSON lines (.jsonl) of
    /// <c>{"prompt", "chosen", "rejected"}</c>, or from the CSV form (.csv) with the header
    /// <c>",pospair,negpair"</c> whose cells hold <c>"*MOT: …&lt;TAB&gt;*CHI: …"</c>.
    /// </summary>
    public static IReadOnlyList<DialoguePair> ReadDialoguePairs(string path) =>
        Path.GetExtension(path).ToLowerInvariant() switch
        {
            ".json" => RecordFiles.JsonArray(path).Select(ToDialoguePair).ToList(),
            ".jsonl" => RecordFiles.JsonLines(path).Select(ToDialoguePair).ToList(),
            ".csv" => ReadDialoguePairsCsv(path),
            _ => throw InputException.At(path, "expected a .json, .jsonl or .csv file of dialogue pairs"),
        };

    static DialoguePair ToDialoguePair(JsonRecord record) =>
        new(record.Text("prompt"), record.Text("chosen"), record.Text("rejected"));

    static List<DialoguePair> ReadDialoguePairsCsv(string path)
    {
        var rows = RecordFiles.Csv(path);
        var header = rows[0].Cells;
        int chosen = RecordFiles.Column(header, "pospair"), rejected = RecordFiles.Column(header, "negpair");
        if (chosen < 0 || rejected < 0)
            throw InputException.At(path, "expected the header \",pospair,negpair\"", rows[0].Line);
        var pairs = new List<DialoguePair>(rows.Count - 1);
        foreach (var (line, cells) in rows.Skip(1))
        {
            if (cells.Length != header.Length)
                throw InputException.At(path, $"{cells.Length} cells, expected {header.Length} like the header", line);
            var (prompt, good) = SplitTurns(path, line, "pospair", cells[chosen]);
            var (otherPrompt, bad) = SplitTurns(path, line, "negpair", cells[rejected]);
            if (otherPrompt != prompt)
                throw InputException.At(path, $"the pospair and negpair cells start with different utterances (\"{prompt}\" and \"{otherPrompt}\"); expected the same *MOT: part", line);
            pairs.Add(new DialoguePair(prompt, good, bad));
        }
        if (pairs.Count == 0) throw InputException.At(path, "no rows after the header");
        return pairs;
    }

    /// <summary>"*MOT: what is that ?\t*CHI: a dog ." → ("*MOT: what is that ?", "*CHI: a dog .").</summary>
    static (string Prompt, string Reply) SplitTurns(string path, long line, string column, string cell)
    {
        int tab = cell.IndexOf('\t');
        var prompt = tab < 0 ? "" : cell[..tab].Trim();
        var reply = tab < 0 ? "" : cell[(tab + 1)..].Trim();
        if (prompt.Length == 0 || reply.Length == 0)
            throw InputException.At(path, $"{column} cell \"{cell}\": expected \"*MOT: …<TAB>*CHI: …\"", line);
        return (prompt, reply);
    }

    // ── CHILDES transcripts as plain text ──────────────────────────────────────────────────────

    /// <summary>
    /// One utterance per line, <c>"*MOT: …"</c>, <c>"*CHI: …"</c> or any other <c>"*XXX:"</c> tag, as
    /// plain text or as a CHAT transcript (.cha): header lines (<c>@…</c>) and dependent tiers
    /// (<c>%mor:</c>, <c>%gra:</c>, …) are skipped, a line that starts with a tab continues the
    /// utterance before it, and media bullets (<c>·123_456·</c>, between U+0015 marks) are removed.
    /// Blank lines are skipped; any other line without a tag is an error.
    /// </summary>
    public static IReadOnlyList<Utterance> ReadChildesText(string path)
    {
        var lines = RecordFiles.Lines(path);
        var utterances = new List<Utterance>();
        bool inHeaderOrTier = false;                                   // what a tab-continued line continues
        for (int i = 0; i < lines.Length; i++)
        {
            var line = MediaBullet.Replace(lines[i], " ");
            if (string.IsNullOrWhiteSpace(line)) continue;
            if (line[0] is '@' or '%')
            {
                inHeaderOrTier = true;
                continue;
            }
            if (line[0] == '\t')
            {
                if (inHeaderOrTier) continue;
                if (utterances.Count == 0) throw InputException.At(path, "a continuation line (starting with a tab) before any utterance", i + 1);
                utterances[^1] = utterances[^1] with { Text = $"{utterances[^1].Text} {line.Trim()}" };
                continue;
            }
            inHeaderOrTier = false;
            var match = SpeakerTag.Match(line.Trim());
            if (!match.Success)
                throw InputException.At(path, $"\"{Shorten(line)}\": expected a speaker tag such as \"*MOT:\" or \"*CHI:\" at the start (or a CHAT @header or %tier)", i + 1);
            var text = match.Groups["text"].Value.Trim();
            if (text.Length == 0) throw InputException.At(path, "expected words after the speaker tag", i + 1);
            utterances.Add(new Utterance(match.Groups["speaker"].Value, text));
        }
        return utterances;
    }

    /// <summary>A CHAT media bullet: start_end milliseconds between two U+0015 marks.</summary>
    static readonly Regex MediaBullet = new("\u0015[^\u0015]*\u0015", RegexOptions.Compiled);

    // ── PPO prompt sets ────────────────────────────────────────────────────────────────────────

    /// <summary>
    /// A user's prompt set: JSON lines (or a .json array) of
    /// <c>{"prompt": "…", "references": ["…", …], "child": "…"}</c>. A leading speaker tag on the
    /// prompt or the child reply is stripped; references may be empty only when "child" is given.
    /// </summary>
    public static IReadOnlyList<PromptItem> ReadPromptSet(string path) =>
        RecordFiles.Json(path).Select(ToPromptItem).ToList();

    static PromptItem ToPromptItem(JsonRecord record)
    {
        var utterance = StripTag(record.Text("prompt"));
        if (utterance.Length == 0) throw record.Error("field \"prompt\" is empty, expected the caregiver's words");
        var references = record.Texts("references").Select(r => r.Trim()).ToList();
        if (references.Any(r => r.Length == 0)) throw record.Error("field \"references\" holds an empty answer");
        var child = record.OptionalText("child") is { } reply ? StripTag(reply) : null;
        if (references.Count == 0 && string.IsNullOrEmpty(child))
            throw record.Error("no \"references\" (expected a non-empty array of answers, or a \"child\" reply)");
        return new PromptItem(utterance, references, child);
    }

    /// <summary>
    /// The CHILDES prompt set: train.json (<c>"*MOT: …"</c> prompts, the real <c>"*CHI: …"</c>
    /// reply as chosen) aligned index by index with teacher_single.json (the same utterance without
    /// its tag, the teacher's answer as chosen). Both files must have the same length and agree on
    /// every utterance.
    /// </summary>
    public static IReadOnlyList<PromptItem> ReadChildesPromptSet(string trainJson, string teacherJson)
    {
        var train = RecordFiles.Json(trainJson);
        var teacher = RecordFiles.Json(teacherJson);
        if (train.Count != teacher.Count)
            throw InputException.At(teacherJson, $"{teacher.Count} records, but {trainJson} has {train.Count}; expected the two files aligned index by index");
        var items = new List<PromptItem>(train.Count);
        for (int i = 0; i < train.Count; i++)
        {
            var utterance = StripTag(train[i].Text("prompt"));
            var teacherUtterance = StripTag(teacher[i].Text("prompt"));
            if (utterance != teacherUtterance)
                throw teacher[i].Error($"utterance \"{teacherUtterance}\" does not match \"{utterance}\" in record {i + 1} of {trainJson}; expected the two files aligned index by index");
            items.Add(new PromptItem(utterance, [teacher[i].Text("chosen").Trim()], StripTag(train[i].Text("chosen"))));
        }
        return items;
    }

    /// <summary>
    /// The seed system's filter "mother utterances longer than 3 tokens": keeps the items whose
    /// utterance has more than <paramref name="minTokens"/> tokens, counted by
    /// <paramref name="countTokens"/> (default: whitespace-separated words).
    /// </summary>
    public static IReadOnlyList<PromptItem> KeepLongerThan(IReadOnlyList<PromptItem> items, int minTokens = 3, Func<string, int>? countTokens = null)
    {
        ArgumentNullException.ThrowIfNull(items);
        countTokens ??= CountWords;
        return items.Where(item => countTokens(item.Utterance) > minTokens).ToList();
    }

    /// <summary>
    /// Caregiver utterances to answer (the input of the teacher): the <c>"prompt"</c> field of a
    /// JSON array (.json) or JSON lines (.jsonl) of objects — a prompt set, train.json or
    /// teacher_single.json — or one utterance per line of a text file (.txt). A leading speaker tag
    /// (<c>"*MOT:"</c>) is stripped; blank lines are skipped; order and duplicates are kept.
    /// </summary>
    public static IReadOnlyList<string> ReadUtterances(string path)
    {
        if (Path.GetExtension(path).Equals(".txt", StringComparison.OrdinalIgnoreCase))
            return RecordFiles.Lines(path).Where(l => !string.IsNullOrWhiteSpace(l)).Select(StripTag).ToList();
        return RecordFiles.Json(path).Select(record =>
        {
            var utterance = StripTag(record.Text("prompt"));
            return utterance.Length > 0 ? utterance : throw record.Error("field \"prompt\" is empty, expected the caregiver's words");
        }).ToList();
    }

    static int CountWords(string text) => text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Length;

    /// <summary>"*MOT: what is that ?" → "what is that ?"; text without a tag is only trimmed.</summary>
    static string StripTag(string text)
    {
        var match = SpeakerTag.Match(text.Trim());
        return (match.Success ? match.Groups["text"].Value : text).Trim();
    }

    // ── Grammaticality minimal pairs ───────────────────────────────────────────────────────────

    /// <summary>
    /// One Zorro paradigm: pairs of lines, line 2k+1 grammatical and 2k+2 ungrammatical (the
    /// UnMasked order). The group is the file name without its extension.
    /// </summary>
    public static IReadOnlyList<MinimalPair> ReadZorroParadigm(string path)
    {
        var lines = RecordFiles.Lines(path).Reverse().SkipWhile(string.IsNullOrWhiteSpace).Reverse().ToArray();   // blank lines at the end are no sentences
        if (lines.Length == 0) throw InputException.At(path, "empty file; expected pairs of lines (grammatical first)");
        for (int i = 0; i < lines.Length; i++)
            if (string.IsNullOrWhiteSpace(lines[i]))
                throw InputException.At(path, "empty line; expected a sentence on every line (line 2k+1 grammatical, 2k+2 ungrammatical)", i + 1);
        if (lines.Length % 2 != 0)
            throw InputException.At(path, $"{lines.Length} lines: the last sentence has no ungrammatical partner; expected an even number of lines", lines.Length);
        var paradigm = Path.GetFileNameWithoutExtension(path);
        var pairs = new List<MinimalPair>(lines.Length / 2);
        for (int i = 0; i < lines.Length; i += 2)
            pairs.Add(new MinimalPair(lines[i].Trim(), lines[i + 1].Trim(), paradigm));
        return pairs;
    }

    /// <summary>Every paradigm (*.txt) of a Zorro folder, in file-name order; or one paradigm file.</summary>
    public static IReadOnlyList<MinimalPair> ReadZorro(string folderOrFile) =>
        File.Exists(folderOrFile) ? ReadZorroParadigm(folderOrFile)
        : FilesOf(folderOrFile, "*.txt", "the Zorro test suite (one .txt file per paradigm)").SelectMany(ReadZorroParadigm).ToList();

    /// <summary>
    /// BLiMP-style JSON lines with "sentence_good" and "sentence_bad". The group is
    /// <paramref name="groupField"/> (then required), or by default the first present of "UID",
    /// "field" and "linguistics_term", else null.
    /// </summary>
    public static IReadOnlyList<MinimalPair> ReadMinimalPairsJsonl(string path, string? groupField = null) =>
        ReadMinimalPairs([path], groupField);

    /// <summary>Every *.jsonl file of a folder (BLiMP ships one per paradigm), in file-name order.</summary>
    public static IReadOnlyList<MinimalPair> ReadMinimalPairsFolder(string folder, string? groupField = null) =>
        ReadMinimalPairs(FilesOf(folder, "*.jsonl", "minimal-pair JSON lines files"), groupField);

    /// <summary>Either every pair names its group or none does; the first pair that breaks this is the error.</summary>
    static List<MinimalPair> ReadMinimalPairs(IEnumerable<string> files, string? groupField)
    {
        var pairs = new List<MinimalPair>();
        foreach (var record in files.SelectMany(RecordFiles.Json))
        {
            var pair = new MinimalPair(record.Text("sentence_good"), record.Text("sentence_bad"), GroupOf(record, groupField));
            if (pairs.Count > 0 && (pairs[0].Group is null) != (pair.Group is null))
                throw record.Error(pair.Group is null
                    ? $"no group field ({string.Join(", ", DefaultGroupFields)}) although the pairs before name theirs; expected every pair or none to name its group"
                    : $"names its group ({pair.Group}) although the pairs before do not; expected every pair or none to name its group");
            pairs.Add(pair);
        }
        return pairs;
    }

    static string? GroupOf(JsonRecord record, string? groupField)
    {
        if (groupField is null) return DefaultGroupFields.Select(record.OptionalLabel).FirstOrDefault(group => group is not null);
        return record.OptionalLabel(groupField) ?? throw record.Error($"missing field \"{groupField}\" (the grouping field asked for)");
    }

    // ── Lexical decision ───────────────────────────────────────────────────────────────────────

    /// <summary>
    /// Lexical decision items, as on the hub (bbunzeck/lexical-decision): a CSV whose header has
    /// "lexeme" and "wug" columns (others ignored), or JSON lines (or a .json array) with "lexeme"
    /// and "wug". Empty words are kept (the evaluation counts them as wrong); a missing column is
    /// an error.
    /// </summary>
    public static IReadOnlyList<LexicalItem> ReadLexicalDecision(string path) =>
        Path.GetExtension(path).Equals(".csv", StringComparison.OrdinalIgnoreCase)
            ? ReadLexicalDecisionCsv(path)
            : RecordFiles.Json(path).Select(ToLexicalItem).ToList();

    static LexicalItem ToLexicalItem(JsonRecord record)
    {
        foreach (var field in new[] { "lexeme", "wug" })
            if (!record.Has(field)) throw record.Error($"missing field \"{field}\" (expected a string, possibly empty)");
        return new LexicalItem(record.OptionalText("lexeme") ?? "", record.OptionalText("wug") ?? "");
    }

    static List<LexicalItem> ReadLexicalDecisionCsv(string path)
    {
        var rows = RecordFiles.Csv(path);
        var header = rows[0].Cells;
        int lexeme = RecordFiles.Column(header, "lexeme"), wug = RecordFiles.Column(header, "wug");
        foreach (var (name, column) in new[] { ("lexeme", lexeme), ("wug", wug) })
            if (column < 0) throw InputException.At(path, $"no \"{name}\" column in the header; expected columns named lexeme and wug", rows[0].Line);
        var items = new List<LexicalItem>(rows.Count - 1);
        foreach (var (line, cells) in rows.Skip(1))
        {
            if (cells.Length <= Math.Max(lexeme, wug))
                throw InputException.At(path, $"{cells.Length} cells, expected {header.Length} like the header", line);
            items.Add(new LexicalItem(cells[lexeme].Trim(), cells[wug].Trim()));
        }
        if (items.Count == 0) throw InputException.At(path, "no rows after the header");
        return items;
    }

    // ── Shared helpers ─────────────────────────────────────────────────────────────────────────

    static IEnumerable<string> FilesOf(string folder, string pattern, string expected)
    {
        if (!Directory.Exists(folder)) throw InputException.At(folder, $"folder not found; expected {expected}");
        var files = Directory.GetFiles(folder, pattern).Order(StringComparer.Ordinal).ToList();
        if (files.Count == 0) throw InputException.At(folder, $"no {pattern} files; expected {expected}");
        return files;
    }

    static string Shorten(string text) => text.Length <= 60 ? text : text[..57] + "...";
}
