using BabyPpo.Training;
using BabyPpo.Training.Rewards;

namespace BabyPpo.Tests.Rewards;

/// <summary>Reward specs, the factory, and weighted sums with and without running normalisation.</summary>
public sealed class RewardFactoryTests
{
    [Fact]
    public void ParsesNamesAndWeightsInOrder()
    {
        Assert.Equal([("bleu", 1.0)], Parse("bleu"));
        Assert.Equal([("bleu", 1.0), ("semsim", 1.0)], Parse("bleu+semsim"));
        Assert.Equal([("bleu", 0.5), ("semsim", 0.5)], Parse("bleu:0.5+semsim:0.5"));
        Assert.Equal([("score", -0.25), ("confidence", 2.0)], Parse(" Score:-0.25 + CONFIDENCE:2 "));
    }

    static (string, double)[] Parse(string spec) => RewardFactory.ParseSpec(spec).Select(kv => (kv.Key, kv.Value)).ToArray();

    [Theory]
    [InlineData("blue", "unknown reward 'blue'")]
    [InlineData("bleu:x", "no valid weight")]
    [InlineData("bleu:NaN", "no valid weight")]
    [InlineData("bleu+bleu:2", "appears twice")]
    [InlineData("", "unknown reward ''")]
    public void BadSpecsAreInputErrors(string spec, string problem) =>
        Assert.Contains(problem, Assert.Throws<InputException>(() => RewardFactory.ParseSpec(spec)).Message);

    [Fact]
    public void SingleUnitWeightGivesTheRewardItselfAndMissingBackendsAreNamed()
    {
        Assert.IsType<BleuReward>(RewardFactory.Create(RewardFactory.ParseSpec("bleu"), new RewardOptions()));
        Assert.IsType<CombinedReward>(RewardFactory.Create(RewardFactory.ParseSpec("bleu:2"), new RewardOptions()));
        Assert.Contains("--judge", Assert.Throws<InputException>(() => RewardFactory.Create(RewardFactory.ParseSpec("score"), new RewardOptions())).Message);
        Assert.Contains("--teacher", Assert.Throws<InputException>(() => RewardFactory.Create(RewardFactory.ParseSpec("confidence"), new RewardOptions())).Message);
    }

    [Fact]
    public void CombinedRewardIsTheWeightedSumOfItsParts()
    {
        // bleu: "the ball" vs "the red ball" → exp(1 − 3/2); judge: "4" → 4; 0.5·bleu + 0.25·score
        var options = new RewardOptions { Judge = new StubLlm(_ => "4") };
        var reward = RewardFactory.Create(RewardFactory.ParseSpec("bleu:0.5+score:0.25"), options);
        var result = reward.Score([new RewardInput("what is it", "the ball", ["the red ball"])]);
        Assert.Equal(0.5 * Math.Exp(-0.5) + 0.25 * 4, result.Values[0], 12);
        Assert.Equal(Math.Exp(-0.5), result.Metrics["bleu/mean"], 12);
        Assert.Equal(0.0, result.Metrics["score/unparseable"]);
        Assert.Equal("bleu:0.5+score:0.25", reward.Name);
    }

    [Fact]
    public void RunningNormalisationStandardisesEachPartOverEverythingSeen()
    {
        // bleu values: batch 1 → 1, 0; batch 2 → 0.5 (c = r = 2, one match).
        var reward = RewardFactory.Create(RewardFactory.ParseSpec("bleu:2"), new RewardOptions { RunningNormalisation = true });
        var first = reward.Score([new RewardInput("m", "a ball", ["a ball"]), new RewardInput("m", "dog", ["a ball"])]);
        // after {1, 0}: mean 0.5, sample std √0.5 → 2·(±0.5)/√0.5 = ±√2
        Assert.Equal(Math.Sqrt(2), first.Values[0], 12);
        Assert.Equal(-Math.Sqrt(2), first.Values[1], 12);
        var second = reward.Score([new RewardInput("m", "a cat", ["a ball"])]);
        // after {1, 0, 0.5}: mean 0.5 → 2·0/std = 0
        Assert.Equal(0.0, second.Values[0], 12);
        var third = reward.Score([new RewardInput("m", "a ball", ["a ball"])]);
        // after {1, 0, 0.5, 1}: mean 0.625, sample variance (0.140625 + 0.390625 + 0.015625 + 0.140625)/3 = 0.229166…
        Assert.Equal(2 * (1 - 0.625) / Math.Sqrt(0.6875 / 3), third.Values[0], 12);
    }
}
