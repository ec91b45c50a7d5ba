using System.Buffers;
using System.Text;
using System.Text.Json;

namespace BabyPpo.Training.Text;

/// <summary>Which end of a row <see cref="Tokenizer.EncodeBatch"/> pads.</summary>
public enum PaddingSide { Left, Right }

/// <summary>A padded batch: every row has the length of the longest text; the mask is 1 on real tokens, 0 on padding.</summary>
public sealed record BatchEncoding(long[][] Ids, long[][] AttentionMask);

/// <summary>
/// A byte-pair-encoding tokenizer read from a Hugging Face <c>tokenizer.json</c>, giving the same ids,
/// tokens and decoded text as HF <c>tokenizers</c> 0.23 (as called by <c>transformers</c>, so the file's
/// <c>truncation</c> and <c>padding</c> settings are ignored).
/// </summary>
/// <remarks>
/// Encoding runs HF's pipeline: added tokens are cut out of the raw text (<see cref="AddedVocabulary"/>),
/// the rest is normalized, cut again at normalized added tokens, pre-tokenized into words, each word is
/// merged by the <see cref="BpeModel"/>, and the post-processor adds the special tokens. The parts
/// (normalizers, pre-tokenizers, post-processors, decoders) live in <c>TokenizerParts.cs</c>.
/// <para>
/// Known differences from HF: Unicode normalizers use .NET's tables, which are newer than HF's
/// (Unicode ~11), so characters encoded since then may normalize differently; only the single-sequence
/// template of <c>TemplateProcessing</c> and string (not regex) <c>Replace</c> patterns are read; a BPE
/// <c>unk_token</c> missing from the vocabulary is refused at load rather than at the first unknown character.
/// Everything else was checked against HF tokenizers 0.23.2 on fixtures and randomized text.
/// </para>
/// <para>Instances are immutable apart from a locked per-word cache, so they may be shared between threads.</para>
/// </remarks>
public sealed class Tokenizer
{
    private readonly SourceFiles _files;
    private readonly AddedVocabulary _added;
    private readonly INormalizer? _normalizer;
    private readonly IPreTokenizer? _preTokenizer;
    private readonly BpeModel _model;
    private readonly IPostProcessor? _postProcessor;
    private readonly IDecoder? _decoder;

    private Tokenizer(SourceFiles files, JsonElement root, JsonSource source)
    {
        _files = files;
        RequireVersion(root, source);
        _normalizer = TokenizerParts.ReadNormalizer(Optional(root, "normalizer"), source);
        _preTokenizer = TokenizerParts.ReadPreTokenizer(Optional(root, "pre_tokenizer"), source);
        _model = BpeModel.Read(Optional(root, "model") ?? throw source.Fail("missing \"model\" (the tokenizer model, e.g. {\"type\": \"BPE\", \"vocab\": {…}, \"merges\": […]})"), source);
        _postProcessor = TokenizerParts.ReadPostProcessor(Optional(root, "post_processor"), source);
        _decoder = TokenizerParts.ReadDecoder(Optional(root, "decoder"), source);
        _added = AddedVocabulary.Read(Optional(root, "added_tokens"), source, _model, _normalizer);
        VocabSize = Math.Max(_model.MaxId, _added.MaxId) + 1;

        var specials = SpecialTokens.Read(files);
        BosToken = specials.Bos;
        EosToken = specials.Eos;
        PadToken = specials.Pad;
        UnkToken = specials.Unk ?? _model.UnkToken;
    }

    /// <summary>Model vocabulary plus added tokens: the largest id + 1.</summary>
    public int VocabSize { get; }

    /// <summary>The beginning-of-sequence token named by <c>tokenizer_config.json</c> / <c>special_tokens_map.json</c>, else null.</summary>
    public string? BosToken { get; }

    /// <summary>The end-of-sequence token named by the configuration files, else null.</summary>
    public string? EosToken { get; }

    /// <summary>The padding token named by the configuration files, else null.</summary>
    public string? PadToken { get; }

    /// <summary>The unknown token named by the configuration files, else the BPE model's <c>unk_token</c>, else null.</summary>
    public string? UnkToken { get; }

