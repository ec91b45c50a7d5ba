using BabyPpo.Training.Rewards;

namespace BabyPpo.Tests.Rewards;

/// <summary>
/// all-MiniLM-L6-v2 similarities against the published sentence-transformers example (the model
/// card's cosine similarities, ±0.005), and the reward's batching and edge cases.
/// </summary>
public sealed class SemanticSimilarityRewardTests
{
    const string Weather = "The weather is lovely today.", Sunny = "It's so sunny outside!", Stadium = "He drove to the stadium.";

    [Theory]
    [InlineData(Weather, Sunny, 0.6660)]
    [InlineData(Weather, Stadium, 0.1046)]
    [InlineData(Sunny, Stadium, 0.1411)]
    public void PublishedPairsMatch(string a, string b, double published) =>
        Assert.Equal(published, SemanticSimilarityReward.Cosine(a, b), 0.005);

    [Fact]
    public void EmbeddingsHaveUnitLengthAndDoNotDependOnTheBatch()
    {
        string[] texts = [Weather, Sunny, Stadium, "a ball", "mummy look a big red bus going past the window"];
        var together = SemanticSimilarityReward.Embed(texts, batchSize: 256);
        var oneByOne = SemanticSimilarityReward.Embed(texts, batchSize: 1);
        for (int i = 0; i < texts.Length; i++)
        {
            Assert.Equal(384, together[i].Length);
            Assert.Equal(1.0, together[i].Sum(x => (double)x * x), 1e-4);
            for (int d = 0; d < 384; d++) Assert.Equal(oneByOne[i][d], together[i][d], 1e-4);
        }
    }

    [Fact]
    public void RewardIsTheCosineWithEachReferenceAggregatedInBatchOrder()
    {
        var batch = new[]
        {
            new RewardInput("what a day", Weather, [Sunny, Stadium]),
            new RewardInput("where did he go", Stadium, [Stadium]),
            new RewardInput("what is it", Sunny, [Stadium]),
        };
        var result = new SemanticSimilarityReward(ReferenceAggregation.Mean, batchSize: 2).Score(batch);
        Assert.Equal((0.6660 + 0.1046) / 2, result.Values[0], 0.005);
        Assert.Equal(1.0, result.Values[1], 1e-4);                        // an answer equal to the reference
        Assert.Equal(0.1411, result.Values[2], 0.005);
        Assert.Equal(0.6660, new SemanticSimilarityReward(ReferenceAggregation.Max).Score([batch[0]]).Values[0], 0.005);
        Assert.Equal(result.Values.Average(), result.Metrics["semsim/mean"], 12);
    }

    [Theory]
    [InlineData("")]
    [InlineData("  \n")]
    public void BlankAnswerScoresZero(string answer) =>
        Assert.Equal(0.0, new SemanticSimilarityReward().Score([new RewardInput("what is it", answer, [Sunny])]).Values[0]);

    [Fact]
    public void PunctuationOnlyAndUnicodeAnswersGetAScore()
    {
        var result = new SemanticSimilarityReward().Score(
        [
            new RewardInput("what is it", "?!", [Sunny]),
            new RewardInput("what is it", "It’s reaaally sunny ☀️ outside", [Sunny]),
        ]);
        Assert.All(result.Values, v => Assert.InRange(v, -1.0, 1.0));
        Assert.True(result.Values[1] > result.Values[0], $"a sunny answer with unicode ({result.Values[1]}) should be closer to \"{Sunny}\" than \"?!\" ({result.Values[0]})");
    }
}
