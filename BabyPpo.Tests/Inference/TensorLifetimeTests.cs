using BabyPpo.Training.Inference;
using TorchSharp;

namespace BabyPpo.Tests.Inference;

/// <summary>Generation and scoring free every tensor they create: the live count does not grow across runs.</summary>
public sealed class TensorLifetimeTests : IClassFixture<TinyLlamaFixture>
{
    readonly TinyLlamaFixture _tiny;

    public TensorLifetimeTests(TinyLlamaFixture tiny) => _tiny = tiny;

    [Fact]
    public void RepeatedGenerationAndScoringLeaveNoLiveTensorsBehind()
    {
        var prompts = new[] { "*MOT: what is that ? *CHI:", "*MOT: look at the", "the" };
        var scorer = new Scorer(_tiny.Model, _tiny.Tokenizer, new ScorerOptions { BowCorrection = true, MaxBatchTokens = 16 });
        void Work()
        {
            _tiny.Generator.Generate(prompts, new SamplingOptions { MaxNewTokens = 6, Seed = 1, TopP = 0.9 });
            _tiny.Generator.Generate(prompts, new SamplingOptions { MaxNewTokens = 4, Greedy = true, UseKvCache = false });
            scorer.ScoreTexts(prompts);
            scorer.ScoreContinuations([("*MOT: hi", " *CHI: hi .")]);
            scorer.ScoreTextPairs([("where is the way ?", "where is the ways ?"), ("the dog", "the dog can run .")]);
        }

        Work();                                                    // warm-up: lazily created state may appear once
        long baseline = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        for (int i = 0; i < 3; i++)
        {
            Work();
            Assert.Equal(baseline, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
        }
    }
}
