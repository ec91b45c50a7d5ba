using System.Text.Json.Nodes;
using BabyPpo.Training;
using BabyPpo.Training.Data;

namespace BabyPpo.Tests.Data;

/// <summary>
/// The readers on the real data in ../shared/data (never copied here: expected values are read
/// from the files themselves) and on small broken files written for each test.
/// </summary>
public sealed class DatasetReaderTests : IDisposable
{
    readonly TempFolder _temp = new();

    public void Dispose() => _temp.Dispose();

    // ── Real files ─────────────────────────────────────────────────────────────────────────────

    [Theory]
    [InlineData("train.json", 18_000)]
    [InlineData("eval_words.json", 7_548)]
    [InlineData("eval_tokens.json", 7_520)]
    [InlineData("teacher_single.json", 18_000)]
    public void DialoguePairFilesHaveTheirDocumentedRecordCounts(string file, int count)
    {
        Assert.Equal(count, Datasets.ReadDialoguePairs(SharedData.Data("dialogue", file)).Count);
    }

    [Fact]
    public void TrainPairsKeepTheirSpeakerTagsAndMatchTheJson()
    {
        var path = SharedData.Data("dialogue", "train.json");
        var pairs = Datasets.ReadDialoguePairs(path);
        var last = JsonNode.Parse(File.ReadAllText(path))!.AsArray()[^1]!;
        Assert.Equal(new DialoguePair((string)last["prompt"]!, (string)last["chosen"]!, (string)last["rejected"]!), pairs[^1]);
        Assert.All(pairs, pair =>
        {
            Assert.StartsWith("*MOT:", pair.Prompt);
            Assert.StartsWith("*CHI:", pair.Chosen);
            Assert.StartsWith("*CHI:", pair.Rejected);
        });
    }

    [Fact]
    public void ChildesPromptSetJoinsUtteranceRealReplyAndTeacherAnswer()
    {
        var train = SharedData.Data("dialogue", "train.json");
        var teacher = SharedData.Data("dialogue", "teacher_single.json");
        var items = Datasets.ReadChildesPromptSet(train, teacher);

        Assert.Equal(18_000, items.Count);
        var trainPairs = Datasets.ReadDialoguePairs(train);
        var teacherPairs = Datasets.ReadDialoguePairs(teacher);
        foreach (int i in new[] { 0, 1234, 17_999 })
        {
            Assert.Equal(teacherPairs[i].Prompt.Trim(), items[i].Utterance);
            Assert.Equal(trainPairs[i].Prompt["*MOT:".Length..].Trim(), items[i].Utterance);
            Assert.Equal([teacherPairs[i].Chosen.Trim()], items[i].References);
            Assert.Equal(trainPairs[i].Chosen["*CHI:".Length..].Trim(), items[i].ChildReply);
        }
        Assert.All(items, item => Assert.False(item.Utterance.StartsWith('*') || item.ChildReply!.StartsWith('*')));
    }

    [Fact]
    public void ChildesTrainSetAlreadyPassesTheSeedFilterOfMoreThanThreeWords()
    {
        var items = Datasets.ReadChildesPromptSet(SharedData.Data("dialogue", "train.json"), SharedData.Data("dialogue", "teacher_single.json"));
        static int Words(PromptItem item) => item.Utterance.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length;

        Assert.Equal(items.Count, Datasets.KeepLongerThan(items).Count);
        var longer = Datasets.KeepLongerThan(items, minTokens: 4);
        Assert.Equal(items.Count(item => Words(item) > 4), longer.Count);
        Assert.InRange(longer.Count, 1, items.Count - 1);
    }

    [Fact]
    public void ZorroHas23ParadigmsOf2000PairsInFileNameOrder()
    {
        var folder = SharedData.Data("zorro");
        var pairs = Datasets.ReadZorro(folder);
        var files = Directory.GetFiles(folder, "*.txt").Order(StringComparer.Ordinal).ToList();

        Assert.Equal(23, files.Count);
        Assert.Equal(46_000, pairs.Count);
        Assert.Equal(files.Select(Path.GetFileNameWithoutExtension), pairs.Select(p => p.Group).Distinct());
        Assert.All(pairs.CountBy(p => p.Group!), group => Assert.Equal(2_000, group.Value));
    }

