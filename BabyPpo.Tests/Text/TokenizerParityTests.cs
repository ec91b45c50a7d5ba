using System.Collections.Concurrent;
using System.Text.Json;
using BabyPpo.Training.Text;

namespace BabyPpo.Tests.Text;

/// <summary>Ids, tokens and decoded text against HF tokenizers 0.23 (shared/fixtures).</summary>
public sealed class TokenizerParityTests
{
    private static readonly string[] TokenizerFixtures = ["bytelevel-bpe", "metaspace-bpe"];
    private static readonly ConcurrentDictionary<string, Tokenizer> Tokenizers = new();

    private sealed record Entry(
        string Text, int[] Ids, string[] Tokens, int[] IdsNoSpecial, string DecodedSkipSpecial, string DecodedKeepSpecial);

    public static TheoryData<string, int> Entries()
    {
        var data = new TheoryData<string, int>();
        foreach (var fixture in TokenizerFixtures)
        {
            for (var i = 0; i < ReadEntries(fixture).Length; i++)
                data.Add(fixture, i);
        }
        return data;
    }

    public static TheoryData<int> TinyLlamaSentences()
    {
        var data = new TheoryData<int>();
        for (var i = 0; i < ReadTinyLlama().GetProperty("sentences").GetArrayLength(); i++)
            data.Add(i);
        return data;
    }

    [Theory]
    [MemberData(nameof(Entries))]
    public void Encode_gives_the_hf_ids_and_tokens(string fixture, int index)
    {
        var entry = ReadEntries(fixture)[index];
        var tokenizer = Load(fixture);

        Assert.Equal(entry.Ids, tokenizer.Encode(entry.Text));
        Assert.Equal(entry.Tokens, tokenizer.EncodeToTokens(entry.Text));
        Assert.Equal(entry.IdsNoSpecial, tokenizer.Encode(entry.Text, addSpecialTokens: false));
    }

    [Theory]
    [MemberData(nameof(Entries))]
    public void Decode_gives_the_hf_text_with_and_without_special_tokens(string fixture, int index)
    {
        var entry = ReadEntries(fixture)[index];
        var tokenizer = Load(fixture);

        Assert.Equal(entry.DecodedSkipSpecial, tokenizer.Decode(entry.Ids));
        Assert.Equal(entry.DecodedKeepSpecial, tokenizer.Decode(entry.Ids, skipSpecialTokens: false));
    }

    [Theory]
    [MemberData(nameof(TinyLlamaSentences))]
    public void Tiny_llama_sentences_encode_to_the_fixture_ids(int index)
    {
        var sentence = ReadTinyLlama().GetProperty("sentences")[index];
        var tokenizer = Tokenizers.GetOrAdd("tiny-llama", _ => Tokenizer.Load(SharedData.Fixture("models", "tiny-llama")));

        var expected = sentence.GetProperty("ids").EnumerateArray().Select(id => id.GetInt32()).ToArray();
        Assert.Equal(expected, tokenizer.Encode(sentence.GetProperty("text").GetString()!));
    }

    private static Tokenizer Load(string fixture) =>
        Tokenizers.GetOrAdd(fixture, name => Tokenizer.Load(SharedData.Fixture("tokenizers", name)));

    private static Entry[] ReadEntries(string fixture)
    {
        var json = File.ReadAllText(SharedData.Fixture("tokenizers", fixture, "expected.json"));
        return JsonSerializer.Deserialize<Entry[]>(json, new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower })!;
    }

    private static JsonElement ReadTinyLlama() =>
        JsonDocument.Parse(File.ReadAllText(SharedData.Fixture("models", "tiny-llama", "expected.json"))).RootElement;
}
