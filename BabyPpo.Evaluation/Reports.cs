using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using BabyPpo.Training;

namespace BabyPpo.Evaluation;

/// <summary>One group's (paradigm's) share of a report.</summary>
public sealed record GroupResult(int N, double Accuracy);

/// <summary>
/// One scored item. <c>Id</c> identifies it across models ("paradigm:index", a dataset index), so that
/// reports of two models can be paired item by item. Scores may be non-finite for unscorable items.
/// </summary>
public sealed record ItemResult(string Id, bool Correct, double ScoreGood, double ScoreBad, string? Group = null);

/// <summary>
/// The evaluation of one model on one task. <c>Accuracy</c> is over all N items and <c>Ci95</c> its
/// interval; when the items have groups (Zorro's paradigms) <c>MacroAccuracy</c> is the mean of the
/// group accuracies and <c>MacroCi95</c> its interval. <c>Unscorable</c> counts items that could not
/// be scored; they are among the N items, counted as wrong.
/// </summary>
public sealed record EvalReport(
    string Task,
    string Model,
    string Dataset,
    int N,
    double Accuracy,
    Interval Ci95,
    double? MacroAccuracy,
    IReadOnlyDictionary<string, GroupResult> PerParadigm,
    IReadOnlyList<ItemResult> Items,
    IReadOnlyDictionary<string, string> Options,
    int Unscorable = 0,
    DateTimeOffset? CreatedAt = null,
    Interval? MacroCi95 = null)
{
    /// <summary>The number a paper quotes: the macro average when there are groups, else the accuracy.</summary>
    public double Headline => MacroAccuracy ?? Accuracy;

    /// <summary>The interval of <see cref="Headline"/>.</summary>
    public Interval HeadlineCi95 => MacroAccuracy is null ? Ci95 : MacroCi95 ?? Ci95;
}

/// <summary>Builds evaluation reports and writes them as JSON (machines), CSV (per paradigm) and Markdown (papers).</summary>
public static class Reports
{
    /// <summary>
    /// A report from scored items: accuracy with its bootstrap interval, or, when the items carry groups
    /// (all of them must), per-group accuracies (ordinal name order) and their macro average with its
    /// interval. Stamped with the current time.
    /// </summary>
    public static EvalReport Build(string task, string model, string dataset, IReadOnlyList<ItemResult> items,
        IReadOnlyDictionary<string, string>? options = null, int unscorable = 0)
    {
        if (items.Count == 0) throw new ArgumentException("a report needs at least one item", nameof(items));
        var outcomes = items.Select(i => i.Correct).ToArray();
        int wrong = outcomes.Count(c => !c);
        if (unscorable < 0 || unscorable > wrong)
            throw new ArgumentOutOfRangeException(nameof(unscorable), unscorable, $"unscorable items count as wrong, and only {wrong} of {items.Count} are");
        int grouped = items.Count(i => i.Group is not null);
        if (grouped != 0 && grouped != items.Count)
            throw new ArgumentException($"either every item has a group or none does: {grouped} of {items.Count} have one", nameof(items));

        var perGroup = new SortedDictionary<string, GroupResult>(StringComparer.Ordinal);
        double? macro = null;
        Interval? macroCi = null;
        if (grouped > 0)
        {
            var groups = items.Select(i => i.Group!).ToArray();
            foreach (var (group, n, correct) in Statistics.GroupCounts(outcomes, groups))
                perGroup[group] = new GroupResult(n, (double)correct / n);
            macro = perGroup.Values.Average(g => g.Accuracy);
            macroCi = Statistics.BootstrapMacroCi95(outcomes, groups);
        }
        return new EvalReport(task, model, dataset, items.Count, Statistics.Accuracy(outcomes), Statistics.BootstrapCi95(outcomes), macro, perGroup,
            items.ToArray(), Sorted(options ?? new Dictionary<string, string>()), unscorable, DateTimeOffset.UtcNow, macroCi);
    }

    // ---------------------------------------------------------------- JSON