    /// <summary>The id of <see cref="BosToken"/>, or null when there is none or it is not in the vocabulary.</summary>
    public int? BosId => IdOf(BosToken);

    /// <summary>The id of <see cref="EosToken"/>, or null.</summary>
    public int? EosId => IdOf(EosToken);

    /// <summary>The id of <see cref="PadToken"/>, or null.</summary>
    public int? PadId => IdOf(PadToken);

    /// <summary>The id of <see cref="UnkToken"/>, or null.</summary>
    public int? UnkId => IdOf(UnkToken);

    /// <summary>
    /// The character that marks a token as the start of a word: 'Ġ' for a ByteLevel pre-tokenizer, the
    /// replacement ('▁') for Metaspace, null when the pre-tokenizer marks no word starts.
    /// </summary>
    public char? WordStartMarker => _preTokenizer?.WordStartMarker;

    /// <summary>
    /// Loads a tokenizer from a folder holding <c>tokenizer.json</c> (and optionally <c>tokenizer_config.json</c>
    /// and <c>special_tokens_map.json</c>), or from the <c>tokenizer.json</c> file itself.
    /// </summary>
    /// <exception cref="InputException">The path is missing, or a file is not a supported tokenizer.</exception>
    public static Tokenizer Load(string path)
    {
        var file = Directory.Exists(path) ? Path.Combine(path, "tokenizer.json") : path;
        if (!File.Exists(file))
            throw InputException.At(file, "tokenizer file not found");
        var folder = Path.GetDirectoryName(Path.GetFullPath(file))!;
        return FromJson(
            File.ReadAllText(file),
            ReadIfPresent(Path.Combine(folder, "tokenizer_config.json")),
            file,
            ReadIfPresent(Path.Combine(folder, "special_tokens_map.json")));
    }

    /// <summary>Builds a tokenizer from the text of its files; <paramref name="sourceName"/> names tokenizer.json in error messages.</summary>
    /// <exception cref="InputException">The JSON is invalid or describes something unsupported.</exception>
    public static Tokenizer FromJson(
        string tokenizerJson,
        string? tokenizerConfigJson = null,
        string sourceName = "tokenizer.json",
        string? specialTokensMapJson = null)
    {
        var files = new SourceFiles(sourceName, tokenizerJson, tokenizerConfigJson, specialTokensMapJson);
        var source = new JsonSource(sourceName);
        using var document = source.Parse(tokenizerJson);
        if (document.RootElement.ValueKind != JsonValueKind.Object)
            throw source.Fail($"expected a JSON object (a Hugging Face tokenizer.json), got {JsonSource.Describe(document.RootElement)}");
        return new Tokenizer(files, document.RootElement, source);
    }

    /// <summary>The ids HF <c>tokenizer.encode(text)</c> gives, with the post-processor's special tokens when <paramref name="addSpecialTokens"/>.</summary>
    public int[] Encode(string text, bool addSpecialTokens = true) =>
        EncodeToIdsAndTokens(text, addSpecialTokens, withTokens: false).Ids.ToArray();

    /// <summary>The token strings of <see cref="Encode"/>, as HF <c>encoding.tokens</c>.</summary>
    public string[] EncodeToTokens(string text, bool addSpecialTokens = true) =>
        EncodeToIdsAndTokens(text, addSpecialTokens, withTokens: true).Tokens!.ToArray();

    /// <summary>
    /// Encodes every text and pads the rows to the longest with <c>PadId ?? EosId ?? 0</c> on
    /// <paramref name="side"/>; the mask is 1 on real tokens.
    /// </summary>
    public BatchEncoding EncodeBatch(IReadOnlyList<string> texts, PaddingSide side = PaddingSide.Right, bool addSpecialTokens = true)
    {
        var rows = texts.Select(text => Encode(text, addSpecialTokens)).ToArray();
        var width = rows.Length == 0 ? 0 : rows.Max(row => row.Length);
        long padId = PadId ?? EosId ?? 0;
        var ids = new long[rows.Length][];
        var mask = new long[rows.Length][];
        for (var r = 0; r < rows.Length; r++)
        {
            ids[r] = Enumerable.Repeat(padId, width).ToArray();
            mask[r] = new long[width];
            var offset = side == PaddingSide.Left ? width - rows[r].Length : 0;
            for (var i = 0; i < rows[r].Length; i++)
            {
                ids[r][offset + i] = rows[r][i];
                mask[r][offset + i] = 1;
            }
        }
        return new BatchEncoding(ids, mask);
    }

