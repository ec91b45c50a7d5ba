using System.Text.Json.Nodes;
using BabyPpo.Evaluation;
using BabyPpo.Tests.Data;

namespace BabyPpo.Tests.Cli;

/// <summary>eval TASK and compare, run in-process as the command line runs them.</summary>
public sealed class EvalCommandsTests
{
    static readonly string TinyLlama = SharedData.Fixture("models", "tiny-llama");
    static readonly string PolicyStart = SharedData.Fixture("ppo-trl086", "policy-start");

    static string SmallZorro(TempFolder folder)
    {
        folder.Write("zorro/agreement.txt", "where is the way ?\nwhere is the ways ?\nthe dog can run .\nthe dog can runs .\nwhat is that ?\nwhat are that ?");
        folder.Write("zorro/binding.txt", "he saw himself .\nhe saw herself .\nshe likes herself .\nshe likes himself .");
        return Path.Combine(folder.Path, "zorro");
    }

    [Fact]
    public void EvalPrintsTheSummaryWithoutItemsAndWritesTheFullReportCsvAndMarkdown()
    {
        using var folder = new TempFolder();
        var zorro = SmallZorro(folder);
        string report = Path.Combine(folder.Path, "out", "tiny.json"), csv = Path.Combine(folder.Path, "tiny.csv"), md = Path.Combine(folder.Path, "tiny.md");

        var (code, stdout, stderr) = CliTests.Run("eval", "zorro", "--model", TinyLlama, "--data", zorro, "--name", "tiny",
            "--out", report, "--csv", csv, "--markdown", md, "--json");

        Assert.Equal(0, code);
        var json = JsonNode.Parse(stdout)!.AsObject();
        var saved = Reports.Load(report);
        Assert.Equal("zorro", json["task"]!.GetValue<string>());
        Assert.Equal("tiny", json["model"]!.GetValue<string>());
        Assert.Equal(5, json["n"]!.GetValue<int>());
        Assert.Equal(saved.Accuracy, json["accuracy"]!.GetValue<double>());
        Assert.Equal([saved.Ci95.Low, saved.Ci95.High], json["ci95"]!.AsArray().Select(x => x!.GetValue<double>()));
        Assert.Equal(saved.MacroAccuracy!.Value, json["macro_accuracy"]!.GetValue<double>());
        Assert.Equal([saved.MacroCi95!.Low, saved.MacroCi95.High], json["macro_ci95"]!.AsArray().Select(x => x!.GetValue<double>()));
        Assert.Equal(3, json["per_paradigm"]!["agreement"]!["n"]!.GetValue<int>());
        Assert.Equal(saved.PerParadigm["binding"].Accuracy, json["per_paradigm"]!["binding"]!["accuracy"]!.GetValue<double>());
        Assert.False(json.ContainsKey("items"));
        Assert.Equal(5, saved.Items.Count);
        Assert.Equal(saved.Items.Count(i => i.Correct) / 5.0, saved.Accuracy, 1e-12);
        Assert.StartsWith("paradigm,n,accuracy\nagreement,3,", File.ReadAllText(csv));
        Assert.Contains("| tiny |", File.ReadAllText(md));
        Assert.Contains("sentences scored", stderr);                            // progress goes to stderr
    }

    [Fact]
    public void UngroupedTasksPrintNoMacroAccuracy()
    {
        var (code, stdout, _) = CliTests.Run("eval", "dialogue", "--model", TinyLlama, "--data", SharedData.Data("dialogue", "eval_words.json"), "--limit", "20", "--json");
        Assert.Equal(0, code);
        var json = JsonNode.Parse(stdout)!.AsObject();
        Assert.Equal(20, json["n"]!.GetValue<int>());
        Assert.False(json.ContainsKey("macro_accuracy"));
        Assert.Empty(json["per_paradigm"]!.AsObject());
    }

