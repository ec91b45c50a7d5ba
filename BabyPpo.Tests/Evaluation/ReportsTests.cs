using System.Text.Json;
using System.Text.Json.Nodes;
using BabyPpo.Evaluation;
using BabyPpo.Training;

namespace BabyPpo.Tests.Evaluation;

/// <summary>Building, saving, reading, tabulating and comparing evaluation reports.</summary>
public sealed class ReportsTests
{
    /// <summary>Paradigm "a": 3 of 3 right; paradigm "b": 1 of 2 right (its wrong item unscorable).</summary>
    static ItemResult[] GroupedItems() =>
    [
        new("b:0", true, -10.5, -12.25, "b"),
        new("a:0", true, -3.0, -4.0, "a"),
        new("b:1", false, double.NaN, double.NegativeInfinity, "b"),
        new("a:1", true, -7.125, -9.0, "a"),
        new("a:2", true, -1e-3, -2.5e7, "a"),
    ];

    static EvalReport Report(string model, string task, (string Id, bool Correct)[] items) =>
        Reports.Build(task, model, "data", items.Select(i => new ItemResult(i.Id, i.Correct, 0, 0)).ToArray());

    [Fact]
    public void BuildComputesPerParadigmAccuraciesAndTheirMacroAverage()
    {
        var report = Reports.Build("zorro", "m1", "zorro/", GroupedItems(), unscorable: 1);
        Assert.Equal(5, report.N);
        Assert.Equal(0.8, report.Accuracy, 1e-12);              // 4 of 5
        Assert.Equal(0.75, report.MacroAccuracy!.Value, 1e-12); // (1 + 0.5)/2
        Assert.Equal(["a", "b"], report.PerParadigm.Keys);
        Assert.Equal(new GroupResult(3, 1.0), report.PerParadigm["a"]);
        Assert.Equal(new GroupResult(2, 0.5), report.PerParadigm["b"]);
        // "a" stays at 1 in every resample; "b" resamples to 0/2 or 2/2 with probability ¼ each,
        // beyond 2.5%, so the macro interval runs from (1 + 0)/2 to (1 + 1)/2.
        Assert.Equal(new Interval(0.5, 1.0), report.MacroCi95);
        Assert.Equal(report.MacroCi95, report.HeadlineCi95);
        // Over the 5 items (4 right): 5 of 5 right has probability 0.8⁵ = 0.33; at most 1 right
        // 0.0067 < 2.5% < 0.058 = at most 2 right, so the item interval runs from 2/5 to 5/5.
        Assert.Equal(new Interval(0.4, 1.0), report.Ci95);
        Assert.Equal(1, report.Unscorable);
        Assert.NotNull(report.CreatedAt);
    }

    [Fact]
    public void BuildWithoutGroupsHasNoMacroAverage()
    {
        var report = Report("m1", "lexical", [("0", true), ("1", false), ("2", true), ("3", false)]);
        Assert.Equal(0.5, report.Accuracy);
        Assert.Null(report.MacroAccuracy);
        Assert.Empty(report.PerParadigm);
        // 0 or 4 of 4 right each have probability 1/16 > 2.5%
        Assert.Equal(new Interval(0, 1), report.Ci95);
    }

    [Fact]
    public void BuildRejectsItemsWhereOnlySomeHaveAGroup()
    {
        ItemResult[] items = [new("0", true, 0, 0, "a"), new("1", true, 0, 0)];
        var e = Assert.Throws<ArgumentException>(() => Reports.Build("zorro", "m", "d", items));
        Assert.Contains("1 of 2", e.Message);
    }

