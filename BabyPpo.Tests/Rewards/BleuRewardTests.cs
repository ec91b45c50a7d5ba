using BabyPpo.Training;
using BabyPpo.Training.Rewards;

namespace BabyPpo.Tests.Rewards;

/// <summary>
/// Unigram BLEU against values worked out by hand from the definition (NLTK sentence_bleu with
/// weights (1,0,0,0)): BP × m / c, m = clipped matches, c = answer words, r = reference words,
/// BP = exp(1 − r/c) when c ≤ r, else 1.
/// </summary>
public sealed class BleuRewardTests
{
    [Theory]
    // identical: m = c = r = 4 → 1
    [InlineData("the ball is red", "the ball is red", 1.0)]
    // case and punctuation do not matter: "Ball!" → "ball"
    [InlineData("THE Ball!", "the ball.", 1.0)]
    // shorter answer, all words found: m = c = 1, r = 3 → exp(1 − 3) = e^-2
    [InlineData("ball", "the red ball", 0.1353352832366127)]
    // shorter answer, two of five: m = c = 2, r = 5 → exp(1 − 2.5)
    [InlineData("a dog", "i see a big dog", 0.22313016014842982)]
    // repeated word clipped to its count in the reference: m = 1, c = 4 > r = 2 → 1/4
    [InlineData("the the the the", "the cat", 0.25)]
    // longer answer: m = 2, c = 7 > r = 2 → 2/7
    [InlineData("i want the big red ball now", "the ball", 0.2857142857142857)]
    // same length: m = 1 of c = r = 2, BP = exp(0) = 1 → 0.5 ("2" ≠ "two")
    [InlineData("2 balls", "two balls", 0.5)]
    // m = 2 of c = 3, r = 4 → exp(1 − 4/3) · 2/3
    [InlineData("a red ball", "it is a ball", 0.4776875403825262)]
    // no word in common → 0 (NLTK returns 0 before smoothing)
    [InlineData("doggy", "the cat", 0.0)]
    public void ScoresMatchHandComputedValues(string answer, string reference, double expected) =>
        Assert.Equal(expected, Bleu.Unigram(answer, reference), 12);

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("?!...")]        // only punctuation: nothing left after stripping
    [InlineData("🎈 !")]         // symbols are not word characters either
    public void EmptyAnswersScoreZero(string answer) => Assert.Equal(0.0, Bleu.Unigram(answer, "the ball"));

    [Fact]
    public void UnicodeLettersAreWordsAndPunctuationIsRemovedFromInsideWords()
    {
        // "café au lait" vs "café noir": m = 1, c = 3 > r = 2 → 1/3
        Assert.Equal(1.0 / 3, Bleu.Unigram("Café au lait", "café noir"), 12);
        // "ça va" vs "ça va bien": m = c = 2, r = 3 → exp(1 − 1.5)
        Assert.Equal(Math.Exp(-0.5), Bleu.Unigram("Ça va", "ça va bien"), 12);
        // the curly apostrophe is removed like the straight one: "don’t" → "dont"
        Assert.Equal(1.0, Bleu.Unigram("I don’t know", "i dont know"), 12);
        // an emoji between words is removed, the words stay: ["ball"] vs ["ball"]
        Assert.Equal(1.0, Bleu.Unigram("ball 🎈", "ball"), 12);
        // the underscore is a word character (Python's \w): "a_b" is one word, matching neither "a" nor "b"
        Assert.Equal(0.0, Bleu.Unigram("a_b", "a b"));
    }

    [Fact]
    public void WordsFollowThePythonTokenisation()
    {
        Assert.Equal(["dont", "you", "want", "it"], Bleu.Words("Don't you want it?!"));
        Assert.Equal(["überstraße", "42"], Bleu.Words("Über-Straße, 42."));   // the hyphen is removed, not made a space
        Assert.Empty(Bleu.Words(" \t\n "));
    }

    [Fact]
    public void EmptyReferenceGivesZeroForAnyAnswer() => Assert.Equal(0.0, Bleu.Unigram("a ball", "?"));

    [Fact]
    public void RewardAggregatesReferencesAndKeepsBatchOrder()
    {
        var batch = new[]
        {
            new RewardInput("what is it", "the ball", ["the ball", "the red ball"]),   // 1 and exp(1 − 3/2)
            new RewardInput("where", "doggy", ["the cat"]),                             // 0
        };
        var mean = new BleuReward(ReferenceAggregation.Mean).Score(batch);
        Assert.Equal((1 + Math.Exp(-0.5)) / 2, mean.Values[0], 12);
        Assert.Equal(0.0, mean.Values[1]);
        Assert.Equal(mean.Values.Average(), mean.Metrics["bleu/mean"], 12);
        Assert.Equal(Math.Exp(-0.5), new BleuReward(ReferenceAggregation.First).Score([batch[0] with { References = ["the red ball", "the ball"] }]).Values[0], 12);
        Assert.Equal(1.0, new BleuReward(ReferenceAggregation.Max).Score([batch[0]]).Values[0], 12);
    }

    [Fact]
    public void AnswerWithoutReferencesIsAnInputError()
    {
        var e = Assert.Throws<InputException>(() => new BleuReward().Score([new RewardInput("what is it", "a ball", [])]));
        Assert.Contains("what is it", e.Message);
    }
}
