using BabyPpo.Training;
using BabyPpo.Training.Ppo;
using BabyPpo.Training.Rewards;
using TorchSharp;

namespace BabyPpo.Tests.Ppo;

/// <summary>Whole PPO runs on a tiny model: it learns a toy reward, resumes exactly, and keeps tensors in check.</summary>
public sealed class PpoRunTests
{
    static readonly string TinyLlama = SharedData.Fixture("models", "tiny-llama");

    /// <summary>1 when the answer contains the text, else 0. tiny-llama babbles random sub-words, so a
    /// letter (in about a fifth of its answers at first) is the learnable analogue of a word.</summary>
    sealed class Contains(string text) : IReward
    {
        public string Name => $"contains-{text}";

        public RewardResult Score(IReadOnlyList<RewardInput> batch, CancellationToken cancellationToken = default) =>
            new(batch.Select(x => x.Chi.Contains(text, StringComparison.Ordinal) ? 1.0 : 0.0).ToArray(), new Dictionary<string, double>());
    }

    /// <summary>Reports synchronously on the training thread (Progress&lt;T&gt; would post to the thread pool).</summary>
    sealed class Collect(Action<PpoStepStats> onStep) : IProgress<PpoStepStats>
    {
        public void Report(PpoStepStats value) => onStep(value);
    }

    static RunSpec Spec(int steps, int checkpointEvery = 50) => new()
    {
        BaseModel = TinyLlama,
        PromptSet = "demo-prompts",
        Ppo = new PpoConfig { BatchSize = 8, MiniBatchSize = 4, PpoEpochs = 2, LearningRate = 1e-3 },
        Generation = new GenerationSettings { MaxNewTokens = 6, TopP = 1.0, BatchSize = 8 },
        Steps = steps,
        CheckpointEvery = checkpointEvery,
        Seed = 5,
    };

    static RunEnvironment Env(TempFolder folder) => new(Path.Combine(folder.Path, "run"), SharedData.Data(), SharedData.DemoData);

    /// <summary>Every metric of every step equal, timings aside: the second run resumed exactly.</summary>
    static void AssertSameMetrics(string uninterrupted, string resumed)
    {
        var a = PpoRun.ReadMetrics(uninterrupted);
        var b = PpoRun.ReadMetrics(resumed);
        Assert.Equal(a.Select(m => m["step"]), b.Select(m => m["step"]));
        foreach (var (x, y) in a.Zip(b))
            foreach (var key in x.Keys.Where(k => !k.StartsWith("time/", StringComparison.Ordinal)))
                Assert.True(x[key].Equals(y[key]), $"step {x["step"]} {key}: {x[key]} uninterrupted vs {y[key]} resumed");
    }

    [Fact]
    public void ToyRewardRisesWhileKlToTheReferenceStaysFinite()
    {
        using var folder = new TempFolder();
        var rewards = new List<double>();
        var kls = new List<double>();
        var spec = Spec(steps: 25) with
        {
            Ppo = new PpoConfig { BatchSize = 32, MiniBatchSize = 16, PpoEpochs = 4, LearningRate = 1e-3, InitKlCoef = 0.05 },
            Generation = new GenerationSettings { MaxNewTokens = 6, TopP = 1.0, BatchSize = 32 },
        };
        PpoRun.Run(spec, new Contains("b"), Env(folder), progress: new Collect(s =>
        {
            rewards.Add(s.Metrics["env/reward_mean"]);
            kls.Add(s.Metrics["objective/kl"]);
        }));
        double early = rewards.Take(5).Average(), late = rewards.TakeLast(5).Average();
        Assert.True(late > early + 0.3, $"mean reward rose only from {early:F2} (first 5 steps) to {late:F2} (last 5)");
        Assert.All(kls, kl => Assert.True(double.IsFinite(kl), $"KL {kl}"));
    }

    [Fact]
    public void ResumingFromACheckpointGivesTheSameMetricsAsAnUninterruptedRun()
    {
        using var straight = new TempFolder();
        using var interrupted = new TempFolder();
        var reward = new Contains("b");
        PpoRun.Run(Spec(steps: 4, checkpointEvery: 2), reward, Env(straight));

        using var cancel = new CancellationTokenSource();
        var first = PpoRun.Run(Spec(steps: 4, checkpointEvery: 2), reward, Env(interrupted),
            progress: new Collect(s => { if (s.Step == 3) cancel.Cancel(); }), cancellationToken: cancel.Token);
        Assert.True(first.Cancelled);
        Assert.Equal(3, first.StepsDone);
        var second = PpoRun.Run(Spec(steps: 4, checkpointEvery: 2), reward, Env(interrupted), resume: true);
        Assert.False(second.Cancelled);

        AssertSameMetrics(Env(straight).OutputFolder, Env(interrupted).OutputFolder);

        var weights = Path.Combine("final", "model.safetensors");
        Assert.Equal(File.ReadAllBytes(Path.Combine(Env(straight).OutputFolder, weights)), File.ReadAllBytes(Path.Combine(Env(interrupted).OutputFolder, weights)));
    }

