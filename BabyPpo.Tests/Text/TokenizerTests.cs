using System.Text.Json.Nodes;
using BabyPpo.Training;
using BabyPpo.Training.Text;

namespace BabyPpo.Tests.Text;

public sealed class TokenizerTests : IDisposable
{
    private readonly string _temp = Directory.CreateTempSubdirectory("babyppo-tokenizer-").FullName;

    private static string ByteLevelFolder => SharedData.Fixture("tokenizers", "bytelevel-bpe");
    private static string MetaspaceFolder => SharedData.Fixture("tokenizers", "metaspace-bpe");

    public void Dispose() => Directory.Delete(_temp, recursive: true);

    [Fact]
    public void EncodeBatch_right_pads_with_the_pad_id_and_masks_the_padding()
    {
        var batch = Tokenizer.Load(ByteLevelFolder).EncodeBatch(["where is the ball", "a"]);

        Assert.Equal([1, 89, 74, 304, 308, 278, 776], batch.Ids[0]);
        Assert.Equal([1, 67, 0, 0, 0, 0, 0], batch.Ids[1]);
        Assert.Equal([1, 1, 1, 1, 1, 1, 1], batch.AttentionMask[0]);
        Assert.Equal([1, 1, 0, 0, 0, 0, 0], batch.AttentionMask[1]);
    }

    [Fact]
    public void EncodeBatch_left_pads_with_the_pad_id_and_masks_the_padding()
    {
        var batch = Tokenizer.Load(ByteLevelFolder).EncodeBatch(["where is the ball", "a"], PaddingSide.Left);

        Assert.Equal([1, 89, 74, 304, 308, 278, 776], batch.Ids[0]);
        Assert.Equal([0, 0, 0, 0, 0, 1, 67], batch.Ids[1]);
        Assert.Equal([0, 0, 0, 0, 0, 1, 1], batch.AttentionMask[1]);
    }

    [Fact]
    public void EncodeBatch_pads_with_eos_when_there_is_no_pad_token()
    {
        var tokenizer = Tokenizer.Load(MetaspaceFolder);

        var batch = tokenizer.EncodeBatch(["where is the ball", "a"]);

        Assert.Null(tokenizer.PadId);
        Assert.Equal([91, 2, 2, 2], batch.Ids[1]);
        Assert.Equal([1, 0, 0, 0], batch.AttentionMask[1]);
    }

    [Fact]
    public void Special_tokens_come_from_tokenizer_config()
    {
        var byteLevel = Tokenizer.Load(ByteLevelFolder);
        var metaspace = Tokenizer.Load(MetaspaceFolder);

        Assert.Equal(("<s>", "</s>", "<pad>"), (byteLevel.BosToken, byteLevel.EosToken, byteLevel.PadToken));
        Assert.Equal((1, 2, 0), (byteLevel.BosId, byteLevel.EosId, byteLevel.PadId));
        Assert.Null(byteLevel.UnkId);
        Assert.Equal(("<unk>", 0), (metaspace.UnkToken, metaspace.UnkId));
        Assert.True(byteLevel.IsSpecial(1));
        Assert.False(byteLevel.IsSpecial(67));
    }

    [Fact]
    public void Special_tokens_map_overrides_tokenizer_config_and_accepts_content_objects()
    {
        var json = File.ReadAllText(Path.Combine(ByteLevelFolder, "tokenizer.json"));
        var config = File.ReadAllText(Path.Combine(ByteLevelFolder, "tokenizer_config.json"));

        var tokenizer = Tokenizer.FromJson(json, config, specialTokensMapJson: """{"pad_token": {"content": "</s>", "lstrip": false}}""");

        Assert.Equal(("</s>", 2), (tokenizer.PadToken, tokenizer.PadId));
        Assert.Equal(1, tokenizer.BosId);
    }

    [Fact]
    public void VocabSize_counts_the_model_vocabulary_and_added_tokens()
    {
        Assert.Equal(1000, Tokenizer.Load(ByteLevelFolder).VocabSize);
        Assert.Equal(800, Tokenizer.Load(MetaspaceFolder).VocabSize);
    }

    [Fact]
    public void Save_then_Load_gives_the_same_files_ids_and_special_tokens()
    {
        var original = Tokenizer.Load(ByteLevelFolder);
        var folder = Path.Combine(_temp, "saved");

        original.Save(folder);
        var reloaded = Tokenizer.Load(folder);

        Assert.Equal(File.ReadAllText(Path.Combine(ByteLevelFolder, "tokenizer.json")), File.ReadAllText(Path.Combine(folder, "tokenizer.json")));
        Assert.True(File.Exists(Path.Combine(folder, "tokenizer_config.json")));
        Assert.False(File.Exists(Path.Combine(folder, "special_tokens_map.json")));
        const string text = "*MOT: <s> don't you want the doggie's bone? 🐶";
        Assert.Equal(original.Encode(text), reloaded.Encode(text));
        Assert.Equal((original.BosId, original.EosId, original.PadId), (reloaded.BosId, reloaded.EosId, reloaded.PadId));
    }

    [Fact]
    public void StartsWord_is_true_for_tokens_beginning_with_the_word_marker()
    {
        var byteLevel = Tokenizer.Load(ByteLevelFolder);
        var metaspace = Tokenizer.Load(MetaspaceFolder);

        Assert.Equal('Ġ', byteLevel.WordStartMarker);
        Assert.True(byteLevel.StartsWord(byteLevel.TokenToId("Ġwhat")!.Value));
        Assert.False(byteLevel.StartsWord(byteLevel.TokenToId("MOT")!.Value));
        Assert.False(byteLevel.StartsWord(byteLevel.BosId!.Value));
        Assert.Equal('▁', metaspace.WordStartMarker);
        Assert.True(metaspace.StartsWord(metaspace.TokenToId("▁what")!.Value));
        Assert.False(metaspace.StartsWord(metaspace.TokenToId("s")!.Value));
    }