    [Fact]
    public void FirstZorroPairOfEachFileIsItsFirstTwoLinesGrammaticalFirst()
    {
        foreach (var file in Directory.GetFiles(SharedData.Data("zorro"), "*.txt"))
        {
            var lines = File.ReadLines(file).Take(2).ToList();
            var first = Datasets.ReadZorroParadigm(file)[0];
            Assert.Equal(new MinimalPair(lines[0], lines[1], Path.GetFileNameWithoutExtension(file)), first);
        }
    }

    // ── Small files of each format ─────────────────────────────────────────────────────────────

    [Fact]
    public void DialoguePairsAlsoReadFromJsonLines()
    {
        var path = _temp.Write("pairs.jsonl", """
            {"prompt": "*MOT: where is the cup ?", "chosen": "*CHI: on the table .", "rejected": "*CHI: a red car ."}

            {"prompt": "*MOT: shall we go ?", "chosen": "*CHI: yes go .", "rejected": "*CHI: my hat ."}
            """);
        var pairs = Datasets.ReadDialoguePairs(path);
        Assert.Equal([new("*MOT: where is the cup ?", "*CHI: on the table .", "*CHI: a red car ."),
                      new DialoguePair("*MOT: shall we go ?", "*CHI: yes go .", "*CHI: my hat .")], pairs);
    }

    [Fact]
    public void DialoguePairsFromCsvSplitTheCellsAtTheTab()
    {
        var path = _temp.Write("pairs.csv",
            ",pospair,negpair\n" +
            "0,*MOT: is it hot ?\t*CHI: yes hot .,*MOT: is it hot ?\t*CHI: a dog .\n" +
            "1,\"*MOT: say \"\"hi\"\" .\t*CHI: hi , mommy .\",\"*MOT: say \"\"hi\"\" .\t*CHI: no .\"\n");
        Assert.Equal([new("*MOT: is it hot ?", "*CHI: yes hot .", "*CHI: a dog ."),
                      new DialoguePair("*MOT: say \"hi\" .", "*CHI: hi , mommy .", "*CHI: no .")], Datasets.ReadDialoguePairs(path));
    }

    [Fact]
    public void ChildesTextReadsEverySpeakerAndSkipsBlankLines()
    {
        var path = _temp.Write("talk.txt", "*MOT:\twhat's in the box ?\n\n*CHI: a ball .\r\n*FAT: a red ball !\n");
        Assert.Equal([new("MOT", "what's in the box ?"), new("CHI", "a ball ."), new Utterance("FAT", "a red ball !")],
            Datasets.ReadChildesText(path));
    }

    [Fact]
    public void ChatTranscriptsSkipHeadersAndTiersJoinContinuationsAndDropMediaBullets()
    {
        var path = _temp.Write("talk.cha",
            "@UTF8\n@Begin\n@Participants:\tCHI Target_Child, MOT Mother\n@Comment:\ta long comment\n\tthat goes on\n" +
            "*MOT:\twhat's in the box ? \u00151200_2400\u0015\n%mor:\tpro:int|what~cop|be&3S\n\tprep|in det|the n|box ?\n" +
            "*CHI:\ta ball\n\tand a car .\n@End\n");
        Assert.Equal([new("MOT", "what's in the box ?"), new Utterance("CHI", "a ball and a car .")], Datasets.ReadChildesText(path));
    }

    [Fact]
    public void PromptSetStripsTagsAndAcceptsAChildReplyInsteadOfReferences()
    {
        var path = _temp.Write("prompts.jsonl", """
            {"prompt": "*MOT: do you want milk ?", "references": ["yes milk .", "no ."]}
            {"prompt": "look at the moon .", "references": [], "child": "*CHI: moon !"}
            {"prompt": "where's teddy ?", "references": ["in bed ."], "child": "there ."}
            """);
        var items = Datasets.ReadPromptSet(path);
        Assert.Equal(3, items.Count);
        Assert.Equal("do you want milk ?", items[0].Utterance);
        Assert.Equal(["yes milk .", "no ."], items[0].References);
        Assert.Null(items[0].ChildReply);
        Assert.Equal(("look at the moon .", 0, "moon !"), (items[1].Utterance, items[1].References.Count, items[1].ChildReply));
        Assert.Equal("there .", items[2].ChildReply);
    }

