using System.Text.Json.Nodes;
using BabyPpo.Tests.Data;
using BabyPpo.Training;
using BabyPpo.Training.Data;
using BabyPpo.Training.Rewards;

namespace BabyPpo.Tests.Rewards;

/// <summary>Teacher answers: the seed's prompt and sampling, first utterances, resumable JSON-lines output.</summary>
public sealed class TeacherAnswersTests
{
    [Fact]
    public void PromptAndSamplingAreTheSeeds()
    {
        Assert.Equal(
            "You are a young child having a conversation with your mother. When your mother says something, you should answer as a typical and natural-sounding child. Do NOT repeat her words. Instead, give a new, relevant answer that shows understanding. Keep it short and child-like.\nMother says:what is that?\n Child answers:",
            TeacherAnswers.Prompt("what is that?"));
        var sampling = TeacherAnswers.Sampling(10);
        Assert.Equal((0.8, 0.8, 20, 10), (sampling.Temperature, sampling.TopP, sampling.MaxTokens, sampling.N));
        Assert.Equal(["\n", "Mother:", "Child:"], sampling.Stop);
    }

    [Theory]
    [InlineData(" a ball!\nMother: yes", "a ball!")]
    [InlineData(" doggy Child: woof", "doggy")]
    [InlineData("yes please Mother: ok", "yes please")]
    [InlineData("  \n", "")]
    public void FirstUtteranceIsTheTextBeforeAnyStopString(string completion, string expected) =>
        Assert.Equal(expected, TeacherAnswers.FirstUtterance(completion));

    [Fact]
    public void UtterancesComeFromPromptSetsTrainJsonOrTextLines()
    {
        using var folder = new TempFolder();
        var json = folder.Write("train.json", """[{"prompt": "*MOT: what is that ?", "chosen": "*CHI: a ball", "rejected": "*CHI: no"}, {"prompt": "look", "chosen": "x", "rejected": "y"}]""");
        var jsonl = folder.Write("set.jsonl", "{\"prompt\": \"where is it\"}\n\n{\"prompt\": \"*MOT: bye\", \"references\": [\"bye\"]}\n");
        var text = folder.Write("prompts.txt", "*MOT: hello there\n\n  mummy  \n");
        Assert.Equal(["what is that ?", "look"], Datasets.ReadUtterances(json));
        Assert.Equal(["where is it", "bye"], Datasets.ReadUtterances(jsonl));
        Assert.Equal(["hello there", "mummy"], Datasets.ReadUtterances(text));
        var empty = folder.Write("empty.jsonl", "{\"prompt\": \"*MOT: \"}\n");
        Assert.Contains(empty + ":1:", Assert.Throws<InputException>(() => Datasets.ReadUtterances(empty)).Message);
    }

    [Fact]
    public void ResumesWhereItStoppedAndWritesAPromptSet()
    {
        using var folder = new TempFolder();
        var outPath = Path.Combine(folder.Path, "teacher.jsonl");
        int calls = 0;
        var teacher = new StubLlm(prompt => $" answer {++calls} to {prompt[(prompt.IndexOf("says:") + 5)..prompt.IndexOf('\n', prompt.IndexOf("says:"))]}\nMother: more");

        Assert.Equal(2, TeacherAnswers.Write(teacher, ["where is it", "hello", "where is it"], 2, outPath, promptsPerCall: 1));
        Assert.Equal(2, teacher.Calls.Count);
        var progress = new List<TeacherProgress>();
        Assert.Equal(1, TeacherAnswers.Write(teacher, ["hello", "bye", "where is it"], 2, outPath, new SyncProgress<TeacherProgress>(progress.Add)));
        Assert.Equal(3, teacher.Calls.Count);
        Assert.Equal(["bye"], teacher.Calls[^1].Prompts.Select(p => p[(p.IndexOf("says:") + 5)..p.IndexOf('\n', p.IndexOf("says:"))]));
        Assert.Equal(new TeacherProgress(1, 1, 2), progress[^1]);

        var items = Datasets.ReadPromptSet(outPath);
        Assert.Equal(["where is it", "hello", "bye"], items.Select(i => i.Utterance));
        Assert.Equal(["answer 1 to where is it", "answer 2 to where is it"], items[0].References);
        Assert.All(items, i => Assert.Equal(2, i.References.Count));
    }

    [Fact]
    public void LineCutShortByACrashIsDroppedAndItsPromptAnsweredAgain()
    {
        using var folder = new TempFolder();
        var outPath = folder.Write("teacher.jsonl", "{\"prompt\": \"hello\", \"references\": [\"hi\"]}\n{\"prompt\": \"bye\", \"refer");
        var teacher = new StubLlm(_ => "bye bye");
        Assert.Equal(1, TeacherAnswers.Write(teacher, ["hello", "bye"], 1, outPath));
        var items = Datasets.ReadPromptSet(outPath);
        Assert.Equal(["hello", "bye"], items.Select(i => i.Utterance));
        Assert.Equal(["bye bye"], items[1].References);
    }

