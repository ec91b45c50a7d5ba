using BabyPpo.Training;
using BabyPpo.Training.Data;
using BabyPpo.Training.Text;

namespace BabyPpo.Tests.Text;

public sealed class BpeTrainerTests
{
    static readonly Lazy<IReadOnlyList<string>> Exchanges = new(() =>
        Datasets.ReadDialoguePairs(SharedData.Data("dialogue", "train.json")).Select(p => $"{p.Prompt} {p.Chosen}").ToList());

    /// <summary>The first 2000 exchanges of train.json: enough text for a few hundred merges.</summary>
    static IReadOnlyList<string> SmallCorpus => Exchanges.Value.Take(2000).ToList();

    [Fact]
    public void TrainingOnTheDialogueExchangesReproducesTheHuggingFaceFixtureByteForByte()
    {
        // The fixture was made by HF tokenizers' BpeTrainer (ByteLevel, vocab 1000) on "prompt chosen" of train.json.
        var trained = BpeTrainer.Train(Exchanges.Value, new BpeTrainerOptions { VocabSize = 1000 });

        var folder = SharedData.Fixture("tokenizers", "bytelevel-bpe");
        Assert.Equal(File.ReadAllText(Path.Combine(folder, "tokenizer.json")), trained.TokenizerJson);
    }

    [Fact]
    public void TheClassicCorpusLearnsTheMergesWorkedOutByHand()
    {
        // Pair counts: e-s 9, s-t 9, w-e 8, l-o 7, o-w 7, n-e 6, e-w 6, ... Ties go to the smaller
        // (left id, right id), and byte symbols are numbered in code-point order.
        var texts = Repeat("low", 5).Concat(Repeat("lower", 2)).Concat(Repeat("newest", 6)).Concat(Repeat("widest", 3));

        var trained = BpeTrainer.Train(texts, new BpeTrainerOptions { VocabSize = 1000, MinFrequency = 1 });

        Assert.Equal(
            [("e", "s"), ("es", "t"), ("l", "o"), ("lo", "w"), ("e", "w"), ("n", "ew"), ("new", "est"),
             ("d", "est"), ("i", "dest"), ("w", "idest"), ("e", "r"), ("low", "er")],
            trained.Merges);
        Assert.Equal(["es", "est", "lo", "low", "ew", "new", "newest", "dest", "idest", "widest", "er", "lower"], trained.Tokens.Skip(259));
    }

    [Fact]
    public void MinFrequencyStopsAtTheFirstPairRarerThanIt()
    {
        var texts = Repeat("low", 5).Concat(Repeat("lower", 2)).Concat(Repeat("newest", 6)).Concat(Repeat("widest", 3));

        var trained = BpeTrainer.Train(texts, new BpeTrainerOptions { VocabSize = 1000, MinFrequency = 3 });

        Assert.Equal(("w", "idest"), trained.Merges[^1]);   // the next pair, e-r, occurs twice
        Assert.Equal(10, trained.Merges.Count);
    }

    [Fact]
    public void TheVocabularyHasExactlyTheAskedSizeWhenTheCorpusAllowsIt()
    {
        foreach (var size in new[] { 259, 260, 300, 777 })
        {
            var trained = BpeTrainer.Train(SmallCorpus, new BpeTrainerOptions { VocabSize = size });

            Assert.Equal(size, trained.VocabSize);
            Assert.Equal(size, trained.Tokenizer.VocabSize);
        }
    }

    [Fact]
    public void SpecialsComeFirstThenTheByteSymbolsInCodePointOrder()
    {
        var tokens = BpeTrainer.Train(["hi"], new BpeTrainerOptions { VocabSize = 300, MinFrequency = 1 }).Tokens;

        Assert.Equal(["<pad>", "<s>", "</s>"], tokens.Take(3));
        var symbols = tokens.Skip(3).Take(256).ToList();
        Assert.All(symbols, s => Assert.Single(s));
        Assert.Equal(symbols.Order(StringComparer.Ordinal), symbols);
        Assert.Equal("hi", tokens[259]);
    }

