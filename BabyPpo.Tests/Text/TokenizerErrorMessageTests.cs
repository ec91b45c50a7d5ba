using System.Text.Json.Nodes;
using BabyPpo.Training;
using BabyPpo.Training.Text;

namespace BabyPpo.Tests.Text;

/// <summary>A damaged tokenizer.json is refused with a message that names the part that is wrong.</summary>
public sealed class TokenizerErrorMessageTests : IDisposable
{
    readonly TempFolder _temp = new();

    public void Dispose() => _temp.Dispose();

    string Damaged(Action<JsonObject> damage)
    {
        var json = JsonNode.Parse(File.ReadAllText(SharedData.Fixture("tokenizers", "bytelevel-bpe", "tokenizer.json")))!.AsObject();
        damage(json);
        return _temp.Write("tokenizer.json", json.ToJsonString());
    }

    string ErrorOf(Action<JsonObject> damage)
    {
        var file = Damaged(damage);
        var message = Assert.Throws<InputException>(() => Tokenizer.Load(file)).Message;
        Assert.StartsWith(file + ": ", message);
        return message;
    }

    [Fact]
    public void ModelWithoutVocabSaysTheVocabIsMissing()
    {
        var message = ErrorOf(json => json["model"]!.AsObject().Remove("vocab"));
        Assert.Contains("\"model\" has no \"vocab\"", message);
        Assert.DoesNotContain("missing \"model\"", message);
    }

    [Fact]
    public void VocabOfTheWrongKindSaysWhatItIsAndWhatWasExpected()
    {
        var message = ErrorOf(json => json["model"]!["vocab"] = new JsonArray("a", "b"));
        Assert.Contains("\"model.vocab\" must be an object of token → id, got an array", message);
    }

    [Fact]
    public void ModelWithoutMergesSaysTheMergesAreMissing()
    {
        Assert.Contains("\"model\" has no \"merges\"", ErrorOf(json => json["model"]!.AsObject().Remove("merges")));
    }

    [Fact]
    public void ModelWithoutTypeOrMergesSaysTheTypeIsMissing()
    {
        var message = ErrorOf(json =>
        {
            json["model"]!.AsObject().Remove("type");
            json["model"]!.AsObject().Remove("merges");
        });
        Assert.Contains("\"model\" has no \"type\"", message);
        Assert.DoesNotContain("expected a JSON object", message);
    }

    [Fact]
    public void ModelWithoutTypeButWithMergesIsReadAsBpeAsHuggingFaceDoes()
    {
        var file = Damaged(json => json["model"]!.AsObject().Remove("type"));
        var expected = JsonNode.Parse(File.ReadAllText(SharedData.Fixture("tokenizers", "bytelevel-bpe", "expected.json")))!.AsArray()[0]!;
        Assert.Equal(expected["ids"]!.AsArray().Select(x => x!.GetValue<int>()), Tokenizer.Load(file).Encode(expected["text"]!.GetValue<string>()));
    }

    [Fact]
    public void ModelThatIsNotAnObjectSaysWhatItIs()
    {
        Assert.Contains("\"model\" must be an object, got a string", ErrorOf(json => json["model"] = "BPE"));
    }
}