    [Fact]
    public void CompareReportsTheDifferenceAndTheDiscordantItemsOfTwoModels()
    {
        using var folder = new TempFolder();
        var zorro = SmallZorro(folder);
        string a = Path.Combine(folder.Path, "a.json"), b = Path.Combine(folder.Path, "b.json");
        Assert.Equal(0, CliTests.Run("eval", "zorro", "--model", TinyLlama, "--data", zorro, "--out", a, "--json").Code);
        using var policy = TempModel.CopyOf(PolicyStart);                      // tiny-llama perturbed; it ships no tokenizer
        foreach (var file in new[] { "tokenizer.json", "tokenizer_config.json" })
            File.Copy(Path.Combine(TinyLlama, file), Path.Combine(policy.Path, file));
        Assert.Equal(0, CliTests.Run("eval", "zorro", "--model", policy.Path, "--data", zorro, "--out", b, "--json").Code);

        var (code, stdout, _) = CliTests.Run("compare", "--a", a, "--b", b, "--json");

        Assert.Equal(0, code);
        var json = JsonNode.Parse(stdout)!;
        var ra = Reports.Load(a);
        var rb = Reports.Load(b);
        var outcomesB = rb.Items.ToDictionary(i => i.Id, i => i.Correct);
        Assert.Equal(5, json["n"]!.GetValue<int>());
        Assert.Equal(ra.Accuracy, json["accuracy_a"]!.GetValue<double>(), 1e-12);
        Assert.Equal(rb.Accuracy, json["accuracy_b"]!.GetValue<double>(), 1e-12);
        Assert.Equal(ra.Items.Count(i => i.Correct && !outcomesB[i.Id]), json["only_a_correct"]!.GetValue<int>());
        Assert.Equal(ra.Items.Count(i => !i.Correct && outcomesB[i.Id]), json["only_b_correct"]!.GetValue<int>());
    }

    [Fact]
    public void AnOddNumberOfZorroLinesIsAnErrorNamingTheFileAndLine()
    {
        using var folder = new TempFolder();
        var file = folder.Write("zorro/odd.txt", "where is the way ?\nwhere is the ways ?\nthe dog can run .");
        AssertUserError(CliTests.Run("eval", "zorro", "--model", TinyLlama, "--data", Path.GetDirectoryName(file)!), $"{file}:3:", "even number of lines");
    }

    [Fact]
    public void AJsonLinesRecordWithoutTheFieldsIsAnErrorNamingTheFileAndLine()
    {
        using var folder = new TempFolder();
        var file = folder.Write("pairs.jsonl",
            """{"sentence_good": "the dog can run .", "sentence_bad": "the dog can runs ."}""" + "\n" +
            """{"sentence_good": "what is that ?"}""" + "\n");
        AssertUserError(CliTests.Run("eval", "pairs", "--model", TinyLlama, "--data", file), $"{file}:2:", "sentence_bad");
    }

    [Theory]
    [InlineData("zorro", "zorro/empty.txt")]
    [InlineData("pairs", "empty.jsonl")]
    [InlineData("dialogue", "empty.json")]
    [InlineData("lexical", "empty.csv")]
    public void AnEmptyFileIsAnErrorNamingTheFile(string task, string name)
    {
        using var folder = new TempFolder();
        var file = folder.Write(name, "");
        var data = task == "zorro" ? Path.GetDirectoryName(file)! : file;
        AssertUserError(CliTests.Run("eval", task, "--model", TinyLlama, "--data", data), file, "empty");
    }

    [Fact]
    public void AMissingDataFolderAndABadLimitAreUserErrors()
    {
        var missing = Path.Combine(Path.GetTempPath(), "babyppo-no-such-zorro");
        AssertUserError(CliTests.Run("eval", "zorro", "--model", TinyLlama, "--data", missing), missing, "not found");
        AssertUserError(CliTests.Run("eval", "lexical", "--model", TinyLlama, "--data", "data/x.csv", "--limit", "many"), "--limit", "whole number");
    }

    static void AssertUserError((int Code, string Out, string Err) result, string names, string problem)
    {
        Assert.Equal(2, result.Code);
        var lines = result.Err.TrimEnd().Split('\n').Where(l => l.StartsWith("error: ")).ToList();
        var line = Assert.Single(lines);
        Assert.Contains(names, line);
        Assert.Contains(problem, line);
        Assert.DoesNotContain("   at ", result.Err);
    }
}