    /// <summary>
    /// The text of <paramref name="ids"/>, as HF <c>tokenizer.decode</c>: unknown ids are dropped, special
    /// added tokens too when <paramref name="skipSpecialTokens"/>, and the rest goes through the decoder
    /// (or is joined with spaces when there is none).
    /// </summary>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = true)
    {
        var tokens = new List<string>();
        foreach (var id in ids)
        {
            var token = IdToToken(id);
            if (token is not null && !(skipSpecialTokens && _added.IsSpecialToken(token)))
                tokens.Add(token);
        }
        return _decoder is null ? string.Join(" ", tokens) : string.Concat(_decoder.DecodeChain(tokens));
    }

    /// <summary>The token string of an id (an added token's decoding form first, then the model's), or null.</summary>
    public string? IdToToken(int id) => _added.IdToToken(id) ?? _model.IdToToken(id);

    /// <summary>The id of a token string (added tokens first, then the model's vocabulary), or null.</summary>
    public int? TokenToId(string token) => _added.TokenToId(token) ?? _model.TokenToId(token);

    /// <summary>Whether the id is an added token marked <c>special</c> (dropped by <c>Decode(..., skipSpecialTokens: true)</c>).</summary>
    public bool IsSpecial(int id) => _added.IsSpecialId(id);

    /// <summary>Whether the token of <paramref name="id"/> begins with <see cref="WordStartMarker"/>.</summary>
    public bool StartsWord(int id) =>
        WordStartMarker is { } marker && IdToToken(id) is { Length: > 0 } token && token[0] == marker;