    [Fact]
    public void KeepLongerThanCountsWhitespaceWordsOrTheGivenTokenCounter()
    {
        PromptItem[] items = [new("no .", ["no ."]), new("what is that ?", ["a cat ."]), new("put the cup down please .", ["okay ."])];
        Assert.Equal([items[1], items[2]], Datasets.KeepLongerThan(items));
        Assert.Equal([items[2]], Datasets.KeepLongerThan(items, 4));
        Assert.Equal([items[1], items[2]], Datasets.KeepLongerThan(items, 10, text => text.Length));
    }

    [Fact]
    public void MinimalPairsJsonlTakeTheFirstPresentGroupFieldOrTheOneAskedFor()
    {
        var path = _temp.Write("blimp.jsonl", """
            {"sentence_good": "the cat sleeps .", "sentence_bad": "the cat sleep .", "field": "morphology", "UID": "agreement"}
            {"sentence_good": "she ran .", "sentence_bad": "she runned .", "linguistics_term": "irregular"}
            {"sentence_good": "who left ?", "sentence_bad": "who left him ?", "field": "syntax"}
            """);
        Assert.Equal(["agreement", "irregular", "syntax"], Datasets.ReadMinimalPairsJsonl(path).Select(p => p.Group));
        Assert.Equal(new MinimalPair("she ran .", "she runned .", "irregular"), Datasets.ReadMinimalPairsJsonl(path)[1]);

        var error = Assert.Throws<InputException>(() => Datasets.ReadMinimalPairsJsonl(path, "field"));
        AssertNames(error, path, ":2:", "record 2", "\"field\"");
    }

    [Fact]
    public void LexicalDecisionCsvFindsItsColumnsByNameAndKeepsEmptyWords()
    {
        var path = _temp.Write("ld.csv", "id,wug,freq,lexeme\n1,tible,5,table\n2,\"bl,ick\",3,\"black\"\n3,,1,dog\n");
        Assert.Equal([new("table", "tible"), new("black", "bl,ick"), new LexicalItem("dog", "")], Datasets.ReadLexicalDecision(path));
    }

    [Fact]
    public void LexicalDecisionJsonlKeepsNullWordsAsEmpty()
    {
        var path = _temp.Write("ld.jsonl", "{\"lexeme\": \"table\", \"wug\": \"tible\"}\n{\"lexeme\": null, \"wug\": \"snorp\"}\n");
        Assert.Equal([new("table", "tible"), new LexicalItem("", "snorp")], Datasets.ReadLexicalDecision(path));
    }

    // ── Broken files: the message names the file and the line or record ────────────────────────

    [Fact]
    public void MissingFileIsNamed()
    {
        var path = Path.Combine(_temp.Path, "nowhere.json");
        AssertNames(Assert.Throws<InputException>(() => Datasets.ReadDialoguePairs(path)), path, "not found");
    }

    [Theory]
    [InlineData("empty.json")]
    [InlineData("empty.jsonl")]
    [InlineData("empty.csv")]
    [InlineData("empty.txt")]
    public void EmptyFileIsAnError(string name)
    {
        var path = _temp.Write(name, "\n  \n");
        var error = Assert.Throws<InputException>(() => name.EndsWith(".txt") ? Datasets.ReadZorroParadigm(path) : Datasets.ReadDialoguePairs(path));
        AssertNames(error, path, "empty");
    }

    [Fact]
    public void ZorroFileWithAnOddNumberOfLinesNamesTheLastLine()
    {
        var path = _temp.Write("paradigm.txt", "a dog runs .\na dog run .\nthe cats sleep .");
        AssertNames(Assert.Throws<InputException>(() => Datasets.ReadZorroParadigm(path)), path, ":3:", "even number");
    }

