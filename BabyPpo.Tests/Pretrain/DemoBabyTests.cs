using BabyPpo.Training.Inference;
using BabyPpo.Training.Model;
using BabyPpo.Training.Pretrain;

namespace BabyPpo.Tests.Pretrain;

/// <summary>The baby that ships in <c>models/demo-baby</c>: it loads, it answers a mother's turn, and its card says how it was made.</summary>
public sealed class DemoBabyTests
{
    static readonly string Folder = Path.Combine(RepositoryRoot(), "models", "demo-baby");

    static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "BabyPpo.sln"))) return dir.FullName;
        throw new DirectoryNotFoundException($"no BabyPpo.sln above {AppContext.BaseDirectory}");
    }

    [Fact]
    public void TheDemoBabyAnswersAMotherTurnWithAShortChildTurnThatEnds()
    {
        using var baby = Checkpoint.Load(Folder);
        var generator = new Generator(baby.Model, baby.Tokenizer);
        string[] prompts = ["*MOT: do you want some milk ? *CHI:", "*MOT: where is the ball ? *CHI:", "*MOT: what is that ? *CHI:"];

        var greedy = generator.Generate(prompts, new SamplingOptions { Greedy = true, MaxNewTokens = 30 });
        var sampled = generator.Generate(prompts, new SamplingOptions { TopP = 0.9, Seed = 1, MaxNewTokens = 30 });

        foreach (var completion in greedy.Concat(sampled))
        {
            Assert.False(string.IsNullOrWhiteSpace(completion.Text));
            Assert.DoesNotContain("*MOT", completion.Text);   // it answers as the child; it does not take the mother's turn
        }
        // The child's turn ends: the baby closes it with </s> well before 30 tokens.
        Assert.All(greedy, c => Assert.Equal(FinishReason.Eos, c.FinishReason));
    }

    [Fact]
    public void TheDemoBabyIsAFewMegabytesOfHuggingFaceFiles()
    {
        foreach (var file in new[] { "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "MODEL_CARD.md" })
            Assert.True(File.Exists(Path.Combine(Folder, file)), file);
        long bytes = Directory.GetFiles(Folder).Sum(f => new FileInfo(f).Length);
        Assert.InRange(bytes, 1_000_000, 8_000_000);
        var config = LlamaConfig.Load(Folder);
        Assert.Equal(Training.Text.Tokenizer.Load(Folder).VocabSize, config.VocabSize);
    }

    [Fact]
    public void TheModelCardNamesTheDataItWasTrainedOnAndTheCommand()
    {
        var card = File.ReadAllText(Path.Combine(Folder, "MODEL_CARD.md"));

        Assert.Contains(PretrainCorpus.Sha256(SharedData.Data("dialogue", "train.json")), card);
        Assert.Contains("./babyppo pretrain --data ../shared/data/dialogue/train.json", card);
    }
}
