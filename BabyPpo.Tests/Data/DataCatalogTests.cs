using BabyPpo.Training;
using BabyPpo.Training.Data;

namespace BabyPpo.Tests.Data;

/// <summary>The catalogue on ../shared/data, the repository's data/demo folder and empty folders.</summary>
public sealed class DataCatalogTests : IDisposable
{
    static readonly string DemoRoot = SharedData.DemoData;
    readonly TempFolder _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void KnownSetsAreTheDocumentedIdsEachWithSourceAndLicence()
    {
        Assert.Equal(
            ["blimp", "demo-prompts", "dialogue-eval-tokens", "dialogue-eval-words", "dialogue-train", "lexical-decision", "lexical-decision-demo", "teacher-10", "zorro"],
            DataCatalog.Known.Select(info => info.Name).Order(StringComparer.Ordinal));
        Assert.All(DataCatalog.Known, info =>
        {
            Assert.NotEmpty(info.RelativePaths);
            Assert.False(string.IsNullOrWhiteSpace(info.Description) || string.IsNullOrWhiteSpace(info.Source) || string.IsNullOrWhiteSpace(info.Licence));
        });
    }

    [Fact]
    public void ResolveOnTheSharedDataFindsDialogueAndZorroButNotTheHubSet()
    {
        var status = DataCatalog.Resolve(SharedData.Data(), DemoRoot).ToDictionary(s => s.Info.Name);

        foreach (var name in new[] { "dialogue-train", "dialogue-eval-words", "dialogue-eval-tokens", "zorro", "demo-prompts", "lexical-decision-demo" })
            Assert.True(status[name].Present, $"{name} should be present");
        Assert.Equal([SharedData.Data("dialogue", "train.json"), SharedData.Data("dialogue", "teacher_single.json")],
            status["dialogue-train"].FullPaths.Select(Path.GetFullPath));
        Assert.Equal(Path.GetFullPath(SharedData.Data("zorro")), status["zorro"].FullPaths.Single());

        var hub = status["lexical-decision"];
        Assert.False(hub.Present);
        Assert.Contains("huggingface.co/datasets/bbunzeck/lexical-decision", hub.Info.Source);
        Assert.False(status["teacher-10"].Present);
    }

    [Fact]
    public void ResolveOnAnEmptyFolderListsEverySetAsMissingWithoutThrowing()
    {
        var status = DataCatalog.Resolve(Path.Combine(_temp.Path, "no-such-folder"));
        Assert.Equal(DataCatalog.Known.Count, status.Count);
        Assert.All(status, s => Assert.False(s.Present));
    }

    [Fact]
    public void DemoSetsDefaultToTheDemoFolderUnderTheDataRoot()
    {
        _temp.Write(Path.Combine("demo", "prompts.jsonl"), "{\"prompt\": \"hello .\", \"references\": [\"hi .\"]}\n");
        var demo = DataCatalog.Resolve(_temp.Path).Single(s => s.Info.Name == "demo-prompts");
        Assert.True(demo.Present);
        Assert.Equal(Path.Combine(_temp.Path, "demo", "prompts.jsonl"), demo.FullPaths.Single());
    }

    [Fact]
    public void FindOfAnUnknownNameListsTheKnownNames()
    {
        var error = Assert.Throws<InputException>(() => DataCatalog.Find("childes", SharedData.Data(), DemoRoot));
        Assert.Contains("\"childes\"", error.Message);
        Assert.All(DataCatalog.Known, info => Assert.Contains(info.Name, error.Message));
    }

    [Fact]
    public void FindOfAMissingSetSaysWhereToGetIt()
    {
        var error = Assert.Throws<InputException>(() => DataCatalog.Find("lexical-decision", SharedData.Data(), DemoRoot));
        Assert.Contains(Path.Combine(Path.GetFullPath(SharedData.Data()), "lexical-decision"), error.Message);
        Assert.Contains("huggingface.co/datasets/bbunzeck/lexical-decision", error.Message);
    }

    [Fact]
    public void DemoPromptsLoadFromTheRepositoryAsPromisedInTheReadme()
    {
        var items = DataCatalog.LoadPromptSet("demo-prompts", SharedData.Data(), DemoRoot);

        Assert.InRange(items.Count, 300, 400);
        Assert.Equal(items.Count, items.Select(item => item.Utterance).Distinct().Count());
        Assert.All(items, item =>
        {
            Assert.InRange(item.References.Count, 1, 3);
            Assert.Null(item.ChildReply);
            foreach (var text in item.References.Append(item.Utterance))
            {
                Assert.Matches(@"^\S.* [.?!]$", text);
                Assert.All(text.Split(' '), word => Assert.True(word is "I" or "I'm" or "I'll" || word == word.ToLowerInvariant(), $"upper case in \"{text}\""));
            }
        });
    }

    [Fact]
    public void DemoPromptsAreNotCopiedFromChildes()
    {
        var demo = DataCatalog.LoadPromptSet("demo-prompts", SharedData.Data(), DemoRoot)
            .Select(item => item.Utterance).ToHashSet(StringComparer.OrdinalIgnoreCase);
        var childes = new[] { "train.json", "eval_words.json", "eval_tokens.json" }
            .SelectMany(file => Datasets.ReadDialoguePairs(SharedData.Data("dialogue", file)))
            .Select(pair => pair.Prompt["*MOT:".Length..].Trim());
        Assert.DoesNotContain(childes, demo.Contains);
    }

    [Fact]
    public void DialogueTrainLoadsAsTheAlignedChildesPromptSet()
    {
        var items = DataCatalog.LoadPromptSet("dialogue-train", SharedData.Data(), DemoRoot);
        Assert.Equal(18_000, items.Count);
        Assert.All(items, item => Assert.NotNull(item.ChildReply));
    }

    [Fact]
    public void LoadPromptSetAcceptsThePathOfAUsersJsonl()
    {
        var path = _temp.Write("mine.jsonl", "{\"prompt\": \"*MOT: shall we sing ?\", \"references\": [\"la la .\"]}\n");
        var items = DataCatalog.LoadPromptSet(path, SharedData.Data(), DemoRoot);
        var item = Assert.Single(items);
        Assert.Equal("shall we sing ?", item.Utterance);
        Assert.Equal(["la la ."], item.References);
    }

    [Fact]
    public void LoadPromptSetRefusesASetThatHoldsNoPrompts()
    {
        var error = Assert.Throws<InputException>(() => DataCatalog.LoadPromptSet("zorro", SharedData.Data(), DemoRoot));
        Assert.Contains("\"zorro\" is a Zorro set, not a prompt set", error.Message);
    }

    [Fact]
    public void LoadPromptSetOfAnUnknownNameListsThePromptSets()
    {
        var error = Assert.Throws<InputException>(() => DataCatalog.LoadPromptSet("nursery", SharedData.Data(), DemoRoot));
        Assert.Contains("demo-prompts", error.Message);
        Assert.Contains("dialogue-train", error.Message);
    }

    [Fact]
    public void DemoLexicalDecisionSetPairsEveryWordWithADifferentPseudoWord()
    {
        var items = Datasets.ReadLexicalDecision(DataCatalog.Find("lexical-decision-demo", SharedData.Data(), DemoRoot).FullPaths.Single());
        Assert.InRange(items.Count, 100, 140);
        Assert.All(items, item =>
        {
            Assert.NotEqual(item.Lexeme, item.Wug);
            Assert.InRange(item.Wug.Length - item.Lexeme.Length, -1, 1);
        });
        Assert.Equal(items.Count, items.Select(item => item.Wug).Distinct().Count());
    }
}
