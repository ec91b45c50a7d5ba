using System.Text.Json.Nodes;
using BabyPpo.Training.Inference;
using static TorchSharp.torch;

namespace BabyPpo.Tests.Inference;

/// <summary>Batched scoring against the fixture's summed log-probabilities and independent per-sentence computations.</summary>
public sealed class ScorerTests : IClassFixture<TinyLlamaFixture>
{
    readonly TinyLlamaFixture _tiny;

    public ScorerTests(TinyLlamaFixture tiny) => _tiny = tiny;

    static List<(string Text, int[] Ids, double Sum)> Sentences() =>
        JsonNode.Parse(File.ReadAllText(SharedData.Fixture("models", "tiny-llama", "expected.json")))!["sentences"]!.AsArray()
            .Select(s => (s!["text"]!.GetValue<string>(), s["ids"]!.AsArray().Select(x => x!.GetValue<int>()).ToArray(), s["logprob_sum_after_first"]!.GetValue<double>()))
            .ToList();

    [Theory]
    [InlineData(4096)]
    [InlineData(20)]     // forces several batches of different widths
    public void BatchedScoresMatchTheFixtureInInputOrder(int maxBatchTokens)
    {
        var sentences = Sentences();
        var scorer = new Scorer(_tiny.Model, _tiny.Tokenizer, new ScorerOptions { MaxBatchTokens = maxBatchTokens });
        var scores = scorer.ScoreTexts(sentences.Select(s => s.Text).ToList());
        for (int i = 0; i < sentences.Count; i++) Assert.Equal(sentences[i].Sum, scores[i], 1e-3);
    }

    [Fact]
    public void ContinuationScoreIsTheWholeMinusTheContext()
    {
        var scorer = new Scorer(_tiny.Model, _tiny.Tokenizer);
        const string context = "*MOT: what is that ?";
        const string continuation = " *CHI: it is a ball .";
        double whole = scorer.ScoreTexts([context + continuation])[0];
        double prefix = scorer.ScoreTexts([context])[0];
        double part = scorer.ScoreContinuations([(context, continuation)])[0];
        Assert.Equal(whole - prefix, part, 1e-3);
    }

    [Fact]
    public void BowCorrectionEqualsWordProbabilitiesComputedOneByOne()
    {
        // Independent computation from the full distributions: p(word) = p(its tokens) · P(next token
        // starts a word | through the word) / P(a word starts here | before the word), the division
        // left out for the first word (minicons' bow_correction).
        var scorer = new Scorer(_tiny.Model, _tiny.Tokenizer, new ScorerOptions { BowCorrection = true });
        foreach (var (text, ids, _) in Sentences())
        {
            var bowIds = Enumerable.Range(0, _tiny.Tokenizer.VocabSize).Where(_tiny.Tokenizer.StartsWord).Select(i => (long)i).ToArray();
            double expected;
            using (var scope = NewDisposeScope())
            using (no_grad())
            {
                var logProbs = _tiny.Model.forward(tensor(ids.Select(i => (long)i).ToArray()).unsqueeze(0))[0].log_softmax(-1).to(ScalarType.Float64); // (T, V)
                var bow = logProbs.index_select(1, tensor(bowIds)).logsumexp(1).data<double>().ToArray();                          // (T)
                var lp = logProbs.data<double>().ToArray();
                int v = (int)logProbs.shape[1];
                // words: maximal runs of tokens from position 1 where each run starts at position 1 or at a word-start token
                var starts = Enumerable.Range(1, ids.Length - 1).Where(p => p == 1 || _tiny.Tokenizer.StartsWord(ids[p])).ToList();
                expected = 0;
                for (int w = 0; w < starts.Count; w++)
                {
                    int begin = starts[w], end = w + 1 < starts.Count ? starts[w + 1] : ids.Length;   // [begin, end)
                    for (int p = begin; p < end; p++) expected += lp[(p - 1) * v + ids[p]];
                    expected += bow[end - 1];
                    if (w > 0) expected -= bow[begin - 1];
                }
            }
            double actual = scorer.ScoreTexts([text])[0];
            Assert.Equal(expected, actual, 1e-3);
        }
    }

    [Fact]
    public void WithoutWordStartMarkerBowCorrectionChangesNothing()
    {
        var plain = new Scorer(_tiny.Model, null);
        var corrected = new Scorer(_tiny.Model, null, new ScorerOptions { BowCorrection = true });
        var ids = Sentences()[0].Ids;
        Assert.Equal(plain.Score([ids])[0].Sum, corrected.Score([ids])[0].Sum);
    }
}
