using BabyPpo.Training;
using BabyPpo.Training.Rewards;
using static TorchSharp.torch;

namespace BabyPpo.Tests.Rewards;

/// <summary>The tiny-llama checkpoint as an in-process teacher, loaded once per test class.</summary>
public sealed class TinyTeacherFixture : IDisposable
{
    public LocalLlmBackend Teacher { get; } = new(SharedData.Fixture("models", "tiny-llama"));

    public void Dispose() => Teacher.Dispose();
}

/// <summary>The confidence reward: rank = #(references with lp ≤ lp(answer)) / N, reward = 2·rank − 1.</summary>
public sealed class ConfidenceRewardTests : IClassFixture<TinyTeacherFixture>
{
    readonly LocalLlmBackend _teacher;

    public ConfidenceRewardTests(TinyTeacherFixture fixture) => _teacher = fixture.Teacher;

    [Fact]
    public void RanksTheAnswerAmongTheReferencesBySummedLogProbability()
    {
        // lp: r1 −5, r2 −2, r3 −10, r4 −3; answer −3 → r1, r3, r4 are ≤ −3 → rank 3/4 → 2·0.75 − 1 = 0.5
        var table = new Dictionary<string, double> { ["r1"] = -5, ["r2"] = -2, ["r3"] = -10, ["r4"] = -3, ["answer"] = -3 };
        var teacher = new StubLlm(score: (_, x) => new ContinuationScore(table[x], 1));
        var result = new ConfidenceReward(teacher).Score([new RewardInput("what is that?", "answer", ["r1", "r2", "r3", "r4"])]);
        Assert.Equal(0.5, result.Values[0], 12);
        Assert.All(Assert.Single(teacher.ScoreCalls), pair => Assert.Equal("what is that? ", pair.Context));
    }