    [Fact]
    public void ZorroFileMayEndWithBlankLinesAndBeReadAlone()
    {
        var path = _temp.Write("agreement.txt", "a dog runs .\na dog run .\n\n\n");
        Assert.Equal([new MinimalPair("a dog runs .", "a dog run .", "agreement")], Datasets.ReadZorroParadigm(path));
        Assert.Equal(Datasets.ReadZorroParadigm(path), Datasets.ReadZorro(path));
    }

    [Fact]
    public void MinimalPairsWhereOnlySomeNameTheirGroupNameTheFileAndLine()
    {
        var folder = Path.GetDirectoryName(_temp.Write(Path.Combine("blimp", "a.jsonl"),
            "{\"sentence_good\": \"a b\", \"sentence_bad\": \"b a\", \"UID\": \"order\"}\n"))!;
        var second = _temp.Write(Path.Combine("blimp", "b.jsonl"),
            "{\"sentence_good\": \"c d\", \"sentence_bad\": \"d c\", \"UID\": \"order\"}\n{\"sentence_good\": \"e f\", \"sentence_bad\": \"f e\"}\n");
        AssertNames(Assert.Throws<InputException>(() => Datasets.ReadMinimalPairsFolder(folder)), second, ":2:", "group");
    }

    [Fact]
    public void ZorroFileWithAnEmptyLineNamesIt()
    {
        var path = _temp.Write("paradigm.txt", "a dog runs .\n\nthe cats sleep .\nthe cats sleeps .\n");
        AssertNames(Assert.Throws<InputException>(() => Datasets.ReadZorroParadigm(path)), path, ":2:", "empty line");
    }

    [Fact]
    public void JsonlLineMissingAFieldNamesLineRecordAndField()
    {
        var path = _temp.Write("pairs.jsonl", """
            {"prompt": "*MOT: hi .", "chosen": "*CHI: hi .", "rejected": "*CHI: car ."}

            {"prompt": "*MOT: bye .", "chosen": "*CHI: bye ."}
            """);
        AssertNames(Assert.Throws<InputException>(() => Datasets.ReadDialoguePairs(path)), path, ":3:", "record 2", "\"rejected\"");
    }

    [Fact]
    public void JsonArrayRecordMissingAFieldNamesTheRecordAndItsLine()
    {
        var path = _temp.Write("pairs.json", """
            [
              {"prompt": "*MOT: hi .", "chosen": "*CHI: hi .", "rejected": "*CHI: car ."},
              {
                "prompt": "*MOT: bye .",
                "rejected": "*CHI: cup ."
              }
            ]
            """);
        AssertNames(Assert.Throws<InputException>(() => Datasets.ReadDialoguePairs(path)), path, ":3:", "record 2", "\"chosen\"");
    }

    [Fact]
    public void InvalidJsonArrayReportsTheParsersLine()
    {
        var path = _temp.Write("pairs.json", "[\n  {\"prompt\": \"*MOT: hi .\",\n   \"chosen\": oops}\n]");
        AssertNames(Assert.Throws<InputException>(() => Datasets.ReadDialoguePairs(path)), path, ":3:", "invalid JSON");
    }

    [Fact]
    public void InvalidJsonLineReportsItsLine()
    {
        var path = _temp.Write("prompts.jsonl", "{\"prompt\": \"hi .\", \"references\": [\"hi .\"]}\n{\"prompt\": \"bye .\", \"references\": [\"bye .\"]\n");
        AssertNames(Assert.Throws<InputException>(() => Datasets.ReadPromptSet(path)), path, ":2:", "invalid JSON");
    }

    [Fact]
    public void PromptWithoutReferencesOrChildReplyIsAnError()
    {
        var path = _temp.Write("prompts.jsonl", "{\"prompt\": \"hi .\", \"references\": [\"hi .\"]}\n{\"prompt\": \"bye .\", \"references\": []}\n");
        AssertNames(Assert.Throws<InputException>(() => Datasets.ReadPromptSet(path)), path, ":2:", "record 2", "\"references\"");
    }

    [Fact]
    public void LexicalDecisionCsvWithoutAWugColumnIsAnError()
    {
        var path = _temp.Write("ld.csv", "lexeme,pseudo\ntable,tible\n");
        AssertNames(Assert.Throws<InputException>(() => Datasets.ReadLexicalDecision(path)), path, ":1:", "\"wug\"");
    }

