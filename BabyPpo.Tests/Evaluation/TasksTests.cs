using System.Text.Json.Nodes;
using BabyPpo.Evaluation;
using BabyPpo.Tests.Data;
using BabyPpo.Tests.Inference;
using BabyPpo.Training;
using BabyPpo.Training.Inference;
using static TorchSharp.torch;

namespace BabyPpo.Tests.Evaluation;

/// <summary>
/// The four tasks on tiny-llama. Expected numbers come from the fixture or from an independent
/// computation here: each sentence run alone through the model, log-softmax in float64.
/// </summary>
public sealed class TasksTests : IClassFixture<TinyLlamaFixture>
{
    readonly TinyLlamaFixture _tiny;

    public TasksTests(TinyLlamaFixture tiny) => _tiny = tiny;

    Scorer NewScorer(ScorerOptions? options = null) => new(_tiny.Model, _tiny.Tokenizer, options);

    /// <summary>Sum of ln p(token | prefix) after the first token, one unpadded forward pass, in float64.</summary>
    double ReferenceScore(string text)
    {
        var ids = _tiny.Tokenizer.Encode(text);
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var logProbs = _tiny.Model.forward(tensor(ids.Select(i => (long)i).ToArray()).unsqueeze(0))[0]
            .to(ScalarType.Float64).log_softmax(-1).data<double>().ToArray();                // (T, V) row-major
        int v = _tiny.Model.Config.VocabSize;
        double sum = 0;
        for (int p = 1; p < ids.Length; p++) sum += logProbs[(p - 1) * v + ids[p]];
        return sum;
    }

    static JsonArray FixtureSentences() =>
        JsonNode.Parse(File.ReadAllText(SharedData.Fixture("models", "tiny-llama", "expected.json")))!["sentences"]!.AsArray();

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void TheFixturePairIsScoredWithTheFixtureSumsAndTheVerdictFollows(bool sharePrefixes)
    {
        var sentences = FixtureSentences();
        string good = sentences[2]!["text"]!.GetValue<string>(), bad = sentences[3]!["text"]!.GetValue<string>();
        Assert.Equal(("where is the way ?", "where is the ways ?"), (good, bad));
        double expectedGood = sentences[2]!["logprob_sum_after_first"]!.GetValue<double>();
        double expectedBad = sentences[3]!["logprob_sum_after_first"]!.GetValue<double>();
        using var folder = new TempFolder();
        folder.Write("zorro/paradigm.txt", $"{good}\n{bad}");                  // good first, no final newline
        // The same pair in the other order: now the first ("good") sentence is the worse one.
        folder.Write("pairs.jsonl", $$"""{"sentence_good": "{{bad}}", "sentence_bad": "{{good}}"}""" + "\n");

        var scorer = NewScorer(new ScorerOptions { SharePrefixes = sharePrefixes });
        var zorro = Tasks.Zorro(scorer, Path.Combine(folder.Path, "zorro"));
        var item = Assert.Single(zorro.Items);
        Assert.Equal("paradigm:0", item.Id);
        Assert.Equal(expectedGood, item.ScoreGood, 1e-3);
        Assert.Equal(expectedBad, item.ScoreBad, 1e-3);
        Assert.Equal(expectedGood > expectedBad, item.Correct);

        var swapped = Assert.Single(Tasks.MinimalPairs(scorer, Path.Combine(folder.Path, "pairs.jsonl")).Items);
        Assert.Equal(expectedBad, swapped.ScoreGood, 1e-3);
        Assert.Equal(expectedGood, swapped.ScoreBad, 1e-3);
        Assert.Equal(expectedBad > expectedGood, swapped.Correct);
    }