    /// <summary>
    /// Writes <c>tokenizer.json</c> exactly as it was read, plus <c>tokenizer_config.json</c> and
    /// <c>special_tokens_map.json</c> when they were loaded, so that HF (and <see cref="Load"/>) can read the folder.
    /// </summary>
    public void Save(string folder)
    {
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "tokenizer.json"), _files.TokenizerJson);
        if (_files.ConfigJson is not null)
            File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), _files.ConfigJson);
        if (_files.SpecialTokensMapJson is not null)
            File.WriteAllText(Path.Combine(folder, "special_tokens_map.json"), _files.SpecialTokensMapJson);
    }

    private Encoded EncodeToIdsAndTokens(string text, bool addSpecialTokens, bool withTokens)
    {
        var encoded = new Encoded([], withTokens ? [] : null);
        foreach (var segment in _added.SplitRaw(text))
        {
            if (segment.TokenId is { } id)
                Append(encoded, id, segment.Text);
            else
                EncodeNormalized(segment, encoded);
        }
        return addSpecialTokens && _postProcessor is not null ? _postProcessor.Process(encoded) : encoded;
    }

    private void EncodeNormalized(Segment segment, Encoded encoded)
    {
        var normalized = _normalizer?.Normalize(segment.Text) ?? segment.Text;
        foreach (var part in _added.SplitNormalized(normalized, segment.AtStart))
        {
            if (part.TokenId is { } id)
            {
                Append(encoded, id, part.Text);
                continue;
            }
            List<Piece> words = [new Piece(part.Text, part.AtStart)];
            foreach (var word in _preTokenizer?.SplitAll(words) ?? words)
                EncodeWord(word.Text, encoded);
        }
    }

    private void EncodeWord(string word, Encoded encoded)
    {
        foreach (var id in _model.Tokenize(word))
            Append(encoded, id, _model.IdToToken(id)!);
    }

    private static void Append(Encoded encoded, int id, string token)
    {
        encoded.Ids.Add(id);
        encoded.Tokens?.Add(token);
    }

    private int? IdOf(string? token) => token is null ? null : TokenToId(token);

    private static void RequireVersion(JsonElement root, JsonSource source)
    {
        var version = source.OptionalString(root, "version");
        if (version is not null and not "1.0")
            throw source.Fail($"unknown tokenizer version \"{version}\"");
    }

    private static JsonElement? Optional(JsonElement root, string key) =>
        root.TryGetProperty(key, out var value) && value.ValueKind != JsonValueKind.Null ? value : null;

    private static string? ReadIfPresent(string path) => File.Exists(path) ? File.ReadAllText(path) : null;

    /// <summary>The texts a tokenizer was read from, kept to write them back unchanged.</summary>
    private sealed record SourceFiles(string TokenizerName, string TokenizerJson, string? ConfigJson, string? SpecialTokensMapJson)
    {
        public string SiblingName(string fileName) =>
            Path.Combine(Path.GetDirectoryName(TokenizerName) ?? "", fileName);
    }

    /// <summary>
    /// The bos/eos/pad/unk token strings of <c>tokenizer_config.json</c>, overridden by
    /// <c>special_tokens_map.json</c> as transformers does; each a string or an <c>{"content": ...}</c> object.
    /// </summary>
    private sealed record SpecialTokens(string? Bos, string? Eos, string? Pad, string? Unk)
    {
        private static readonly string[] Keys = ["bos_token", "eos_token", "pad_token", "unk_token"];

        public static SpecialTokens Read(SourceFiles files)
        {
            var values = new Dictionary<string, string?>();
            ReadInto(values, files.ConfigJson, files.SiblingName("tokenizer_config.json"));
            ReadInto(values, files.SpecialTokensMapJson, files.SiblingName("special_tokens_map.json"));
            return new SpecialTokens(
                values.GetValueOrDefault("bos_token"),
                values.GetValueOrDefault("eos_token"),
                values.GetValueOrDefault("pad_token"),
                values.GetValueOrDefault("unk_token"));
        }

        private static void ReadInto(Dictionary<string, string?> values, string? json, string name)
        {
            if (json is null)
                return;
            var source = new JsonSource(name);
            using var document = source.Parse(json);
            if (document.RootElement.ValueKind != JsonValueKind.Object)
                throw source.Fail("expected a JSON object");
            foreach (var key in Keys)
            {
                if (document.RootElement.TryGetProperty(key, out var value))
                    values[key] = TokenContent(value, key, source);
            }
        }

        private static string? TokenContent(JsonElement value, string key, JsonSource source) => value.ValueKind switch
        {
            JsonValueKind.Null => null,
            JsonValueKind.String => value.GetString(),
            JsonValueKind.Object => source.RequiredString(value, "content", key),
            _ => throw source.Fail($"\"{key}\" must be a string or an object with \"content\""),
        };
    }
}

/// <summary>A stretch of text: an added token (<c>TokenId</c>) or text for the pipeline; <c>AtStart</c>: it begins the original text.</summary>
internal readonly record struct Segment(string Text, bool AtStart, int? TokenId);

/// <summary>
/// HF's <c>AddedVocabulary</c>: tokens (<c>added_tokens</c>) cut out of the text before the model sees it.
/// Tokens with <c>normalized: false</c> are matched in the raw text, the others in the normalized text
/// (in their normalized form); at each position the longest token wins, scanning left to right.
/// <c>single_word</c> keeps a match only between non-word characters; <c>lstrip</c>/<c>rstrip</c> take in
/// the whitespace before/after it. "Word" and "whitespace" follow Rust regex's Unicode \w and \s
/// (see <see cref="CodePoints.IsWordChar"/>).
/// </summary>
internal sealed class AddedVocabulary
{
    private readonly Dictionary<string, int> _idByContent = new(StringComparer.Ordinal);
    private readonly Dictionary<int, AddedToken> _tokenById = [];
    private readonly Dictionary<int, string> _normalizedById = [];
    private readonly HashSet<string> _specialContents = new(StringComparer.Ordinal);
    private readonly TokenMatcher _rawMatcher;
    private readonly TokenMatcher _normalizedMatcher;