    [Fact]
    public void ExtendingAFinishedRunGoesOnFromItsFinalFolderAsIfUninterrupted()
    {
        using var straight = new TempFolder();
        using var extended = new TempFolder();
        var reward = new Contains("b");
        PpoRun.Run(Spec(steps: 3), reward, Env(straight));
        PpoRun.Run(Spec(steps: 2), reward, Env(extended));

        var again = PpoRun.Run(Spec(steps: 2), reward, Env(extended), resume: true);   // finished: nothing to do
        Assert.Equal((2, false), (again.StepsDone, again.Cancelled));
        Assert.Equal(2, PpoRun.ReadMetrics(Env(extended).OutputFolder).Count);

        var longer = PpoRun.Run(Spec(steps: 3), reward, Env(extended), resume: true);
        Assert.Equal(3, longer.StepsDone);
        AssertSameMetrics(Env(straight).OutputFolder, Env(extended).OutputFolder);
    }

    [Fact]
    public void ResumingWithOtherTrainingSettingsIsRefusedNamingTheSetting()
    {
        using var folder = new TempFolder();
        PpoRun.Run(Spec(steps: 1), new Contains("b"), Env(folder));
        var changed = Spec(steps: 2) with { Ppo = Spec(1).Ppo with { LearningRate = 2e-3 } };
        var error = Assert.Throws<InputException>(() => PpoRun.Run(changed, new Contains("b"), Env(folder), resume: true));
        Assert.Contains("ppo.learningRate was 0.001, now 0.002", error.Message);
        Assert.Contains(PpoRun.SpecFile, error.Message);
    }

    /// <summary>A reward that cancels the run while it scores its nth batch, as Ctrl-C during a slow judge would.</summary>
    sealed class CancelWhileScoring(CancellationTokenSource cancel, int onCall) : IReward
    {
        int _calls;
        public string Name => "cancel-while-scoring";

        public RewardResult Score(IReadOnlyList<RewardInput> batch, CancellationToken cancellationToken = default)
        {
            if (++_calls == onCall) cancel.Cancel();
            cancellationToken.ThrowIfCancellationRequested();
            return new(new double[batch.Count], new Dictionary<string, double>());
        }
    }

    [Fact]
    public void CancellingWhileRewardingCheckpointsTheLastCompletedStep()
    {
        using var folder = new TempFolder();
        using var cancel = new CancellationTokenSource();
        var result = PpoRun.Run(Spec(steps: 5), new CancelWhileScoring(cancel, onCall: 3), Env(folder), cancellationToken: cancel.Token);
        Assert.True(result.Cancelled);
        Assert.Equal(2, result.StepsDone);
        Assert.Equal((2, result.FinalFolder), PpoRun.LatestCheckpoint(Env(folder).OutputFolder));
        Assert.Equal(2, PpoRun.ReadMetrics(Env(folder).OutputFolder).Count);
    }

    [Fact]
    public void TheSeedsPromptFilterKeepsOnlyLongerUtterances()
    {
        using var folder = new TempFolder();
        var samples = new List<PpoSample>();
        PpoRun.Run(Spec(steps: 1) with { MinPromptWords = 5, SampleRows = 8 }, new Contains("b"), Env(folder), progress: new Collect(s => samples.AddRange(s.Samples)));
        Assert.Equal(8, samples.Count);
        Assert.All(samples, s => Assert.True(s.Prompt.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length > 5, s.Prompt));
    }

    [Fact]
    public void LiveTensorCountDoesNotGrowAcrossSteps()
    {
        using var folder = new TempFolder();
        var live = new List<long>();
        PpoRun.Run(Spec(steps: 5), new Contains("b"), Env(folder),
            progress: new Collect(_ => live.Add(DisposeScopeManager.Statistics.ThreadTotalLiveCount)));
        Assert.Equal(5, live.Count);
        Assert.All(live.Skip(2), count => Assert.Equal(live[1], count));
    }
}