    [Fact]
    public void ZorroReportsPerParadigmAccuracyAndTheirMacroAverageWithTiesWrong()
    {
        var paradigms = new Dictionary<string, (string Good, string Bad)[]>
        {
            ["agreement"] =
            [
                ("where is the way ?", "where is the ways ?"),
                ("the dog can run .", "the dog can runs ."),
                ("the dogs can run .", "the dogs can run ."),          // a tie: counts as wrong
                ("what is that ?", "what are that ?"),
                ("look at the ball .", "look at the balls ."),
            ],
            ["binding"] =
            [
                ("he saw himself .", "he saw herself ."),
                ("she likes herself .", "she likes himself ."),
                ("you want more juice ?", "you wants more juice ?"),
            ],
        };
        using var folder = new TempFolder();
        foreach (var (name, pairs) in paradigms)
            folder.Write($"zorro/{name}.txt", string.Join("\n", pairs.SelectMany(p => new[] { p.Good, p.Bad })));

        var report = Tasks.Zorro(NewScorer(new ScorerOptions { MaxBatchTokens = 32 }), Path.Combine(folder.Path, "zorro"),
            new EvalOptions { ModelName = "tiny" });

        var expected = paradigms.ToDictionary(p => p.Key, p => p.Value.Count(x => ReferenceScore(x.Good) > ReferenceScore(x.Bad)) / (double)p.Value.Length);
        Assert.Equal(8, report.N);
        Assert.Equal(["agreement", "binding"], report.PerParadigm.Keys);
        foreach (var (name, accuracy) in expected)
        {
            Assert.Equal(paradigms[name].Length, report.PerParadigm[name].N);
            Assert.Equal(accuracy, report.PerParadigm[name].Accuracy, 1e-12);
        }
        Assert.Equal(expected.Values.Average(), report.MacroAccuracy!.Value, 1e-12);
        var tie = report.Items.Single(i => i.Id == "agreement:2");
        Assert.Equal(tie.ScoreGood, tie.ScoreBad);
        Assert.False(tie.Correct);
        Assert.Equal("tiny", report.Model);
        Assert.Equal("zorro", report.Task);
    }

    [Fact]
    public void LimitKeepsTheFirstPairsOfEachParadigmAndLowerCasingAppliesBeforeScoring()
    {
        using var folder = new TempFolder();
        folder.Write("zorro/a.txt", "Where is the way ?\nwhere is the ways ?\nthe dog can run .\nthe dog can runs .\nwhat is that ?\nwhat are that ?");
        folder.Write("zorro/b.txt", "he saw himself .\nhe saw herself .\nshe likes herself .\nshe likes himself .");
        var report = Tasks.Zorro(NewScorer(), Path.Combine(folder.Path, "zorro"), new EvalOptions { Limit = 2, LowerCase = true });

        Assert.Equal(["a:0", "a:1", "b:0", "b:1"], report.Items.Select(i => i.Id));
        Assert.Equal(ReferenceScore("where is the way ?"), report.Items[0].ScoreGood, 1e-3);
        Assert.Equal("2", report.Options["limit"]);
        Assert.Equal("true", report.Options["lowercase"]);
    }

    [Fact]
    public void DialoguePairsCompareThePromptFollowedByEachReply()
    {
        using var folder = new TempFolder();
        var pairs = new[]
        {
            ("*MOT: what is that ?", "*CHI: it is a ball .", "*CHI: yes please ."),
            ("*MOT: do you want more juice ?", "*CHI: yes please .", "*CHI: it is a ball ."),
            ("*MOT: pull the string .", "*CHI: no .", "*CHI: the dog can run ."),
        };
        var path = folder.Write("dialogue.json", new JsonArray(pairs.Select(p => (JsonNode)new JsonObject
        {
            ["prompt"] = p.Item1, ["chosen"] = p.Item2, ["rejected"] = p.Item3,
        }).ToArray()).ToJsonString());

        var report = Tasks.Dialogue(NewScorer(), path);

        Assert.Equal(3, report.N);
        Assert.Empty(report.PerParadigm);
        Assert.Null(report.MacroAccuracy);
        for (int i = 0; i < pairs.Length; i++)
        {
            var (prompt, chosen, rejected) = pairs[i];
            double good = ReferenceScore($"{prompt} {chosen}"), bad = ReferenceScore($"{prompt} {rejected}");
            Assert.Equal(i.ToString(), report.Items[i].Id);
            Assert.Equal(good, report.Items[i].ScoreGood, 1e-3);
            Assert.Equal(bad, report.Items[i].ScoreBad, 1e-3);
            Assert.Equal(good > bad, report.Items[i].Correct);
        }
    }