    private sealed record AddedToken(string Content, bool SingleWord, bool LStrip, bool RStrip, bool Normalized, bool Special);

    private AddedVocabulary(IEnumerable<AddedToken> tokens, BpeModel model, INormalizer? normalizer)
    {
        var nextId = model.VocabCount;
        foreach (var token in tokens)
        {
            if (token.Content.Length == 0 || (_idByContent.TryGetValue(token.Content, out var known) && _tokenById[known] == token))
                continue;
            // As HF: a token keeps the id it already has (added or model); the JSON "id" is not consulted.
            var id = _idByContent.TryGetValue(token.Content, out known) ? known : model.TokenToId(token.Content) ?? nextId++;
            if (token.Normalized && normalizer?.Normalize(token.Content) is { } normalized && normalized != token.Content)
                _normalizedById[id] = normalized;
            _idByContent[token.Content] = id;
            if (token.Special)
                _specialContents.Add(token.Content);
            _tokenById[id] = token;
        }
        _rawMatcher = new TokenMatcher(_tokenById.Where(pair => !pair.Value.Normalized).Select(pair => (pair.Value.Content, pair.Key)));
        _normalizedMatcher = new TokenMatcher(_tokenById.Where(pair => pair.Value.Normalized).Select(pair => (IdToToken(pair.Key)!, pair.Key)));
        MaxId = _tokenById.Count == 0 ? -1 : _tokenById.Keys.Max();
    }

    /// <summary>The largest added-token id, -1 when there are none.</summary>
    public int MaxId { get; }

    public static AddedVocabulary Read(JsonElement? json, JsonSource source, BpeModel model, INormalizer? normalizer) =>
        new(ReadTokens(json, source), model, normalizer);

    private static IEnumerable<AddedToken> ReadTokens(JsonElement? json, JsonSource source)
    {
        if (json is not { } array)
            yield break;
        if (array.ValueKind != JsonValueKind.Array)
            throw source.Fail("\"added_tokens\" must be an array");
        foreach (var token in array.EnumerateArray())
        {
            yield return new AddedToken(
                source.RequiredString(token, "content", "an added token"),
                source.Bool(token, "single_word", false),
                source.Bool(token, "lstrip", false),
                source.Bool(token, "rstrip", false),
                source.Bool(token, "normalized", true),
                source.Bool(token, "special", false));
        }
    }

    /// <summary>The string a decoder gets for an added token: its normalized form when it has one.</summary>
    public string? IdToToken(int id) =>
        _normalizedById.TryGetValue(id, out var normalized) ? normalized : _tokenById.GetValueOrDefault(id)?.Content;

    public int? TokenToId(string token) => _idByContent.TryGetValue(token, out var id) ? id : null;

    public bool IsSpecialId(int id) => _tokenById.GetValueOrDefault(id)?.Special == true;

    /// <summary>HF skips special tokens by their string, so this is what decoding asks.</summary>
    public bool IsSpecialToken(string token) => _specialContents.Contains(token);

    public List<Segment> SplitRaw(string text) => Split(text, _rawMatcher, atStart: true);

    public List<Segment> SplitNormalized(string text, bool atStart) => Split(text, _normalizedMatcher, atStart);

    /// <summary>HF <c>find_matches</c>: the tokens found and the (non-empty) text between them.</summary>
    private List<Segment> Split(string text, TokenMatcher matcher, bool atStart)
    {
        var segments = new List<Segment>();
        var offset = 0;
        foreach (var (matchStart, matchStop, id) in matcher.Matches(text))
        {
            var token = _tokenById[id];
            if (token.SingleWord && !IsSingleWord(text, matchStart, matchStop))
                continue;
            var start = token.LStrip ? Math.Max(WhitespaceStartBefore(text, matchStart), offset) : matchStart;
            var stop = token.RStrip ? WhitespaceEndAfter(text, matchStop) : matchStop;
            AddText(segments, text, offset, start, atStart);
            segments.Add(new Segment(text[start..stop], atStart && start == 0, id));
            offset = stop;
        }
        AddText(segments, text, offset, text.Length, atStart);
        return segments;
    }

