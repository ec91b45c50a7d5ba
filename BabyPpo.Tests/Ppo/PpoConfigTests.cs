using BabyPpo.Training;
using BabyPpo.Training.Ppo;

namespace BabyPpo.Tests.Ppo;

public sealed class PpoConfigTests
{
    [Fact]
    public void DefaultsAreTrl086PpoConfigDefaults()
    {
        var c = new PpoConfig();
        Assert.Equal((1.41e-5, 128, 128, 4), (c.LearningRate, c.BatchSize, c.MiniBatchSize, c.PpoEpochs));
        Assert.Equal((0.2, 6.0, 10000.0), (c.InitKlCoef, c.Target, c.Horizon));
        Assert.Equal((1.0, 0.95, 0.2, 0.2, 0.1, 10.0, 0), (c.Gamma, c.Lam, c.ClipRange, c.ClipRangeValue, c.VfCoef, c.RatioThreshold, c.Seed));
        Assert.True(c.AdaptiveKlControl);
        Assert.Equal(KlPenalty.Kl, c.KlPenalty);
    }

    [Fact]
    public void TrlStyleJsonSetsFieldsByTrlNamesAndKeepsTheRestAtDefaults()
    {
        var c = PpoConfig.FromTrlJson("""{"learning_rate": 1e-3, "batch_size": 16, "mini_batch_size": 4, "cliprange": 0.3, "adap_kl_ctrl": false, "kl_penalty": "abs", "log_with": "wandb"}""");
        Assert.Equal((1e-3, 16, 4, 0.3), (c.LearningRate, c.BatchSize, c.MiniBatchSize, c.ClipRange));
        Assert.False(c.AdaptiveKlControl);
        Assert.Equal(KlPenalty.Abs, c.KlPenalty);
        Assert.Equal(4, c.PpoEpochs);
    }

    [Fact]
    public void EveryProblemIsListedWithTheSettingsItReadsAndValidateThrowsTheFirst()
    {
        var config = new PpoConfig { BatchSize = 4, MiniBatchSize = 3, LearningRate = -1, Gamma = 2, ClipRangeValue = 0 };
        Assert.Equal(
            [["batchSize", "miniBatchSize", "gradientAccumulationSteps"], ["learningRate"], ["gamma"], ["clipRangeValue"]],
            config.Problems().Select(p => p.Fields.ToArray()));
        Assert.Equal("ppo config: batch_size (4) must be a multiple of mini_batch_size × gradient_accumulation_steps (3)",
            Assert.Throws<InputException>(config.Validate).Message);
        var spec = new RunSpec { BaseModel = "m", Steps = 1, Ppo = config, CheckpointEvery = 0, Generation = new GenerationSettings { TopP = 2 } };
        Assert.Equal(["checkpointEvery", "ppo.batchSize", "ppo.learningRate", "ppo.gamma", "ppo.clipRangeValue", "generation.topP"],
            spec.Problems().Select(p => p.Fields[0]));
    }

    [Fact]
    public void UnknownSettingsAndInconsistentBatchSizesAreRefusedNamingTheFile()
    {
        var unknown = Assert.Throws<InputException>(() => PpoConfig.FromTrlJson("""{"learnin_rate": 1e-3}""", "my.json"));
        Assert.Contains("my.json", unknown.Message);
        Assert.Contains("learnin_rate", unknown.Message);
        var sizes = Assert.Throws<InputException>(() => PpoConfig.FromTrlJson("""{"batch_size": 10, "mini_batch_size": 4}""", "my.json"));
        Assert.Contains("multiple", sizes.Message);
    }
}