    [Fact]
    public void LengthNormalisedVariantRanksTheMeanPerToken()
    {
        // (sum, tokens): r1 (−6, 3) → −2, r2 (−2, 1) → −2, r3 (−10, 2) → −5, r4 (−3, 1) → −3, answer (−4, 4) → −1.
        // Summed: −4 ≥ r1, r3 → rank 2/4 → 0. Per token: −1 ≥ all four → rank 1 → 1.
        var table = new Dictionary<string, ContinuationScore>
        {
            ["r1"] = new(-6, 3), ["r2"] = new(-2, 1), ["r3"] = new(-10, 2), ["r4"] = new(-3, 1), ["answer"] = new(-4, 4),
        };
        var teacher = new StubLlm(score: (_, x) => table[x]);
        var input = new RewardInput("mummy", "answer", ["r1", "r2", "r3", "r4"]);
        Assert.Equal(0.0, new ConfidenceReward(teacher, ConfidenceVariant.Sum).Score([input]).Values[0], 12);
        Assert.Equal(1.0, new ConfidenceReward(teacher, ConfidenceVariant.MeanPerToken).Score([input]).Values[0], 12);
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    public void BlankAnswerGetsMinusHalfWithoutAskingForIt(string answer)
    {
        var teacher = new StubLlm(score: (_, x) => x == "r1" ? new ContinuationScore(-1, 1) : throw new InvalidOperationException($"asked to score '{x}'"));
        var result = new ConfidenceReward(teacher).Score([new RewardInput("hi", answer, ["r1"])]);
        Assert.Equal(-0.5, result.Values[0]);
        Assert.Equal(1.0, result.Metrics["confidence/empty"]);
    }

    [Fact]
    public void PunctuationOnlyAndUnicodeAnswersAreScoredNotTreatedAsEmpty()
    {
        // lp: r1 −4, r2 −1; "?!" −2 ≥ r1 → rank 1/2 → 0; "café 🎈" −0.5 ≥ both → rank 1 → 1.
        var table = new Dictionary<string, double> { ["r1"] = -4, ["r2"] = -1, ["?!"] = -2, ["café 🎈"] = -0.5 };
        var teacher = new StubLlm(score: (_, x) => new ContinuationScore(table[x], 1));
        var result = new ConfidenceReward(teacher).Score([new RewardInput("hi", "?!", ["r1", "r2"]), new RewardInput("hi", "café 🎈", ["r1", "r2"])]);
        Assert.Equal([0.0, 1.0], result.Values);
        Assert.Equal(0.0, result.Metrics["confidence/empty"]);
    }

    [Fact]
    public void ReferenceScoresAreCachedAcrossBatches()
    {
        var teacher = new StubLlm(score: (_, x) => new ContinuationScore(-x.Length, x.Length));
        var reward = new ConfidenceReward(teacher);
        var first = reward.Score([new RewardInput("hi", "abc", ["a", "abcd"])]);
        var second = reward.Score([new RewardInput("hi", "ab", ["a", "abcd"])]);
        Assert.Equal(3, teacher.ScoreCalls[0].Count);                 // answer and both references
        Assert.Equal([("hi ", "ab")], teacher.ScoreCalls[1]);         // only the new answer
        Assert.Equal(0.0, first.Values[0], 12);                       // −3 ≥ −4 only → 1/2 → 0
        Assert.Equal(0.0, second.Values[0], 12);                      // −2 ≥ −4 only → 1/2 → 0
    }

    [Fact]
    public void TinyTeacherRanksMatchLogProbabilitiesComputedIndependently()
    {
        const string mot = "what is that ?";
        string[] references = ["it is a ball .", "a dog .", "the the the", "look !", "yes"];
        var lps = references.ToDictionary(r => r, r => IndependentLogProb(mot + " ", r));
        var ordered = references.OrderBy(r => lps[r]).ToArray();      // ascending log-probability
        Assert.True(ordered.Select(r => lps[r]).Distinct().Count() == references.Length, "the hand-built case needs distinct log-probabilities");

        var reward = new ConfidenceReward(_teacher);
        var batch = new[]
        {
            new RewardInput(mot, ordered[^1], references),   // the most likely reference: every lp ≤ it → rank 5/5 → 1
            new RewardInput(mot, ordered[0], references),    // the least likely: only itself → rank 1/5 → −0.6
            new RewardInput(mot, ordered[2], references),    // the middle one: 3/5 → 0.2
            new RewardInput(mot, "", references),            // blank → −0.5
        };
        var values = reward.Score(batch).Values;
        Assert.Equal([1.0, -0.6, 0.2, -0.5], values.Select(v => Math.Round(v, 12)));

        // An answer outside the references: its rank from the independent log-probabilities.
        const string answer = "a ball";
        double lp = IndependentLogProb(mot + " ", answer);
        double expected = 2.0 * references.Count(r => lps[r] <= lp) / references.Length - 1;
        Assert.Equal(expected, reward.Score([new RewardInput(mot, answer, references)]).Values[0], 12);

        var scores = _teacher.ScoreContinuations(references.Select(r => (mot + " ", r)).ToList());
        for (int i = 0; i < references.Length; i++) Assert.Equal(lps[references[i]], scores[i].LogProb, 1e-4);
    }

    /// <summary>
    /// ln p(x | context) from one plain forward pass over the whole text (BOS first): the sum of
    /// log-softmax at every position of x's tokens, x's tokens being those after the longest common
    /// prefix of encode(context) and encode(context + x).
    /// </summary>
    double IndependentLogProb(string context, string x)
    {
        var tokenizer = _teacher.Tokenizer;
        var whole = tokenizer.Encode(context + x);
        var prefix = tokenizer.Encode(context);
        int start = 0;
        while (start < prefix.Length && prefix[start] == whole[start]) start++;
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var logits = _teacher.Model.forward(tensor(whole.Select(i => (long)i).ToArray()).unsqueeze(0))[0];   // (T, V)
        var logProbs = logits.to(ScalarType.Float64).log_softmax(-1);
        double sum = 0;
        for (int t = start; t < whole.Length; t++) sum += logProbs[t - 1, whole[t]].item<double>();
        return sum;
    }

    [Fact]
    public void AnswerWithoutReferencesIsAnInputError() =>
        Assert.Throws<InputException>(() => new ConfidenceReward(new StubLlm(score: (_, _) => new ContinuationScore(-1, 1))).Score([new RewardInput("hi", "yes", [])]));
}
