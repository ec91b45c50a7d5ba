using System.Text.Json.Nodes;
using BabyPpo.Tests.Data;
using BabyPpo.Training;
using BabyPpo.Training.Model;
using BabyPpo.Training.Pretrain;
using BabyPpo.Training.Text;
using TorchSharp;

namespace BabyPpo.Tests.Pretrain;

/// <summary>A small made-up dialogue (no CHILDES text), patterned enough for a tiny model to learn in seconds.</summary>
internal static class TinyDialogue
{
    static readonly string[] Things = ["ball", "cup", "dog", "book", "milk", "car", "hat", "shoe", "duck", "spoon", "bear", "apple"];
    static readonly string[] Asks = ["do you want the {0} ?", "where is the {0} ?", "look at the {0} .", "can you find the {0} ?", "is that a {0} ?"];
    static readonly string[] Replies = ["{0} !", "my {0} .", "I want {0} .", "there {0} .", "no {0} ."];

    public static IReadOnlyList<(string Prompt, string Chosen)> Exchanges(int count) =>
        Enumerable.Range(0, count).Select(i =>
        {
            var thing = Things[i * 7 % Things.Length];
            return ("*MOT: " + string.Format(Asks[i % Asks.Length], thing), "*CHI: " + string.Format(Replies[i * 3 % Replies.Length], thing));
        }).ToList();

    /// <summary>Writes a dialogue pair file (train.json's format) and returns its path.</summary>
    public static string Write(TempFolder folder, int count = 120, string name = "train.json")
    {
        var array = new JsonArray(Exchanges(count).Select(e => (JsonNode)new JsonObject
        {
            ["prompt"] = e.Prompt,
            ["chosen"] = e.Chosen,
            ["rejected"] = "*CHI: no .",
        }).ToArray());
        return folder.Write(name, array.ToJsonString());
    }
}

public sealed class PretrainTests
{
    internal static PretrainConfig TinyConfig => new()
    {
        Steps = 8, BatchSize = 4, BlockSize = 32, LearningRate = 3e-3, MinLearningRate = 3e-4, WarmupSteps = 2,
        EvalEvery = 4, EvalBlocks = 0, CheckpointEvery = 4, HeldOutFraction = 0.1, Seed = 3,
    };

    internal static PretrainRequest Request(string data, string output, PretrainConfig config) => new()
    {
        DataPath = data, OutputFolder = output, Model = "tiny", VocabSize = 300, Config = config,
    };

    [Fact]
    public void TrainingLossFallsOnATinyCorpusWithinAFewHundredSteps()
    {
        using var folder = new TempFolder();
        var data = TinyDialogue.Write(folder);
        var config = TinyConfig with { Steps = 200, BatchSize = 8, WarmupSteps = 20, EvalEvery = 50, CheckpointEvery = 0 };

        var result = Pretrainer.Run(Request(data, Path.Combine(folder.Path, "out"), config));

        double first = result.Log[0].Loss;
        double last = result.Log.TakeLast(10).Average(e => e.Loss);
        Assert.True(first > 5.0, $"a fresh model of 300 tokens should start near ln 300 ≈ 5.7, got {first:F3}");
        Assert.True(last < 1.0, $"training loss went from {first:F3} to {last:F3}");
        var heldOut = result.Log.Where(e => e.HeldOutLoss is not null).Select(e => e.HeldOutLoss!.Value).ToList();
        Assert.Equal(4, heldOut.Count);
        Assert.True(heldOut[^1] < heldOut[0] && heldOut[^1] < 1.0, $"held-out loss: {string.Join(", ", heldOut.Select(h => h.ToString("F3")))}");
    }

    [Fact]
    public void ResumingFromACheckpointGivesTheParametersOfAnUninterruptedRun()
    {
        using var folder = new TempFolder();
        var data = TinyDialogue.Write(folder);
        string straight = Path.Combine(folder.Path, "straight"), interrupted = Path.Combine(folder.Path, "interrupted");

        var uninterrupted = Pretrainer.Run(Request(data, straight, TinyConfig));

        using (var cancel = new CancellationTokenSource())
        {
            var stopAfterThree = new SyncProgress(p => { if (p.Step == 3) cancel.Cancel(); });
            Assert.Throws<OperationCanceledException>(() => Pretrainer.Run(Request(data, interrupted, TinyConfig), stopAfterThree, cancel.Token));
        }
        Assert.EndsWith("step-000003", Pretrainer.LatestCheckpoint(interrupted));   // cancellation checkpoints the last step
        Assert.False(File.Exists(Path.Combine(interrupted, "model.safetensors")));
        var resumed = Pretrainer.Run(Request(data, interrupted, TinyConfig) with { Resume = true });

        Assert.Equal(File.ReadAllBytes(Path.Combine(straight, "model.safetensors")), File.ReadAllBytes(Path.Combine(interrupted, "model.safetensors")));
        Assert.Equal(
            File.ReadAllBytes(Path.Combine(straight, "checkpoints", "step-000008", "optimizer.safetensors")),
            File.ReadAllBytes(Path.Combine(interrupted, "checkpoints", "step-000008", "optimizer.safetensors")));
        Assert.Equal(uninterrupted.Log, resumed.Log);
        Assert.Equal(8, resumed.Steps);
    }