    [Fact]
    public void MergesAreListedInTheOrderTheyWereLearned()
    {
        var trained = BpeTrainer.Train(SmallCorpus, new BpeTrainerOptions { VocabSize = 800 });
        var tokenizer = trained.Tokenizer;

        for (var rank = 0; rank < trained.Merges.Count; rank++)
        {
            var (left, right) = trained.Merges[rank];
            // A merge is learned after the tokens it joins exist, and its result gets the next id.
            Assert.True(tokenizer.TokenToId(left) < 259 + rank && tokenizer.TokenToId(right) < 259 + rank, $"merge {rank}: {left} {right}");
            Assert.Equal(259 + rank, tokenizer.TokenToId(left + right));
        }
    }

    [Fact]
    public void TwoTrainingsOnTheSameTextsWriteIdenticalFiles()
    {
        var options = new BpeTrainerOptions { VocabSize = 700, MinFrequency = 2 };

        var first = BpeTrainer.Train(SmallCorpus, options);
        var second = BpeTrainer.Train(SmallCorpus.ToList(), options);

        Assert.Equal(first.TokenizerJson, second.TokenizerJson);
        Assert.Equal(first.TokenizerConfigJson, second.TokenizerConfigJson);
    }

    [Fact]
    public void TheLoadedTokenizerGivesTheTrainersOwnSegmentationOfTheTrainingText()
    {
        var corpus = SmallCorpus;
        var trained = BpeTrainer.Train(corpus, new BpeTrainerOptions { VocabSize = 900 });
        var folder = Directory.CreateTempSubdirectory("babyppo-bpe-").FullName;
        try
        {
            trained.Save(folder);
            var loaded = Tokenizer.Load(folder);

            foreach (var text in corpus)
                Assert.Equal(trained.EncodeWithTrainingSegmentation(text), loaded.Encode(text, addSpecialTokens: false));
            Assert.Equal(1, loaded.Encode(corpus[0])[0]);   // <s> first, from the post-processor
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void SavedConfigNamesTheSpecialTokens()
    {
        var tokenizer = BpeTrainer.Train(SmallCorpus, new BpeTrainerOptions { VocabSize = 300 }).Tokenizer;

        Assert.Equal((0, 1, 2), (tokenizer.PadId, tokenizer.BosId, tokenizer.EosId));
        Assert.True(tokenizer.IsSpecial(0) && tokenizer.IsSpecial(1) && tokenizer.IsSpecial(2));
        Assert.Equal([1, 2], tokenizer.Encode("</s>"));
    }

    [Theory]
    [InlineData("*MOT: what is that ? *CHI: it looks like a gun .")]
    [InlineData("*MOT: I think they just throw it on the side .")]
    [InlineData("où est le café ? naïve façade, Ærøskøbing")]
    [InlineData("🧸 teddy 日本語 の ほん  two  spaces\tand a tab\nand a line")]
    [InlineData("  leading and trailing spaces  ")]
    [InlineData("don't we'll I'm 123 4567 ¿qué?")]
    public void DecodingTheEncodingGivesTheTextBack(string text)
    {
        var tokenizer = BpeTrainer.Train(SmallCorpus, new BpeTrainerOptions { VocabSize = 600 }).Tokenizer;

        var ids = tokenizer.Encode(text);

        Assert.Equal(text, tokenizer.Decode(ids));
    }

    [Fact]
    public void SpecialTokensInTheTextAreNotLearnedAsWords()
    {
        var trained = BpeTrainer.Train(Repeat("<s>hello</s>", 50), new BpeTrainerOptions { VocabSize = 400 });

        Assert.DoesNotContain(trained.Tokens.Skip(BpeTrainer.BaseVocabSize), t => t.Contains('<') || t.Contains('>'));
        Assert.Equal([1, trained.Tokenizer.TokenToId("hello")!.Value, 2], trained.EncodeWithTrainingSegmentation("<s>hello</s>"));
    }

    [Fact]
    public void AVocabularySmallerThanTheBaseIsRefused()
    {
        var error = Assert.Throws<InputException>(() => BpeTrainer.Train(["a"], new BpeTrainerOptions { VocabSize = 100 }));
        Assert.Contains("259", error.Message);
    }

    static IEnumerable<string> Repeat(string text, int count) => Enumerable.Repeat(text, count);
}