    static readonly JsonWriterOptions Indented = new() { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
    static readonly JsonWriterOptions Compact = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>
    /// The report as JSON with snake_case keys; items, when included, one per line. Non-finite scores
    /// are written as the strings "NaN", "Infinity", "-Infinity" (JSON has no such numbers).
    /// </summary>
    public static string ToJson(EvalReport report, bool includeItems = true) => WriteJson(w =>
    {
        w.WriteStartObject();
        w.WriteString("task", report.Task);
        w.WriteString("model", report.Model);
        w.WriteString("dataset", report.Dataset);
        if (report.CreatedAt is { } created) w.WriteString("created_at", created.ToString("o", CultureInfo.InvariantCulture));
        w.WriteNumber("n", report.N);
        w.WriteNumber("accuracy", report.Accuracy);
        WriteInterval(w, "ci95", report.Ci95);
        if (report.MacroAccuracy is { } macro) w.WriteNumber("macro_accuracy", macro);
        else w.WriteNull("macro_accuracy");
        if (report.MacroAccuracy is not null && report.MacroCi95 is { } macroCi) WriteInterval(w, "macro_ci95", macroCi);
        w.WriteNumber("unscorable", report.Unscorable);
        w.WriteStartObject("options");
        foreach (var (key, value) in report.Options) w.WriteString(key, value);
        w.WriteEndObject();
        w.WriteStartObject("per_paradigm");
        foreach (var (name, group) in report.PerParadigm)
        {
            w.WriteStartObject(name);
            w.WriteNumber("n", group.N);
            w.WriteNumber("accuracy", group.Accuracy);
            w.WriteEndObject();
        }
        w.WriteEndObject();
        if (includeItems)
        {
            w.WriteStartArray("items");
            foreach (var item in report.Items) w.WriteRawValue("\n    " + ItemJson(item), skipInputValidation: true);   // one item a line
            w.WriteEndArray();
        }
        w.WriteEndObject();
    });

    static string ItemJson(ItemResult item) => WriteJson(w =>
    {
        w.WriteStartObject();
        w.WriteString("id", item.Id);
        w.WriteBoolean("correct", item.Correct);
        WriteScore(w, "score_good", item.ScoreGood);
        WriteScore(w, "score_bad", item.ScoreBad);
        if (item.Group is not null) w.WriteString("group", item.Group);
        w.WriteEndObject();
    }, Compact);

    static void WriteScore(Utf8JsonWriter w, string name, double value)
    {
        if (double.IsFinite(value)) w.WriteNumber(name, value);
        else w.WriteString(name, value.ToString(CultureInfo.InvariantCulture));
    }

    static void WriteInterval(Utf8JsonWriter w, string name, Interval interval)
    {
        w.WriteStartArray(name);
        w.WriteNumberValue(interval.Low);
        w.WriteNumberValue(interval.High);
        w.WriteEndArray();
    }

    static string WriteJson(Action<Utf8JsonWriter> write, JsonWriterOptions? options = null)
    {
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream, options ?? Indented)) write(writer);
        return Encoding.UTF8.GetString(stream.ToArray());
    }

    /// <summary>
    /// Reads a report written by <see cref="ToJson"/>. A report saved without items reads back with
    /// none (it can be shown, not compared). Errors name <paramref name="source"/> and what is wrong.
    /// </summary>
    public static EvalReport FromJson(string json, string source = "report.json")
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json);
        }
        catch (JsonException e)
        {
            throw InputException.At(source, $"not valid JSON: {e.Message}", e.LineNumber + 1);
        }
        using (document)
        {
            var root = new Reader(document.RootElement, source, "");
            int n = root.Int("n");
            var items = root.Has("items") ? root.Elements("items").Select(ReadItem).ToArray() : [];
            if (items.Length != 0 && items.Length != n)
                throw InputException.At(source, $"\"n\" is {n} but there are {items.Length} items");
            var perParadigm = new SortedDictionary<string, GroupResult>(StringComparer.Ordinal);
            if (root.Has("per_paradigm"))
            {
                foreach (var (name, group) in root.Properties("per_paradigm"))
                    perParadigm[name] = new GroupResult(group.Int("n"), group.Number("accuracy"));
            }
            var options = new SortedDictionary<string, string>(StringComparer.Ordinal);
            if (root.Has("options"))
            {
                foreach (var (key, value) in root.Properties("options"))
                    options[key] = value.Element.ValueKind == JsonValueKind.String ? value.Element.GetString()! : value.Element.GetRawText();
            }
            Interval ReadInterval(string key)
            {
                var bounds = root.Elements(key).ToArray();
                if (bounds.Length != 2) throw InputException.At(source, $"\"{key}\" must be [low, high], found {bounds.Length} numbers");
                return new Interval(bounds[0].Number(), bounds[1].Number());
            }
            return new EvalReport(
                Task: root.Text("task"),
                Model: root.Text("model"),
                Dataset: root.Text("dataset"),
                N: n,
                Accuracy: root.Number("accuracy"),
                Ci95: ReadInterval("ci95"),
                MacroAccuracy: root.OptionalNumber("macro_accuracy"),
                PerParadigm: perParadigm,
                Items: items,
                Options: options,
                Unscorable: root.Has("unscorable") ? root.Int("unscorable") : 0,
                CreatedAt: root.Has("created_at") ? root.Time("created_at") : null,
                MacroCi95: root.Has("macro_ci95") ? ReadInterval("macro_ci95") : null);
        }
    }

    static ItemResult ReadItem(Reader item) => new(
        item.Text("id"), item.Bool("correct"), item.Score("score_good"), item.Score("score_bad"),
        item.Has("group") ? item.Text("group") : null);

    /// <summary>Reads a report file; a missing or malformed file is an <see cref="InputException"/>.</summary>
    public static EvalReport Load(string path)
    {
        string json;
        try
        {
            json = File.ReadAllText(path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw InputException.At(path, "no such report file");
        }
        return FromJson(json, path);
    }

    /// <summary>Writes the report (with items) to a temporary file beside <paramref name="path"/>, then moves it into place.</summary>
    public static void Save(EvalReport report, string path)
    {
        string full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        string temp = $"{full}.{Guid.NewGuid():N}.tmp";
        try
        {
            File.WriteAllText(temp, ToJson(report) + "\n");
            File.Move(temp, full, overwrite: true);
        }
        finally
        {
            File.Delete(temp);   // only still there when writing or moving failed
        }
    }

    /// <summary>
    /// Walks the parsed report with errors that say where: "zorro.json: items[3]: missing \"id\"".
    /// <c>Path</c> is "" at the root, else like items[3].score_good.
    /// </summary>
    readonly record struct Reader(JsonElement Element, string Source, string Path)
    {
        public bool Has(string key) =>
            AsObject().TryGetProperty(key, out var value) && value.ValueKind != JsonValueKind.Null;

        public string Text(string key) => Get(key).Text();
        public double Number(string key) => Get(key).Number();
        public int Int(string key) => Get(key).Int();
        public bool Bool(string key) => Get(key).Bool();
        public double? OptionalNumber(string key) => Has(key) ? Number(key) : null;

        public DateTimeOffset Time(string key)
        {
            var value = Get(key);
            if (!DateTimeOffset.TryParse(value.Text(), CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out var time))
                throw value.Error("must be an ISO 8601 time");
            return time;
        }

        /// <summary>A score: a number, "NaN", "Infinity", "-Infinity", or null (NaN).</summary>
        public double Score(string key)
        {
            if (!AsObject().TryGetProperty(key, out var value)) throw Missing(key);
            var score = Child(value, key);
            return value.ValueKind switch
            {
                JsonValueKind.Null => double.NaN,
                JsonValueKind.String => value.GetString() switch
                {
                    "NaN" => double.NaN,
                    "Infinity" => double.PositiveInfinity,
                    "-Infinity" => double.NegativeInfinity,
                    _ => throw score.Error("must be a number"),
                },
                _ => score.Number(),
            };
        }

        public IEnumerable<Reader> Elements(string key)
        {
            var value = Get(key);
            if (value.Element.ValueKind != JsonValueKind.Array) throw value.Error("must be an array");
            return value.Element.EnumerateArray().Select((e, i) => value with { Element = e, Path = $"{value.Path}[{i}]" }).ToList();
        }

        public IEnumerable<(string Name, Reader Value)> Properties(string key)
        {
            var value = Get(key);
            return value.AsObject().EnumerateObject().Select(p => (p.Name, value.Child(p.Value, p.Name))).ToList();
        }

        public double Number() =>
            Element.ValueKind == JsonValueKind.Number && Element.TryGetDouble(out double v) ? v : throw Error("must be a number");

        string Text() => Element.ValueKind == JsonValueKind.String ? Element.GetString()! : throw Error("must be a string");
        bool Bool() => Element.ValueKind is JsonValueKind.True or JsonValueKind.False ? Element.GetBoolean() : throw Error("must be true or false");
        int Int() => Element.ValueKind == JsonValueKind.Number && Element.TryGetInt32(out int v) ? v : throw Error("must be an integer");

        JsonElement AsObject() => Element.ValueKind == JsonValueKind.Object ? Element : throw Error("must be a JSON object");

        Reader Get(string key) =>
            AsObject().TryGetProperty(key, out var value) && value.ValueKind != JsonValueKind.Null ? Child(value, key) : throw Missing(key);

        Reader Child(JsonElement value, string key) => new(value, Source, Path == "" ? key : $"{Path}.{key}");

        InputException Missing(string key) => InputException.At(Source, Path == "" ? $"missing \"{key}\"" : $"{Path}: missing \"{key}\"");

        InputException Error(string problem) => InputException.At(Source, Path == "" ? $"the report {problem}" : $"\"{Path}\" {problem}");
    }

    // ---------------------------------------------------------------- CSV and Markdown

    /// <summary>
    /// "paradigm,n,accuracy", one row per group in name order, then "ALL" with every item (the plain
    /// accuracy, not the macro average). Invariant culture, accuracies as fractions with 4 decimals.
    /// </summary>
    public static string ToCsv(EvalReport report)
    {
        var csv = new StringBuilder("paradigm,n,accuracy\n");
        foreach (var (name, group) in report.PerParadigm)
            csv.Append(CultureInfo.InvariantCulture, $"{CsvField(name)},{group.N},{group.Accuracy:F4}\n");
        csv.Append(CultureInfo.InvariantCulture, $"ALL,{report.N},{report.Accuracy:F4}\n");
        return csv.ToString();
    }

    static string CsvField(string value) =>
        value.IndexOfAny([',', '"', '\n', '\r']) < 0 ? value : $"\"{value.Replace("\"", "\"\"")}\"";

    /// <summary>
    /// A Markdown table for papers: one row per model, one column per task (both in order of first
    /// appearance), cells "accuracy [low, high]" in percent with one decimal — the headline number
    /// (macro average for grouped tasks) and its 95% bootstrap interval. A missing pair is "–".
    /// </summary>
    public static string ToMarkdown(IReadOnlyList<EvalReport> reports)
    {
        var models = reports.Select(r => r.Model).Distinct().ToList();
        var tasks = reports.Select(r => r.Task).Distinct().ToList();
        var cells = new Dictionary<(string Model, string Task), EvalReport>();
        foreach (var report in reports)
        {
            if (!cells.TryAdd((report.Model, report.Task), report))
                throw new ArgumentException($"two reports for model '{report.Model}' on task '{report.Task}'", nameof(reports));
        }
        var md = new StringBuilder();
        md.Append("| Model |").AppendJoin("", tasks.Select(t => $" {MarkdownText(t)} |")).Append('\n');
        md.Append("|---|").AppendJoin("", tasks.Select(_ => "---|")).Append('\n');
        foreach (var model in models)
        {
            md.Append($"| {MarkdownText(model)} |");
            foreach (var task in tasks)
                md.Append(cells.TryGetValue((model, task), out var r) ? $" {Percent(r.Headline)} [{Percent(r.HeadlineCi95.Low)}, {Percent(r.HeadlineCi95.High)}] |" : " – |");
            md.Append('\n');
        }
        md.Append("\nAccuracy in percent [95% bootstrap interval]; tasks with groups show the macro average over groups.\n");
        return md.ToString();
    }

    static string Percent(double fraction) => (100 * fraction).ToString("F1", CultureInfo.InvariantCulture);

    static string MarkdownText(string text) => text.Replace("|", "\\|").ReplaceLineEndings(" ");

    // ---------------------------------------------------------------- comparisons

    /// <summary>
    /// Pairs the items of two reports of the same task on the same data set by Id (in A's order) and
    /// compares their accuracies over all items (<see cref="Statistics.Compare"/>). Reports of other
    /// data sets (by file or folder name: paths differ between machines), without items, with
    /// duplicate Ids or with different item sets cannot be compared: <see cref="InputException"/>.
    /// </summary>
    public static Comparison Compare(EvalReport a, EvalReport b)
    {
        if (a.Task != b.Task)
            throw new InputException($"cannot compare a '{a.Task}' report ({a.Model}) with a '{b.Task}' report ({b.Model})");
        string DataName(EvalReport r) => Path.GetFileName(Path.TrimEndingDirectorySeparator(r.Dataset));
        if (a.Dataset.Length > 0 && b.Dataset.Length > 0 && DataName(a) != DataName(b))
            throw new InputException($"cannot compare {a.Model} (A, scored on {a.Dataset}) with {b.Model} (B, scored on {b.Dataset}): the items are of other data sets");
        var byIdA = ItemsById(a);
        var byIdB = ItemsById(b);
        var missingFromB = a.Items.Where(i => !byIdB.ContainsKey(i.Id)).Select(i => i.Id).ToList();
        var missingFromA = b.Items.Where(i => !byIdA.ContainsKey(i.Id)).Select(i => i.Id).ToList();
        if (missingFromA.Count > 0 || missingFromB.Count > 0)
        {
            throw new InputException(
                $"cannot compare {a.Model} (A, {Count(a.Items.Count)}) with {b.Model} (B, {Count(b.Items.Count)}) on {a.Task}: "
                + $"the item sets differ; missing from B: {Count(missingFromB.Count)} of A{Examples(missingFromB)}; "
                + $"missing from A: {Count(missingFromA.Count)} of B{Examples(missingFromA)}");
        }
        var outcomesA = a.Items.Select(i => i.Correct).ToArray();
        var outcomesB = a.Items.Select(i => byIdB[i.Id].Correct).ToArray();
        return Statistics.Compare(outcomesA, outcomesB);
    }

    static Dictionary<string, ItemResult> ItemsById(EvalReport report)
    {
        if (report.Items.Count == 0)
            throw new InputException($"the {report.Task} report of {report.Model} has no items (saved without them?), so it cannot be compared");
        var byId = new Dictionary<string, ItemResult>(StringComparer.Ordinal);
        foreach (var item in report.Items)
        {
            if (!byId.TryAdd(item.Id, item))
                throw new InputException($"the {report.Task} report of {report.Model} has item id '{item.Id}' twice");
        }
        return byId;
    }

    static string Count(int items) => items == 1 ? "1 item" : $"{items} items";

    static string Examples(List<string> ids) =>
        ids.Count == 0 ? "" : $" (e.g. {string.Join(", ", ids.Take(3))}{(ids.Count > 3 ? ", …" : "")})";

    /// <summary>The comparison as JSON with snake_case keys: models, task, accuracies, B − A with its interval, discordant counts, McNemar p.</summary>
    public static string ComparisonToJson(EvalReport a, EvalReport b, Comparison c) => WriteJson(w =>
    {
        w.WriteStartObject();
        w.WriteString("a", a.Model);
        w.WriteString("b", b.Model);
        w.WriteString("task", a.Task);
        w.WriteNumber("n", c.N);
        w.WriteNumber("accuracy_a", c.AccuracyA);
        w.WriteNumber("accuracy_b", c.AccuracyB);
        w.WriteNumber("difference", c.Difference);
        WriteInterval(w, "ci95", c.DifferenceCi95);
        w.WriteNumber("only_a_correct", c.OnlyACorrect);
        w.WriteNumber("only_b_correct", c.OnlyBCorrect);
        w.WriteNumber("mcnemar_p", c.McNemarP);
        w.WriteEndObject();
    });

    static SortedDictionary<string, string> Sorted(IReadOnlyDictionary<string, string> options)
    {
        var sorted = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in options) sorted[key] = value;
        return sorted;
    }
}