    private static void AddText(List<Segment> segments, string text, int start, int stop, bool atStart)
    {
        if (start < stop)
            segments.Add(new Segment(text[start..stop], atStart && start == 0, null));
    }

    private static bool IsSingleWord(string text, int start, int stop)
    {
        var wordBefore = start > 0 && Rune.DecodeLastFromUtf16(text.AsSpan(0, start), out var before, out _) == OperationStatus.Done
            && CodePoints.IsWordChar(before);
        var wordAfter = stop < text.Length && CodePoints.IsWordChar(CodePoints.At(text, stop, out _));
        return !wordBefore && !wordAfter;
    }

    private static int WhitespaceStartBefore(string text, int index)
    {
        while (index > 0 && char.IsWhiteSpace(text[index - 1]))
            index--;
        return index;
    }

    private static int WhitespaceEndAfter(string text, int index)
    {
        while (index < text.Length && char.IsWhiteSpace(text[index]))
            index++;
        return index;
    }

    /// <summary>Leftmost-longest, non-overlapping search for a set of strings (HF uses an Aho-Corasick automaton).</summary>
    private sealed class TokenMatcher
    {
        private readonly Dictionary<char, (string Pattern, int Id)[]> _byFirstChar;

        public TokenMatcher(IEnumerable<(string Pattern, int Id)> patterns) =>
            _byFirstChar = patterns
                .GroupBy(p => p.Pattern[0])
                .ToDictionary(g => g.Key, g => g.OrderByDescending(p => p.Pattern.Length).ToArray());

        public IEnumerable<(int Start, int Stop, int Id)> Matches(string text)
        {
            if (_byFirstChar.Count == 0)
                yield break;
            for (var i = 0; i < text.Length;)
            {
                if (LongestAt(text, i) is { } match)
                {
                    yield return (i, i + match.Pattern.Length, match.Id);
                    i += match.Pattern.Length;
                }
                else
                {
                    i++;
                }
            }
        }

        private (string Pattern, int Id)? LongestAt(string text, int index)
        {
            if (!_byFirstChar.TryGetValue(text[index], out var candidates))
                return null;
            foreach (var candidate in candidates)
            {
                if (index + candidate.Pattern.Length <= text.Length
                    && string.CompareOrdinal(text, index, candidate.Pattern, 0, candidate.Pattern.Length) == 0)
                    return candidate;
            }
            return null;
        }
    }
}

/// <summary>
/// HF's BPE model: a word is split into characters (with <c>continuing_subword_prefix</c> /
/// <c>end_of_word_suffix</c>), characters outside the vocabulary become <c>&lt;0xNN&gt;</c> byte tokens
/// (<c>byte_fallback</c>) or the unknown token (fused when <c>fuse_unk</c>), and then the adjacent pair with
/// the lowest merge rank is merged, leftmost first, until no pair has a merge. Results are cached per word.
/// </summary>
internal sealed class BpeModel
{
    private const int CacheCapacity = 100_000;
    private const int MaxCachedWordLength = 256;

    private readonly Dictionary<string, int> _vocab;
    private readonly Dictionary<int, string> _tokenById = [];
    private readonly Dictionary<long, (int Rank, int Id)> _merges = [];
    private readonly string? _prefix;
    private readonly string? _suffix;
    private readonly int? _unkId;
    private readonly bool _fuseUnk;
    private readonly bool _byteFallback;
    private readonly bool _ignoreMerges;
    private readonly Dictionary<string, int[]> _cache = new(StringComparer.Ordinal);

    private BpeModel(JsonElement model, JsonSource source)
    {
        _vocab = ReadVocab(source.Object(model, "vocab", "model", "an object of token → id"), source);
        foreach (var (token, id) in _vocab)
            _tokenById[id] = token;
        _prefix = source.OptionalString(model, "continuing_subword_prefix");
        _suffix = source.OptionalString(model, "end_of_word_suffix");
        UnkToken = source.OptionalString(model, "unk_token");
        if (UnkToken is not null)
            _unkId = TokenToId(UnkToken) ?? throw source.Fail($"BPE unk_token \"{UnkToken}\" is not in the vocabulary");
        _fuseUnk = source.Bool(model, "fuse_unk", false);
        _byteFallback = source.Bool(model, "byte_fallback", false);
        _ignoreMerges = source.Bool(model, "ignore_merges", false);
        ReadMerges(model, source);
    }