    // A hand-made tokenizer for what the fixtures do not exercise; the expected values are HF tokenizers 0.23.2's.
    private const string SmallTokenizer = """
        {"version": "1.0", "truncation": null, "padding": null,
         "added_tokens": [
           {"id": 0, "content": "<unk>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
           {"id": 7, "content": "[M]", "single_word": false, "lstrip": true, "rstrip": true, "normalized": false, "special": true},
           {"id": 8, "content": "xy", "single_word": true, "lstrip": false, "rstrip": false, "normalized": false, "special": false}],
         "normalizer": null, "pre_tokenizer": null, "post_processor": null,
         "decoder": {"type": "Sequence", "decoders": [{"type": "ByteFallback"}, {"type": "Fuse"}]},
         "model": {"type": "BPE", "dropout": null, "unk_token": "<unk>", "fuse_unk": false, "byte_fallback": true, "ignore_merges": false,
           "vocab": {"<unk>": 0, "a": 1, "b": 2, "ab": 3, "<0xC3>": 4, "<0xA9>": 5, " ": 6}, "merges": [["a", "b"]]}}
        """;

    [Fact]
    public void Byte_fallback_spells_unknown_characters_as_byte_tokens_and_decodes_them_back()
    {
        var tokenizer = Tokenizer.FromJson(SmallTokenizer);

        Assert.Equal([3, 4, 5], tokenizer.Encode("abé"));
        Assert.Equal("abé", tokenizer.Decode([3, 4, 5]));
        Assert.Equal([3, 0], tokenizer.Encode("abz"));
    }

    [Fact]
    public void Added_tokens_honour_lstrip_rstrip_and_single_word()
    {
        var tokenizer = Tokenizer.FromJson(SmallTokenizer);

        Assert.Equal(["a", " [M] ", "b"], tokenizer.EncodeToTokens("a [M] b"));
        Assert.Equal([8, 6, 0, 0, 0, 6, 8], tokenizer.Encode("xy xyz xy"));
        Assert.Equal([1, 0, 0], tokenizer.Encode("axy"));
    }

    [Fact]
    public void Load_of_a_missing_path_names_it()
    {
        var missing = Path.Combine(_temp, "nowhere");

        var error = Assert.Throws<InputException>(() => Tokenizer.Load(missing));

        Assert.Contains(missing, error.Message);
    }

    [Fact]
    public void Load_of_broken_json_names_the_file()
    {
        var file = Write("tokenizer.json", "{\"model\": ");

        var error = Assert.Throws<InputException>(() => Tokenizer.Load(file));

        Assert.Contains(file, error.Message);
        Assert.Contains("invalid JSON", error.Message);
    }

    [Fact]
    public void Broken_tokenizer_config_is_reported_with_its_own_path()
    {
        File.Copy(Path.Combine(ByteLevelFolder, "tokenizer.json"), Path.Combine(_temp, "tokenizer.json"));
        var config = Write("tokenizer_config.json", "{\"bos_token\": 42}");

        var error = Assert.Throws<InputException>(() => Tokenizer.Load(_temp));

        Assert.Contains(config, error.Message);
        Assert.Contains("bos_token", error.Message);
    }

    [Fact]
    public void A_missing_model_is_refused()
    {
        var file = WriteByteLevelWith(root => root.Remove("model"));

        var error = Assert.Throws<InputException>(() => Tokenizer.Load(file));

        Assert.Contains(file, error.Message);
        Assert.Contains("missing \"model\"", error.Message);
    }

    [Fact]
    public void A_WordPiece_model_is_refused_as_unsupported()
    {
        var file = WriteByteLevelWith(root => root["model"]!["type"] = "WordPiece");

        var error = Assert.Throws<InputException>(() => Tokenizer.Load(file));

        Assert.Contains(file, error.Message);
        Assert.Contains("unsupported tokenizer model type WordPiece", error.Message);
    }

    [Fact]
    public void Bpe_dropout_is_refused_because_encoding_must_be_deterministic()
    {
        var file = WriteByteLevelWith(root => root["model"]!["dropout"] = 0.1);

        var error = Assert.Throws<InputException>(() => Tokenizer.Load(file));

        Assert.Contains(file, error.Message);
        Assert.Contains("dropout", error.Message);
    }

    [Fact]
    public void An_unsupported_pre_tokenizer_is_refused_by_name()
    {
        var file = WriteByteLevelWith(root => root["pre_tokenizer"] = new JsonObject { ["type"] = "Split" });

        var error = Assert.Throws<InputException>(() => Tokenizer.Load(file));

        Assert.Contains(file, error.Message);
        Assert.Contains("unsupported pre_tokenizer type \"Split\"", error.Message);
    }

    private string WriteByteLevelWith(Action<JsonObject> change)
    {
        var root = JsonNode.Parse(File.ReadAllText(Path.Combine(ByteLevelFolder, "tokenizer.json")))!.AsObject();
        change(root);
        return Write("tokenizer.json", root.ToJsonString());
    }

    private string Write(string name, string text)
    {
        var path = Path.Combine(_temp, name);
        File.WriteAllText(path, text);
        return path;
    }
}