    [Theory]
    [InlineData("eval_words.json", 7548)]
    [InlineData("eval_tokens.json", 7520)]
    public void DialogueTaskScoresEveryPairOfTheSharedEvaluationSets(string file, int pairs)
    {
        var report = Tasks.Dialogue(NewScorer(), SharedData.Data("dialogue", file));
        Assert.Equal(pairs, report.N);
        Assert.Equal(pairs, report.Items.Select(i => i.Id).Distinct().Count());
        Assert.All(report.Items, i => Assert.True(double.IsFinite(i.ScoreGood) && double.IsFinite(i.ScoreBad)));
        Assert.Equal(report.Items.Count(i => i.Correct) / (double)pairs, report.Accuracy, 1e-12);
    }

    [Fact]
    public void UnscorableLexicalRowsAreReportedAndCountAsWrong()
    {
        using var folder = new TempFolder();
        var rows = new[] { ("ball", "bap"), ("", "blick"), ("dog", "<s>"), ("juice", "jubo"), ("more", "mobe"), ("run", "") };
        var path = folder.Write("lexical.csv", "lexeme,wug\n" + string.Join("\n", rows.Select(r => $"{r.Item1},{r.Item2}")) + "\n");

        var report = Tasks.LexicalDecision(NewScorer(), path);

        var scorable = rows.Where(r => r.Item1.Length > 0 && r.Item2 is not ("" or "<s>")).ToList();
        int correct = scorable.Count(r => ReferenceScore(r.Item1) > ReferenceScore(r.Item2));
        Assert.Equal(6, report.N);                                              // the denominator is every row
        Assert.Equal(3, report.Unscorable);
        Assert.Equal(correct / 6.0, report.Accuracy, 1e-12);
        foreach (var id in new[] { "1", "2", "5" })
        {
            var item = report.Items.Single(i => i.Id == id);
            Assert.False(item.Correct);
            Assert.True(double.IsNaN(item.ScoreGood) || double.IsNaN(item.ScoreBad));
        }
        Assert.Equal(ReferenceScore("ball"), report.Items[0].ScoreGood, 1e-3);
        Assert.Equal(ReferenceScore("dog"), report.Items[2].ScoreGood, 1e-3);   // the scorable word of a row is still scored
    }

    [Fact]
    public void MinimalPairsWithSomeGroupsMissingAreAnInputErrorNamingTheFile()
    {
        using var folder = new TempFolder();
        var path = folder.Write("mixed.jsonl",
            """{"sentence_good": "the dog can run .", "sentence_bad": "the dog can runs .", "UID": "agr"}""" + "\n" +
            """{"sentence_good": "what is that ?", "sentence_bad": "what are that ?"}""" + "\n");
        var error = Assert.Throws<InputException>(() => Tasks.MinimalPairs(NewScorer(), path));
        Assert.Contains(path, error.Message);
        Assert.Contains($"{path}:2:", error.Message);
    }

    [Fact]
    public void ProgressReachesEverySentenceAndCancellationStopsTheTask()
    {
        using var folder = new TempFolder();
        var zorro = Path.Combine(folder.Path, "zorro");
        folder.Write("zorro/a.txt", "where is the way ?\nwhere is the ways ?\nthe dog can run .\nthe dog can runs .");
        var seen = new List<EvalProgress>();
        Tasks.Zorro(NewScorer(new ScorerOptions { MaxBatchTokens = 8 }), zorro, null, new Recorder(seen));
        Assert.Equal(new EvalProgress("zorro", 4, 4), seen[^1]);

        using var cancel = new CancellationTokenSource();
        cancel.Cancel();
        Assert.Throws<OperationCanceledException>(() => Tasks.Zorro(NewScorer(), zorro, null, null, cancel.Token));
    }

    sealed class Recorder(List<EvalProgress> seen) : IProgress<EvalProgress>
    {
        public void Report(EvalProgress value) => seen.Add(value);
    }
}
