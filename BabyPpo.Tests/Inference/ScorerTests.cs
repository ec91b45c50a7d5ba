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
    public void IdsOutsideTheVocabularyAreAnInputErrorNotALibtorchCrash()
    {
        var scorer = new Scorer(_tiny.Model, _tiny.Tokenizer);
        int vocabulary = _tiny.Model.Config.VocabSize;
        var error = Assert.Throws<BabyPpo.Training.InputException>(() => scorer.Score([[1, 5, 7], [1, vocabulary]]));
        Assert.Contains($"sequence 1 holds token id {vocabulary}", error.Message);
        Assert.Throws<BabyPpo.Training.InputException>(() => scorer.Score([[1, -3]]));
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

    [Theory]
    [InlineData(false, 4096)]
    [InlineData(true, 4096)]
    [InlineData(false, 12)]   // several batches per prefix length
    [InlineData(true, 12)]
    public void SharedPrefixPairsScoreEveryTokenAsScoringEachSentenceAlone(bool bowCorrection, int maxBatchTokens)
    {
        var pairs = new (string A, string B)[]
        {
            ("where is the way ?", "where is the ways ?"),                           // differ at the end
            ("the dog can run .", "the dog can run fast ."),                         // one continues the other's prefix
            ("*MOT: what is that ? *CHI: it is a ball .", "*MOT: what is that ? *CHI: a ball ."),
            ("the dog can run .", "the dog can run ."),                              // identical: nothing after the prefix
            ("the dog", "the dog can run ."),                                        // A ends where the shared prefix ends
            ("where is the way ?", "the dog can run ."),                             // only BOS in common: scored plainly
            ("yes please .", "no thank you ."),
        }.Select(p => (_tiny.Tokenizer.Encode(p.A), _tiny.Tokenizer.Encode(p.B))).ToList();
        pairs.Add(([1], [1, 89]));                                                   // a sequence with nothing to score
        var shared = new Scorer(_tiny.Model, _tiny.Tokenizer, new ScorerOptions { BowCorrection = bowCorrection, MaxBatchTokens = maxBatchTokens });
        var alone = new Scorer(_tiny.Model, _tiny.Tokenizer, new ScorerOptions { BowCorrection = bowCorrection });

        var results = shared.ScorePairs(pairs);
        Assert.Equal(pairs.Count, results.Count);
        for (int i = 0; i < pairs.Count; i++)
        {
            foreach (var (ids, actual) in new[] { (pairs[i].Item1, results[i].A), (pairs[i].Item2, results[i].B) })
            {
                var expected = alone.Score([ids])[0];                                 // one sequence per call: no batching, no sharing
                Assert.Equal(ids, actual.Ids);
                Assert.Equal(expected.LogProbs.Length, actual.LogProbs.Length);
                for (int k = 0; k < expected.LogProbs.Length; k++) Assert.Equal(expected.LogProbs[k], actual.LogProbs[k], 1e-4);
            }
        }
    }

    [Fact]
    public void SharingPrefixesCanBeSwitchedOffWithoutChangingScores()
    {
        var texts = new[] { ("where is the way ?", "where is the ways ?"), ("*MOT: look at the dog .", "*MOT: look at the dogs .") };
        var on = new Scorer(_tiny.Model, _tiny.Tokenizer).ScoreTextPairs(texts);
        var off = new Scorer(_tiny.Model, _tiny.Tokenizer, new ScorerOptions { SharePrefixes = false }).ScoreTextPairs(texts);
        var fixture = Sentences();
        Assert.Equal(fixture[2].Sum, on[0].A, 1e-3);
        Assert.Equal(fixture[3].Sum, on[0].B, 1e-3);
        for (int i = 0; i < texts.Length; i++)
        {
            Assert.Equal(off[i].A, on[i].A, 1e-4);
            Assert.Equal(off[i].B, on[i].B, 1e-4);
        }
    }

    [Fact]
    public void ProgressCountsEverySequenceAndCancellationStopsBeforeTheNextBatch()
    {
        var scorer = new Scorer(_tiny.Model, _tiny.Tokenizer, new ScorerOptions { MaxBatchTokens = 8 });
        var texts = Sentences().Select(s => s.Text).ToList();
        var seen = new List<int>();
        scorer.ScoreTexts(texts, new Recorder(seen));
        Assert.Equal(texts.Count, seen[^1]);
        Assert.True(seen.Count > 1, "a budget of 8 tokens needs several batches");
        Assert.Equal(seen.OrderBy(x => x), seen);

        using var cancel = new CancellationTokenSource();
        cancel.Cancel();
        Assert.Throws<OperationCanceledException>(() => scorer.ScoreTexts(texts, null, cancel.Token));
        Assert.Throws<OperationCanceledException>(() => scorer.ScoreTextPairs([("where is the way ?", "where is the ways ?")], null, cancel.Token));
    }

    sealed class Recorder(List<int> seen) : IProgress<int>
    {
        public void Report(int value) => seen.Add(value);
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