    [Fact]
    public void LexicalDecisionJsonlWithoutAWugFieldIsAnError()
    {
        var path = _temp.Write("ld.jsonl", "{\"lexeme\": \"table\", \"wug\": \"tible\"}\n{\"lexeme\": \"dog\"}\n");
        AssertNames(Assert.Throws<InputException>(() => Datasets.ReadLexicalDecision(path)), path, ":2:", "record 2", "\"wug\"");
    }

    [Fact]
    public void DialogueCsvCellsWithDifferentMotherUtterancesAreAnError()
    {
        var path = _temp.Write("pairs.csv", ",pospair,negpair\n0,*MOT: hi .\t*CHI: hi .,*MOT: bye .\t*CHI: car .\n");
        AssertNames(Assert.Throws<InputException>(() => Datasets.ReadDialoguePairs(path)), path, ":2:", "same *MOT: part");
    }

    [Fact]
    public void DialogueCsvCellWithoutATabIsAnError()
    {
        var path = _temp.Write("pairs.csv", ",pospair,negpair\n0,*MOT: hi .\t*CHI: hi .,*MOT: hi .\t*CHI: car .\n1,*MOT: bye . *CHI: bye .,*MOT: bye .\t*CHI: cup .\n");
        AssertNames(Assert.Throws<InputException>(() => Datasets.ReadDialoguePairs(path)), path, ":3:", "pospair", "<TAB>");
    }

    [Fact]
    public void ChildesLineWithoutATagIsAnError()
    {
        var path = _temp.Write("talk.txt", "*MOT: what's that ?\nit's a ball .\n");
        AssertNames(Assert.Throws<InputException>(() => Datasets.ReadChildesText(path)), path, ":2:", "speaker tag");
    }

    [Fact]
    public void MisalignedTrainAndTeacherFilesReportTheFirstMismatchingRecord()
    {
        var train = _temp.Write("train.json", Pairs(("*MOT: hi .", "*CHI: hi ."), ("*MOT: a dog .", "*CHI: woof ."), ("*MOT: bye .", "*CHI: bye .")));
        var teacher = _temp.Write("teacher.json", Pairs(("hi .", "hello ."), ("a cat .", "meow ."), ("bye .", "bye bye .")));
        var error = Assert.Throws<InputException>(() => Datasets.ReadChildesPromptSet(train, teacher));
        AssertNames(error, teacher, "record 2", "a dog .", train);
    }

    [Fact]
    public void TrainAndTeacherFilesOfDifferentLengthsAreAnError()
    {
        var train = _temp.Write("train.json", Pairs(("*MOT: hi .", "*CHI: hi ."), ("*MOT: bye .", "*CHI: bye .")));
        var teacher = _temp.Write("teacher.json", Pairs(("hi .", "hello .")));
        AssertNames(Assert.Throws<InputException>(() => Datasets.ReadChildesPromptSet(train, teacher)), teacher, train, "1 records", "has 2");
    }

    [Fact]
    public void DialoguePairsOfAnUnknownExtensionAreAnError()
    {
        var path = _temp.Write("pairs.tsv", "prompt\tchosen\n");
        AssertNames(Assert.Throws<InputException>(() => Datasets.ReadDialoguePairs(path)), path, ".jsonl");
    }

    [Fact]
    public void ZorroFolderThatDoesNotExistIsNamed()
    {
        var folder = Path.Combine(_temp.Path, "zorro");
        AssertNames(Assert.Throws<InputException>(() => Datasets.ReadZorro(folder)), folder, "not found");
    }

    static string Pairs(params (string Prompt, string Chosen)[] pairs) =>
        new JsonArray(pairs.Select(p => (JsonNode)new JsonObject { ["prompt"] = p.Prompt, ["chosen"] = p.Chosen, ["rejected"] = "x ." }).ToArray()).ToJsonString();

    static void AssertNames(InputException error, params string[] parts)
    {
        foreach (var part in parts) Assert.Contains(part, error.Message);
    }
}