    [Fact]
    public void BlankAnswersAreAskedAgainAndAPromptWithoutAnyIsLeftForTheNextRun()
    {
        using var folder = new TempFolder();
        var outPath = Path.Combine(folder.Path, "out", "teacher.jsonl");
        int call = 0;
        var teacher = new StubLlm(prompt => prompt.Contains("says:mute") ? "\nMother: say something" : ++call % 2 == 1 ? "  " : "a ball");
        Assert.Equal(1, TeacherAnswers.Write(teacher, ["what is that", "mute"], 2, outPath, promptsPerCall: 2));
        var item = Assert.Single(Datasets.ReadPromptSet(outPath));
        Assert.Equal("what is that", item.Utterance);
        Assert.Equal(["a ball", "a ball"], item.References);
    }

    [Fact]
    public void OutputFileOfAnotherKindIsAnInputError()
    {
        using var folder = new TempFolder();
        var outPath = folder.Write("teacher.jsonl", "prompt,references\n");
        Assert.Contains(outPath + ":1:", Assert.Throws<InputException>(() => TeacherAnswers.Write(new StubLlm(_ => "x"), ["hi"], 1, outPath)).Message);
    }

    /// <summary>IProgress that reports on the calling thread (Progress&lt;T&gt; posts to the thread pool).</summary>
    sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}

/// <summary>The reward and teacher verbs of the babyppo command, run in-process.</summary>
public sealed class RewardCliTests
{
    static readonly string TinyLlama = SharedData.Fixture("models", "tiny-llama");

    [Fact]
    public void RewardBleuPrintsTheRewardAsJson()
    {
        var (code, output, _) = Cli.CliTests.Run("reward", "--reward", "bleu", "--mot", "what is that", "--chi", "a red ball", "--reference", "it is a ball", "--json");
        Assert.Equal(0, code);
        // m = 2 of c = 3, r = 4 → exp(1 − 4/3) · 2/3
        Assert.Equal(Math.Exp(-1.0 / 3) * 2 / 3, JsonNode.Parse(output)!["reward"]!.GetValue<double>(), 12);
    }

    [Fact]
    public void RewardSemsimPrintsTheCosine()
    {
        var (code, output, _) = Cli.CliTests.Run("reward", "--reward", "semsim", "--mot", "weather", "--chi", "The weather is lovely today.", "--reference", "It's so sunny outside!", "--json");
        Assert.Equal(0, code);
        Assert.Equal(0.6660, JsonNode.Parse(output)!["reward"]!.GetValue<double>(), 0.005);
    }

    [Fact]
    public void RewardScoreRunsTheJudgeFolderWithASeparateTokenizer()
    {
        var (code, output, _) = Cli.CliTests.Run("reward", "--reward", "score", "--mot", "what is that ?", "--chi", "a ball", "--json",
            "--judge", SharedData.Fixture("models", "tiny-olmo2"), "--judge-tokenizer", SharedData.Fixture("tokenizers", "bytelevel-bpe"), "--default-score", "-1");
        Assert.Equal(0, code);
        var json = JsonNode.Parse(output)!;
        double reward = json["reward"]!.GetValue<double>();
        bool unparseable = json["metrics"]!["score/unparseable"]!.GetValue<double>() == 1;
        Assert.True(unparseable ? reward == -1 : reward is >= 0 and <= 5, output);
    }

    [Fact]
    public void RewardConfidenceOfAnEmptyAnswerIsMinusHalf()
    {
        var (code, output, _) = Cli.CliTests.Run("reward", "--reward", "confidence", "--mot", "what is that ?", "--chi", "", "--reference", "a ball", "--teacher", TinyLlama, "--json");
        Assert.Equal(0, code);
        Assert.Equal(-0.5, JsonNode.Parse(output)!["reward"]!.GetValue<double>());
    }

    [Theory]
    [InlineData("score", "--judge")]
    [InlineData("blue", "unknown reward 'blue'")]
    public void RewardUserErrorsAreOneLine(string reward, string problem)
    {
        var (code, _, err) = Cli.CliTests.Run("reward", "--reward", reward, "--mot", "hi", "--chi", "hello");
        Assert.Equal(2, code);
        Assert.Single(err.TrimEnd().Split('\n'));
        Assert.Contains(problem, err);
    }

    [Fact]
    public void TeacherWritesAResumablePromptSetFromACheckpointFolder()
    {
        using var folder = new TempFolder();
        var prompts = folder.Write("prompts.txt", "*MOT: what is that ?\nlook at the doggy\n\n");
        var outPath = Path.Combine(folder.Path, "teacher.jsonl");
        var (code, output, err) = Cli.CliTests.Run("teacher", "--backend", TinyLlama, "--prompts", prompts, "--n", "3", "--out", outPath, "--seed", "1", "--json");
        Assert.Equal(0, code);
        Assert.Contains("teacher: ", err);
        int written = JsonNode.Parse(output)!["written"]!.GetValue<int>();
        IReadOnlyList<PromptItem> items = written == 0 ? [] : Datasets.ReadPromptSet(outPath);
        Assert.Equal(written, items.Count);
        Assert.All(items, i => Assert.InRange(i.References.Count, 1, 3));
        Assert.All(items.SelectMany(i => i.References), r => Assert.DoesNotContain('\n', r));

        var again = Cli.CliTests.Run("teacher", "--backend", TinyLlama, "--prompts", prompts, "--n", "3", "--out", outPath, "--json");
        Assert.Equal(written, JsonNode.Parse(again.Out)!["already_answered"]!.GetValue<int>());
    }
}