    [Fact]
    public void BuildRejectsMoreUnscorableItemsThanWrongOnes() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => Reports.Build("zorro", "m", "d", GroupedItems(), unscorable: 2));

    [Fact]
    public void JsonRoundTripKeepsEverything()
    {
        var options = new Dictionary<string, string> { ["lowercase"] = "true", ["bow_correction"] = "false" };
        var report = Reports.Build("zorro", "runs/ppo-7", "zorro/", GroupedItems(), options, unscorable: 1);
        var back = Reports.FromJson(Reports.ToJson(report));
        Assert.Equal(report.Task, back.Task);
        Assert.Equal(report.Model, back.Model);
        Assert.Equal(report.Dataset, back.Dataset);
        Assert.Equal(report.N, back.N);
        Assert.Equal(report.Accuracy, back.Accuracy);
        Assert.Equal(report.Ci95, back.Ci95);
        Assert.Equal(report.MacroAccuracy, back.MacroAccuracy);
        Assert.Equal(report.MacroCi95, back.MacroCi95);
        Assert.Equal(report.PerParadigm.ToArray(), back.PerParadigm.ToArray());
        Assert.Equal(GroupedItems(), back.Items);   // NaN and −∞ scores included
        Assert.Equal([new("bow_correction", "false"), new KeyValuePair<string, string>("lowercase", "true")], back.Options.ToArray());
        Assert.Equal(1, back.Unscorable);
        Assert.Equal(report.CreatedAt, back.CreatedAt);
    }

    [Fact]
    public void JsonUsesSnakeCaseKeys()
    {
        var report = Reports.Build("zorro", "m1", "zorro/", GroupedItems(), unscorable: 1);
        using var json = JsonDocument.Parse(Reports.ToJson(report));
        var root = json.RootElement;
        Assert.Equal("zorro", root.GetProperty("task").GetString());
        Assert.Equal(5, root.GetProperty("n").GetInt32());
        Assert.Equal(0.8, root.GetProperty("accuracy").GetDouble());
        Assert.Equal([0.4, 1.0], root.GetProperty("ci95").EnumerateArray().Select(x => x.GetDouble()));
        Assert.Equal(0.75, root.GetProperty("macro_accuracy").GetDouble());
        Assert.Equal([0.5, 1.0], root.GetProperty("macro_ci95").EnumerateArray().Select(x => x.GetDouble()));
        Assert.Equal(1, root.GetProperty("unscorable").GetInt32());
        Assert.Equal(2, root.GetProperty("per_paradigm").GetProperty("b").GetProperty("n").GetInt32());
        Assert.Equal(0.5, root.GetProperty("per_paradigm").GetProperty("b").GetProperty("accuracy").GetDouble());
        var first = root.GetProperty("items")[0];
        Assert.Equal("b:0", first.GetProperty("id").GetString());
        Assert.True(first.GetProperty("correct").GetBoolean());
        Assert.Equal(-10.5, first.GetProperty("score_good").GetDouble());
        Assert.Equal(-12.25, first.GetProperty("score_bad").GetDouble());
        Assert.Equal("b", first.GetProperty("group").GetString());
    }

    [Fact]
    public void JsonWithoutItemsReadsBackWithNone()
    {
        var report = Reports.Build("zorro", "m1", "zorro/", GroupedItems(), unscorable: 1);
        string json = Reports.ToJson(report, includeItems: false);
        Assert.DoesNotContain("\"items\"", json);
        var back = Reports.FromJson(json);
        Assert.Empty(back.Items);
        Assert.Equal(5, back.N);
    }

    [Fact]
    public void FromJsonNamesTheSourceAndTheMissingField()
    {
        var report = Reports.Build("zorro", "m1", "zorro/", GroupedItems(), unscorable: 1);
        var node = JsonNode.Parse(Reports.ToJson(report))!.AsObject();
        node.Remove("accuracy");
        var e = Assert.Throws<InputException>(() => Reports.FromJson(node.ToJsonString(), "runs/m1/zorro.json"));
        Assert.Equal("runs/m1/zorro.json: missing \"accuracy\"", e.Message);

        node = JsonNode.Parse(Reports.ToJson(report))!.AsObject();
        node["items"]![1]!.AsObject().Remove("id");
        e = Assert.Throws<InputException>(() => Reports.FromJson(node.ToJsonString(), "zorro.json"));
        Assert.Equal("zorro.json: items[1]: missing \"id\"", e.Message);
    }

    [Fact]
    public void FromJsonReportsMalformedJsonWithItsLine()
    {
        var e = Assert.Throws<InputException>(() => Reports.FromJson("{\n  \"task\": \"zorro\",\n  oops\n}", "bad.json"));
        Assert.StartsWith("bad.json:3: not valid JSON", e.Message);
    }

    [Fact]
    public void SaveThenLoadRoundTripsAndLeavesNoTemporaryFile()
    {
        string dir = Path.Combine(Path.GetTempPath(), $"babyppo-reports-{Guid.NewGuid():N}");
        try
        {
            string path = Path.Combine(dir, "nested", "zorro.json");
            var report = Reports.Build("zorro", "m1", "zorro/", GroupedItems(), unscorable: 1);
            Reports.Save(report, path);
            Reports.Save(report with { Model = "m2" }, path);   // overwrites in place
            var back = Reports.Load(path);
            Assert.Equal("m2", back.Model);
            Assert.Equal(GroupedItems(), back.Items);
            Assert.Equal([path], Directory.GetFiles(Path.GetDirectoryName(path)!));
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void LoadOfAMissingFileNamesIt()
    {
        string path = Path.Combine(Path.GetTempPath(), $"no-such-report-{Guid.NewGuid():N}.json");
        var e = Assert.Throws<InputException>(() => Reports.Load(path));
        Assert.StartsWith(path, e.Message);
    }

    [Fact]
    public void CsvHasOneRowPerParadigmThenAll()
    {
        ItemResult[] items =
        [
            new("1", true, 0, 0, "b,c"), new("2", false, 0, 0, "b,c"),
            new("3", true, 0, 0, "a"), new("4", false, 0, 0, "a"), new("5", true, 0, 0, "a"),
        ];
        string csv = Reports.ToCsv(Reports.Build("zorro", "m", "d", items));
        Assert.Equal("paradigm,n,accuracy\na,3,0.6667\n\"b,c\",2,0.5000\nALL,5,0.6000\n", csv);
    }

    [Fact]
    public void MarkdownTablesModelsAgainstTasksInPercent()
    {
        var empty = new Dictionary<string, GroupResult>();
        var none = new Dictionary<string, string>();
        EvalReport Fixed(string model, string task, double accuracy, double? macro, double low, double high) =>
            new(task, model, "data", 100, accuracy, new Interval(low, high), macro, empty, [], none);
        var reports = new[]
        {
            Fixed("m1", "zorro", 0.70, 0.7123, 0.6891, 0.7349),    // grouped: the macro average is quoted
            Fixed("m1", "lexical", 0.80, null, 0.7712, 0.8266),
            Fixed("m2|x", "zorro", 0.6542, 0.6604, 0.6401, 0.6812),
        };
        string expected =
            "| Model | zorro | lexical |\n" +
            "|---|---|---|\n" +
            "| m1 | 71.2 [68.9, 73.5] | 80.0 [77.1, 82.7] |\n" +
            "| m2\\|x | 66.0 [64.0, 68.1] | – |\n" +
            "\nAccuracy in percent [95% bootstrap interval]; tasks with groups show the macro average over groups.\n";
        Assert.Equal(expected, Reports.ToMarkdown(reports));
    }

    [Fact]
    public void CompareMatchesItemsByIdNotByPosition()
    {
        var a = Report("A", "pairs", [("x", true), ("y", false), ("z", true), ("w", false)]);
        var b = Report("B", "pairs", [("w", true), ("z", false), ("x", true), ("y", true)]);
        var c = Reports.Compare(a, b);
        Assert.Equal(4, c.N);
        Assert.Equal(0.5, c.AccuracyA);
        Assert.Equal(0.75, c.AccuracyB);
        Assert.Equal(0.25, c.Difference);
        Assert.Equal(1, c.OnlyACorrect);   // z
        Assert.Equal(2, c.OnlyBCorrect);   // y, w
    }

    [Fact]
    public void CompareOfDifferentItemSetsSaysHowManyAreMissingOnEachSide()
    {
        var a = Report("A", "pairs", [("x", true), ("y", false), ("z", true)]);
        var b = Report("B", "pairs", [("y", true), ("z", false), ("u", true), ("v", true)]);
        var e = Assert.Throws<InputException>(() => Reports.Compare(a, b));
        Assert.Contains("missing from B: 1 item of A (e.g. x)", e.Message);
        Assert.Contains("missing from A: 2 items of B (e.g. u, v)", e.Message);
    }

    [Fact]
    public void CompareRefusesReportsOfDifferentTasksOrWithoutItems()
    {
        var a = Report("A", "pairs", [("x", true)]);
        Assert.Throws<InputException>(() => Reports.Compare(a, Report("B", "lexical", [("x", true)])));
        var withoutItems = Reports.FromJson(Reports.ToJson(a, includeItems: false));
        Assert.Throws<InputException>(() => Reports.Compare(a, withoutItems));
    }

    [Fact]
    public void CompareRefusesReportsOfOtherDataSetsEvenWhenTheItemIdsMatch()
    {
        ItemResult[] items = [new("0", true, 0, 0), new("1", false, 0, 0)];
        var words = Reports.Build("dialogue", "A", "../shared/data/dialogue/eval_words.json", items);
        var tokens = Reports.Build("dialogue", "B", "/elsewhere/dialogue/eval_tokens.json", items);
        var error = Assert.Throws<InputException>(() => Reports.Compare(words, tokens));
        Assert.Contains("eval_tokens.json", error.Message);
        var sameFileElsewhere = Reports.Build("dialogue", "B", "/elsewhere/dialogue/eval_words.json", items);
        Assert.Equal(0, Reports.Compare(words, sameFileElsewhere).Difference);
    }

    [Fact]
    public void ComparisonJsonCarriesBothModelsAndTheTest()
    {
        var a = Report("A", "pairs", [("x", true), ("y", false), ("z", true), ("w", false)]);
        var b = Report("B", "pairs", [("w", true), ("z", false), ("x", true), ("y", true)]);
        using var json = JsonDocument.Parse(Reports.ComparisonToJson(a, b, Reports.Compare(a, b)));
        var root = json.RootElement;
        Assert.Equal("A", root.GetProperty("a").GetString());
        Assert.Equal("B", root.GetProperty("b").GetString());
        Assert.Equal("pairs", root.GetProperty("task").GetString());
        Assert.Equal(4, root.GetProperty("n").GetInt32());
        Assert.Equal(0.5, root.GetProperty("accuracy_a").GetDouble());
        Assert.Equal(0.75, root.GetProperty("accuracy_b").GetDouble());
        Assert.Equal(0.25, root.GetProperty("difference").GetDouble());
        Assert.Equal(2, root.GetProperty("ci95").GetArrayLength());
        Assert.Equal(1, root.GetProperty("only_a_correct").GetInt32());
        Assert.Equal(2, root.GetProperty("only_b_correct").GetInt32());
        Assert.Equal(1.0, root.GetProperty("mcnemar_p").GetDouble());   // 2·P(X ≤ 1), X ~ Bin(3, ½) ≥ 1
    }
}