    /// <summary>The model's <c>unk_token</c>, or null.</summary>
    public string? UnkToken { get; }

    /// <summary>The number of vocabulary entries (where HF starts numbering new added tokens).</summary>
    public int VocabCount => _vocab.Count;

    /// <summary>The largest id in the vocabulary, -1 when it is empty.</summary>
    public int MaxId => _tokenById.Count == 0 ? -1 : _tokenById.Keys.Max();

    /// <summary>Reads the <c>model</c> object; only BPE without dropout is supported.</summary>
    public static BpeModel Read(JsonElement model, JsonSource source)
    {
        if (model.ValueKind != JsonValueKind.Object)
            throw source.Fail($"\"model\" must be an object, got {JsonSource.Describe(model)}");
        // HF reads a model without "type" by its fields; one with merges is a BPE model.
        var type = source.OptionalString(model, "type")
            ?? (model.TryGetProperty("merges", out _) ? "BPE" : throw source.Fail("\"model\" has no \"type\" (expected \"type\": \"BPE\", or BPE's \"vocab\" and \"merges\")"));
        if (type != "BPE")
            throw source.Fail($"unsupported tokenizer model type {type}");
        if (model.TryGetProperty("dropout", out var dropout) && dropout.ValueKind != JsonValueKind.Null
            && !(dropout.ValueKind == JsonValueKind.Number && dropout.GetDouble() == 0))
            throw source.Fail($"BPE dropout {dropout.GetRawText()} is not supported (tokenization must be deterministic)");
        return new BpeModel(model, source);
    }

    public string? IdToToken(int id) => _tokenById.GetValueOrDefault(id);

    public int? TokenToId(string token) => _vocab.TryGetValue(token, out var id) ? id : null;

    /// <summary>The ids of one pre-tokenized word. The returned array is shared: do not modify it.</summary>
    public int[] Tokenize(string word)
    {
        if (word.Length == 0)
            return [];
        if (_ignoreMerges && _vocab.TryGetValue(word, out var whole))
            return [whole];
        lock (_cache)
        {
            if (_cache.TryGetValue(word, out var cached))
                return cached;
        }
        var ids = Merge(Symbols(word));
        lock (_cache)
        {
            if (word.Length < MaxCachedWordLength && _cache.Count < CacheCapacity)
                _cache[word] = ids;
        }
        return ids;
    }

    /// <summary>HF <c>merge_word</c>'s first half: the initial symbols of a word.</summary>
    private List<int> Symbols(string word)
    {
        var symbols = new List<int>(word.Length);
        var unkPending = false;
        for (var i = 0; i < word.Length;)
        {
            CodePoints.At(word, i, out var width);
            var piece = word.Substring(i, width);
            if (i > 0 && _prefix is not null)
                piece = _prefix + piece;
            i += width;
            if (i == word.Length && _suffix is not null)
                piece += _suffix;

            if (_vocab.TryGetValue(piece, out var id))
            {
                if (unkPending)
                    symbols.Add(_unkId!.Value);
                unkPending = false;
                symbols.Add(id);
            }
            else if (!(_byteFallback && TryAddBytes(piece, symbols)) && _unkId is { } unk)
            {
                // As HF, byte tokens do not flush a pending unknown token.
                if (unkPending && !_fuseUnk)
                    symbols.Add(unk);
                unkPending = true;
            }
        }
        if (unkPending)
            symbols.Add(_unkId!.Value);
        return symbols;
    }

    private bool TryAddBytes(string piece, List<int> symbols)
    {
        var ids = new List<int>();
        foreach (var b in Encoding.UTF8.GetBytes(piece))
        {
            if (!_vocab.TryGetValue($"<0x{b:X2}>", out var id))
                return false;
            ids.Add(id);
        }
        symbols.AddRange(ids);
        return true;
    }