    [Fact]
    public void TheSameSeedGivesTheSameModelAndAnotherSeedAnotherOne()
    {
        using var folder = new TempFolder();
        var data = TinyDialogue.Write(folder);
        var config = TinyConfig with { Steps = 3, CheckpointEvery = 0 };
        string Weights(string name, long seed)
        {
            Pretrainer.Run(Request(data, Path.Combine(folder.Path, name), config with { Seed = seed }));
            return Convert.ToHexString(File.ReadAllBytes(Path.Combine(folder.Path, name, "model.safetensors")));
        }

        var first = Weights("a", 1);
        Assert.Equal(first, Weights("b", 1));
        Assert.NotEqual(first, Weights("c", 2));
    }

    [Fact]
    public void TheOutputFolderIsAModelThatLoadsAndKeepsOnlyTheNewestCheckpoints()
    {
        using var folder = new TempFolder();
        var data = TinyDialogue.Write(folder);
        var output = Path.Combine(folder.Path, "out");

        Pretrainer.Run(Request(data, output, TinyConfig with { Steps = 10, CheckpointEvery = 3, KeepCheckpoints = 2 }));

        using var pretrained = Checkpoint.Load(output);
        Assert.Equal(300, pretrained.Tokenizer.VocabSize);
        Assert.Equal(300, pretrained.Model.Config.VocabSize);
        Assert.Equal(["step-000009", "step-000010"], Directory.GetDirectories(Path.Combine(output, "checkpoints")).Select(Path.GetFileName).Order());
        Assert.Empty(Directory.GetDirectories(output, ".*", SearchOption.AllDirectories));
        foreach (var file in new[] { "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "optimizer.safetensors", "trainer_state.json" })
            Assert.True(File.Exists(Path.Combine(output, "checkpoints", "step-000010", file)), file);
        var log = JsonNode.Parse(File.ReadAllText(Path.Combine(output, "training_log.json")))!;
        Assert.Equal(10, log["log"]!.AsArray().Count);
        Assert.Equal(PretrainCorpus.Sha256(data), log["data_sha256"]!.GetValue<string>());
    }

    [Fact]
    public void AHalfWrittenCheckpointIsIgnoredOnResume()
    {
        using var folder = new TempFolder();
        var data = TinyDialogue.Write(folder);
        var output = Path.Combine(folder.Path, "out");
        Pretrainer.Run(Request(data, output, TinyConfig with { Steps = 4 }));
        // What a crash during the next checkpoint leaves: a temporary folder, and a step folder without its state file.
        Directory.CreateDirectory(Path.Combine(output, "checkpoints", ".step-000006.tmp-0123"));
        File.WriteAllText(Path.Combine(output, "checkpoints", ".step-000006.tmp-0123", "config.json"), "{");
        Directory.CreateDirectory(Path.Combine(output, "checkpoints", "step-000005"));

        Assert.EndsWith("step-000004", Pretrainer.LatestCheckpoint(output));
        var resumed = Pretrainer.Run(Request(data, output, TinyConfig with { Steps = 6 }) with { Resume = true });
        Assert.Equal(6, resumed.Steps);
    }

    [Fact]
    public void ResumingOnOtherDataIsRefused()
    {
        using var folder = new TempFolder();
        var output = Path.Combine(folder.Path, "out");
        Pretrainer.Run(Request(TinyDialogue.Write(folder), output, TinyConfig with { Steps = 4 }));
        var other = TinyDialogue.Write(folder, count: 100, name: "other.json");

        var error = Assert.Throws<InputException>(() => Pretrainer.Run(Request(other, output, TinyConfig with { Steps = 6 }) with { Resume = true }));
        Assert.Contains("SHA-256", error.Message);
    }

    [Fact]
    public void AFreshRunIntoAFolderWithCheckpointsIsRefused()
    {
        using var folder = new TempFolder();
        var data = TinyDialogue.Write(folder);
        var output = Path.Combine(folder.Path, "out");
        Pretrainer.Run(Request(data, output, TinyConfig with { Steps = 4 }));

        var error = Assert.Throws<InputException>(() => Pretrainer.Run(Request(data, output, TinyConfig with { Steps = 4 })));
        Assert.Contains("--resume", error.Message);
    }

    [Fact]
    public void TrainingStepsLeaveNoTensorsAlive()
    {
        var tokenizer = BpeTrainer.Train(TinyDialogue.Exchanges(60).Select(e => $"{e.Prompt} {e.Chosen}"), new BpeTrainerOptions { VocabSize = 300 }).Tokenizer;
        var documents = TinyDialogue.Exchanges(60).Select(e => $"{e.Prompt} {e.Chosen}").ToList();
        var config = TinyConfig with { EvalBlocks = 2 };
        var train = PackedBlocks.Pack(tokenizer, documents.Skip(6), config.BlockSize);
        var heldOut = PackedBlocks.Pack(tokenizer, documents.Take(6), config.BlockSize, keepPartial: true);
        using var model = CausalLM.Initialise(ModelPresets.Resolve("tiny", tokenizer.VocabSize), seed: 0);
        using var trainer = new Pretrainer(model, tokenizer, train, heldOut, config);

        trainer.TrainNextStep();                      // the first step creates the gradients
        trainer.HeldOutLoss();
        long baseline = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        for (int i = 0; i < 4; i++)
        {
            trainer.TrainNextStep();
            trainer.HeldOutLoss();
            Assert.Equal(baseline, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
        }
    }

    [Fact]
    public void ABlockLargerThanTheModelsContextIsRefused()
    {
        using var folder = new TempFolder();
        var data = TinyDialogue.Write(folder);

        var error = Assert.Throws<InputException>(() => Pretrainer.Run(Request(data, Path.Combine(folder.Path, "out"), TinyConfig with { BlockSize = 65 })));
        Assert.Contains("context of 64", error.Message);
    }

    /// <summary>Reports on the training thread (Progress&lt;T&gt; would post to the thread pool).</summary>
    sealed class SyncProgress(Action<PretrainProgress> report) : IProgress<PretrainProgress>
    {
        public void Report(PretrainProgress value) => report(value);
    }
}

public sealed class PretrainDataTests
{
    [Fact]
    public void DialoguePairsBecomeOneMotherChildExchangePerDocument()
    {
        using var folder = new TempFolder();
        var path = folder.Write("pairs.json", """[{"prompt": "*MOT: what is that ?", "chosen": "*CHI: a dog .", "rejected": "*CHI: no ."}]""");

        Assert.Equal(["*MOT: what is that ? *CHI: a dog ."], PretrainCorpus.ReadDocuments(path));
    }

    [Fact]
    public void ChildesTextBecomesOneDocumentPerExchangeEndingWithTheChildsReplies()
    {
        using var folder = new TempFolder();
        var path = folder.Write("talk.txt", "*MOT: look .\n\n*CHI: doggie !\n*CHI: dog .\n*FAT: yes , a dog .\n*MOT: a big one .\n*CHI: big !\n");

        Assert.Equal(["*MOT: look . *CHI: doggie ! *CHI: dog .", "*FAT: yes , a dog . *MOT: a big one . *CHI: big !"], PretrainCorpus.ReadDocuments(path));
    }

    [Fact]
    public void AMonologueIsCutIntoDocumentsOfAtMostSixteenTurns()
    {
        using var folder = new TempFolder();
        var path = folder.Write("story.txt", string.Concat(Enumerable.Range(0, 40).Select(i => $"*MOT: line {i} .\n")));

        var documents = PretrainCorpus.ReadDocuments(path);
        Assert.Equal([16, 16, 8], documents.Select(d => d.Split("*MOT:").Length - 1));
        Assert.StartsWith("*MOT: line 16 .", documents[1]);
    }

    [Fact]
    public void PretrainingRunsOnAChatTranscript()
    {
        using var folder = new TempFolder();
        var lines = new List<string> { "@UTF8", "@Begin", "@Participants:\tCHI Target_Child, MOT Mother" };
        for (int i = 0; i < 30; i++)
        {
            lines.Add($"*MOT:\twhere is the ball {i} ? \u0015{1000 * i}_{1000 * i + 900}\u0015");
            lines.Add("%mor:\tadv|where cop|be&3S det|the n|ball ?");
            lines.Add($"*CHI:\tthere ball {i}");
            lines.Add("\t.");
        }
        lines.Add("@End");
        var path = folder.Write("talk.cha", string.Join("\n", lines) + "\n");

        var documents = PretrainCorpus.ReadDocuments(path);
        Assert.Equal(30, documents.Count);
        Assert.Equal("*MOT: where is the ball 0 ? *CHI: there ball 0 .", documents[0]);
        var result = Pretrainer.Run(PretrainTests.Request(path, Path.Combine(folder.Path, "out"), PretrainTests.TinyConfig with { Steps = 3, CheckpointEvery = 0, EvalEvery = 0 }));
        Assert.Equal(3, result.Steps);
        Assert.True(double.IsFinite(result.HeldOutLoss), $"held-out loss {result.HeldOutLoss}");
    }

    [Fact]
    public void TheEvaluationSetsAreRefused()
    {
        var error = Assert.Throws<InputException>(() => PretrainCorpus.ReadDocuments(SharedData.Data("dialogue", "eval_words.json")));
        Assert.Contains("evaluation set", error.Message);
    }

    [Fact]
    public void PackedBlocksOverlapByOneSoThatEveryTokenIsATargetOnce()
    {
        var tokenizer = Tokenizer.Load(SharedData.Fixture("tokenizers", "bytelevel-bpe"));
        var documents = new[] { "*MOT: where is the ball ? *CHI: there .", "*MOT: look ! *CHI: a duck .", "*MOT: yes ." };
        var stream = documents.SelectMany(d => new[] { 1 }.Concat(tokenizer.Encode(d, addSpecialTokens: false)).Append(2)).ToList();

        var blocks = PackedBlocks.Pack(tokenizer, documents, blockSize: 5);
        var partial = PackedBlocks.Pack(tokenizer, documents, blockSize: 5, keepPartial: true);

        Assert.Equal((stream.Count - 1) / 5, blocks.Count);
        var targets = Enumerable.Range(0, partial.Count).SelectMany(i => partial.Block(i)[1..].ToArray()).ToList();
        Assert.Equal(stream.Skip(1), targets);
        Assert.All(Enumerable.Range(0, blocks.Count), i => Assert.Equal(stream.Skip(i * 5).Take(6), blocks.Block(i).ToArray()));
    }

    [Fact]
    public void TheHeldOutSplitIsSeededAndDisjoint()
    {
        var documents = Enumerable.Range(0, 100).Select(i => $"doc {i}").ToList();

        var (train, heldOut) = PretrainCorpus.Split(documents, 0.1, seed: 5);
        var again = PretrainCorpus.Split(documents, 0.1, seed: 5);
        var other = PretrainCorpus.Split(documents, 0.1, seed: 6);

        Assert.Equal(10, heldOut.Count);
        Assert.Equal(documents.Order(), train.Concat(heldOut).Order());
        Assert.Equal(heldOut, again.HeldOut);
        Assert.NotEqual(heldOut, other.HeldOut);
    }

    [Fact]
    public void EveryEpochVisitsEveryBlockOnceInASeededOrder()
    {
        var order = new DataOrder(blocks: 10, batchSize: 4, seed: 1);

        var firstTwoEpochs = Enumerable.Range(0, 5).SelectMany(order.BlocksOf).ToList();   // 20 blocks = 2 epochs

        Assert.Equal(Enumerable.Range(0, 10), firstTwoEpochs.Take(10).Order());
        Assert.Equal(Enumerable.Range(0, 10), firstTwoEpochs.Skip(10).Order());
        Assert.NotEqual(firstTwoEpochs.Take(10), firstTwoEpochs.Skip(10));
        Assert.Equal(firstTwoEpochs.Skip(12).Take(4), new DataOrder(10, 4, seed: 1).BlocksOf(3));   // a fresh order (a resume) agrees
    }

    [Fact]
    public void TheLearningRateWarmsUpLinearlyThenDecaysByCosineToTheMinimum()
    {
        var config = new PretrainConfig { Steps = 111, WarmupSteps = 10, LearningRate = 1e-3, MinLearningRate = 1e-4 };

        Assert.Equal(1e-4, LearningRateSchedule.At(0, config), 12);     // (step + 1) / warm-up of the peak
        Assert.Equal(5e-4, LearningRateSchedule.At(4, config), 12);
        Assert.Equal(1e-3, LearningRateSchedule.At(10, config), 12);    // the peak, where the decay starts
        Assert.Equal(5.5e-4, LearningRateSchedule.At(60, config), 12);  // half-way through the 100 decay steps
        Assert.Equal(1e-4, LearningRateSchedule.At(110, config), 12);   // the last step
    }
}