    /// <summary>
    /// HF <c>Word::merge_all</c>: a queue of candidate merges ordered by (rank, position); an entry is
    /// skipped when its pair has changed since it was queued.
    /// </summary>
    private int[] Merge(List<int> symbols)
    {
        var count = symbols.Count;
        var ids = symbols.ToArray();
        var prev = Enumerable.Range(-1, count).ToArray();
        var next = Enumerable.Range(1, count).Select(n => n < count ? n : -1).ToArray();
        var removed = new bool[count];
        var queue = new PriorityQueue<(int Pos, int NewId), long>();
        for (var i = 0; i + 1 < count; i++)
            Enqueue(queue, ids, i, i + 1);

        while (queue.TryDequeue(out var top, out _))
        {
            var pos = top.Pos;
            if (removed[pos] || next[pos] == -1)
                continue;
            var right = next[pos];
            if (!_merges.TryGetValue(PairKey(ids[pos], ids[right]), out var merge) || merge.Id != top.NewId)
                continue;
            ids[pos] = merge.Id;
            removed[right] = true;
            next[pos] = next[right];
            if (next[pos] != -1)
                prev[next[pos]] = pos;
            if (prev[pos] != -1)
                Enqueue(queue, ids, prev[pos], pos);
            if (next[pos] != -1)
                Enqueue(queue, ids, pos, next[pos]);
        }
        return ids.Where((_, i) => !removed[i]).ToArray();
    }

    private void Enqueue(PriorityQueue<(int Pos, int NewId), long> queue, int[] ids, int left, int right)
    {
        if (_merges.TryGetValue(PairKey(ids[left], ids[right]), out var merge))
            queue.Enqueue((left, merge.Id), ((long)merge.Rank << 32) | (uint)left);
    }

    private static long PairKey(int left, int right) => ((long)left << 32) | (uint)right;

    private static Dictionary<string, int> ReadVocab(JsonElement vocab, JsonSource source)
    {
        var result = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var entry in vocab.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.Number || !entry.Value.TryGetInt32(out var id) || id < 0)
                throw source.Fail($"vocabulary entry \"{entry.Name}\" must have a non-negative integer id");
            result[entry.Name] = id;
        }
        return result;
    }

    /// <summary>Merges as <c>"a b"</c> strings or <c>["a", "b"]</c> pairs; the rank is the position, a repeated pair keeps the last.</summary>
    private void ReadMerges(JsonElement model, JsonSource source)
    {
        var rank = 0;
        foreach (var merge in source.Array(model, "merges", "model", "a list of \"a b\" or [\"a\", \"b\"] merges"))
        {
            var (left, right) = ReadMerge(merge, rank, source);
            var leftId = TokenToId(left) ?? throw source.Fail($"merge {rank}: \"{left}\" is not in the vocabulary");
            var rightId = TokenToId(right) ?? throw source.Fail($"merge {rank}: \"{right}\" is not in the vocabulary");
            var prefixLength = _prefix?.Length ?? 0;
            if (right.Length < prefixLength)
                throw source.Fail($"merge {rank}: \"{right}\" is shorter than continuing_subword_prefix");
            var merged = left + right[prefixLength..];
            var mergedId = TokenToId(merged) ?? throw source.Fail($"merge {rank}: \"{merged}\" is not in the vocabulary");
            _merges[PairKey(leftId, rightId)] = (rank, mergedId);
            rank++;
        }
    }

    private static (string Left, string Right) ReadMerge(JsonElement merge, int rank, JsonSource source)
    {
        if (merge.ValueKind == JsonValueKind.String && merge.GetString()!.Split(' ') is [var a, var b])
            return (a, b);
        if (merge.ValueKind == JsonValueKind.Array && merge.GetArrayLength() == 2
            && merge[0].ValueKind == JsonValueKind.String && merge[1].ValueKind == JsonValueKind.String)
            return (merge[0].GetString()!, merge[1].GetString()!);
        throw source.Fail($"merge {rank} must be \"a b\" or [\"a\", \"b\"]");
    }
}
