using System.Globalization;
using System.Text;
using System.Text.Json;

namespace BabyPpo.Training.Text;

// The configurable stages of a Hugging Face tokenizer, each a port of its tokenizers 0.23 counterpart:
// normalizers, pre-tokenizers, post-processors and decoders, read from their tokenizer.json objects.
// Types the project has no use for are refused with an InputException rather than approximated.

/// <summary>A piece of text on its way to the model; <c>AtStart</c>: it begins at offset 0 of the original text.</summary>
internal readonly record struct Piece(string Text, bool AtStart);

/// <summary>Ids and (when asked for) their token strings.</summary>
internal sealed record Encoded(List<int> Ids, List<string>? Tokens);

/// <summary>Rewrites text before pre-tokenization (HF <c>normalizer</c>).</summary>
internal interface INormalizer
{
    string Normalize(string text);
}

/// <summary>Cuts text into words for the model (HF <c>pre_tokenizer</c>).</summary>
internal interface IPreTokenizer
{
    /// <summary>The character its words start with ('Ġ', '▁'), or null.</summary>
    char? WordStartMarker { get; }

    void Split(Piece piece, List<Piece> output);
}

/// <summary>Adds special tokens around an encoded text (HF <c>post_processor</c>, with add_special_tokens).</summary>
internal interface IPostProcessor
{
    Encoded Process(Encoded encoded);
}

/// <summary>Turns token strings back into text pieces (HF <c>decoder</c>'s <c>decode_chain</c>).</summary>
internal interface IDecoder
{
    List<string> DecodeChain(List<string> tokens);
}

/// <summary>Reads each stage from its JSON object.</summary>
internal static class TokenizerParts
{
    public static INormalizer? ReadNormalizer(JsonElement? json, JsonSource source)
    {
        if (json is not { } node)
            return null;
        return source.Type(node, "normalizer") switch
        {
            "Sequence" => new SequenceNormalizer(source.Array(node, "normalizers").Select(n => ReadNormalizer(n, source)!).ToArray()),
            "NFC" => new UnicodeNormalizer(NormalizationForm.FormC),
            "NFD" => new UnicodeNormalizer(NormalizationForm.FormD),
            "NFKC" => new UnicodeNormalizer(NormalizationForm.FormKC),
            "NFKD" => new UnicodeNormalizer(NormalizationForm.FormKD),
            "Lowercase" => new LowercaseNormalizer(),
            "Prepend" => new PrependNormalizer(source.RequiredString(node, "prepend", "Prepend")),
            "Replace" => new ReplaceNormalizer(ReplacePattern.Read(node, source)),
            var type => throw source.Fail($"unsupported normalizer type \"{type}\""),
        };
    }

    public static IPreTokenizer? ReadPreTokenizer(JsonElement? json, JsonSource source)
    {
        if (json is not { } node)
            return null;
        return source.Type(node, "pre_tokenizer") switch
        {
            "Sequence" => new SequencePreTokenizer(source.Array(node, "pretokenizers").Select(n => ReadPreTokenizer(n, source)!).ToArray()),
            "ByteLevel" => new ByteLevelPreTokenizer(source.Bool(node, "add_prefix_space", true), source.Bool(node, "use_regex", true)),
            "Metaspace" => MetaspacePreTokenizer.Read(node, source),
            "Whitespace" => new WhitespacePreTokenizer(),
            "WhitespaceSplit" => new WhitespaceSplitPreTokenizer(),
            var type => throw source.Fail($"unsupported pre_tokenizer type \"{type}\""),
        };
    }

    public static IPostProcessor? ReadPostProcessor(JsonElement? json, JsonSource source)
    {
        if (json is not { } node)
            return null;
        return source.Type(node, "post_processor") switch
        {
            "TemplateProcessing" => TemplateProcessor.Read(node, source),
            "ByteLevel" => null, // only trims offsets, which we do not compute
            "Sequence" => SequencePostProcessor.Of(source.Array(node, "processors").Select(n => ReadPostProcessor(n, source))),
            var type => throw source.Fail($"unsupported post_processor type \"{type}\""),
        };
    }

    public static IDecoder? ReadDecoder(JsonElement? json, JsonSource source)
    {
        if (json is not { } node)
            return null;
        return source.Type(node, "decoder") switch
        {
            "Sequence" => new SequenceDecoder(source.Array(node, "decoders").Select(n => ReadDecoder(n, source)!).ToArray()),
            "ByteLevel" => new ByteLevelDecoder(),
            "Metaspace" => MetaspaceDecoder.Read(node, source),
            "Replace" => new ReplaceDecoder(ReplacePattern.Read(node, source)),
            "ByteFallback" => new ByteFallbackDecoder(),
            "Fuse" => new FuseDecoder(),
            "Strip" => new StripDecoder(source.RequiredChar(node, "content", "Strip"), source.Int(node, "start"), source.Int(node, "stop")),
            var type => throw source.Fail($"unsupported decoder type \"{type}\""),
        };
    }

    /// <summary>Runs a pre-tokenizer over every piece, dropping empty results as HF does.</summary>
    public static List<Piece> SplitAll(this IPreTokenizer preTokenizer, List<Piece> pieces)
    {
        var output = new List<Piece>();
        foreach (var piece in pieces)
            preTokenizer.Split(piece, output);
        output.RemoveAll(piece => piece.Text.Length == 0);
        return output;
    }
}

/// <summary>Reads one JSON file and reports its problems as <see cref="InputException"/>s naming it.</summary>
internal sealed class JsonSource(string name)
{
    public InputException Fail(string message) => InputException.At(name, message);

    public JsonDocument Parse(string json)
    {
        try
        {
            return JsonDocument.Parse(json);
        }
        catch (JsonException e)
        {
            var reason = e.Message.Split(" LineNumber:")[0]; // the position is given as the line instead
            throw InputException.At(name, $"invalid JSON: {reason}", (e.LineNumber ?? 0) + 1);
        }
    }

    /// <summary>The "type" of a stage object, which must be there.</summary>
    public string Type(JsonElement node, string what) =>
        node.ValueKind == JsonValueKind.Object && node.TryGetProperty("type", out var type) && type.ValueKind == JsonValueKind.String
            ? type.GetString()!
            : throw Fail($"{what} has no \"type\"");

    public string? OptionalString(JsonElement node, string key)
    {
        if (!node.TryGetProperty(key, out var value) || value.ValueKind == JsonValueKind.Null)
            return null;
        return value.ValueKind == JsonValueKind.String ? value.GetString() : throw Fail($"\"{key}\" must be a string");
    }

    public string RequiredString(JsonElement node, string key, string what) =>
        OptionalString(node, key) ?? throw Fail($"{what} needs a string \"{key}\"");

    public char RequiredChar(JsonElement node, string key, string what) =>
        RequiredString(node, key, what) is [var c] ? c : throw Fail($"{what} \"{key}\" must be a single character");

    public bool Bool(JsonElement node, string key, bool fallback)
    {
        if (!node.TryGetProperty(key, out var value) || value.ValueKind == JsonValueKind.Null)
            return fallback;
        return value.ValueKind is JsonValueKind.True or JsonValueKind.False ? value.GetBoolean() : throw Fail($"\"{key}\" must be true or false");
    }

    public int Int(JsonElement node, string key) =>
        node.TryGetProperty(key, out var value) && value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out var number) && number >= 0
            ? number
            : throw Fail($"\"{key}\" must be a non-negative integer");

    /// <summary>The array at <paramref name="key"/>; <paramref name="owner"/> and <paramref name="what"/> make the error say where and what is expected.</summary>
    public JsonElement.ArrayEnumerator Array(JsonElement node, string key, string? owner = null, string what = "an array") =>
        node.TryGetProperty(key, out var value) && value.ValueKind == JsonValueKind.Array
            ? value.EnumerateArray()
            : throw Fail(Expected(node, key, owner, what));

    /// <summary>The object at <paramref name="key"/>; <paramref name="owner"/> and <paramref name="what"/> make the error say where and what is expected.</summary>
    public JsonElement Object(JsonElement node, string key, string? owner = null, string what = "an object") =>
        node.TryGetProperty(key, out var value) && value.ValueKind == JsonValueKind.Object
            ? value
            : throw Fail(Expected(node, key, owner, what));

    /// <summary>"\"model\" has no \"vocab\" (expected …)" when the key is absent, else "\"model.vocab\" must be …, got …".</summary>
    static string Expected(JsonElement node, string key, string? owner, string what)
    {
        string path = owner is null ? key : $"{owner}.{key}";
        if (!node.TryGetProperty(key, out var value) || value.ValueKind == JsonValueKind.Null)
            return owner is null ? $"missing \"{key}\" (expected {what})" : $"\"{owner}\" has no \"{key}\" (expected {what})";
        return $"\"{path}\" must be {what}, got {Describe(value)}";
    }

    /// <summary>A JSON value's kind in words: "a string", "an array", …</summary>
    public static string Describe(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "true/false",
        _ => "null",
    };
}

/// <summary>Code point classes, as HF's regexes see them (on code points, not UTF-16 units).</summary>
internal static class CodePoints
{
    /// <summary>The code point at <paramref name="index"/>; a lone surrogate reads as U+FFFD of width 1.</summary>
    public static Rune At(string text, int index, out int width)
    {
        Rune.DecodeFromUtf16(text.AsSpan(index), out var rune, out width);
        return rune;
    }

    /// <summary>\p{L}.</summary>
    public static bool IsLetter(Rune rune) => Rune.GetUnicodeCategory(rune) <= UnicodeCategory.OtherLetter;

    /// <summary>\p{N}.</summary>
    public static bool IsNumber(Rune rune) =>
        Rune.GetUnicodeCategory(rune) is UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber;

    /// <summary>
    /// Rust regex's Unicode \w: Alphabetic, marks, decimal digits, connector punctuation, join controls.
    /// Alphabetic is taken as letters, letter numbers and the circled/squared Latin letters (its other
    /// members are marks, already included).
    /// </summary>
    public static bool IsWordChar(Rune rune) => Rune.GetUnicodeCategory(rune) switch
    {
        <= UnicodeCategory.OtherLetter => true,
        UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark => true,
        UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.ConnectorPunctuation => true,
        _ => rune.Value is 0x200C or 0x200D or (>= 0x24B6 and <= 0x24E9) or (>= 0x1F130 and <= 0x1F149)
            or (>= 0x1F150 and <= 0x1F169) or (>= 0x1F170 and <= 0x1F189),
    };
}

// ---------------------------------------------------------------- normalizers

internal sealed class SequenceNormalizer(INormalizer[] normalizers) : INormalizer
{
    public string Normalize(string text) => normalizers.Aggregate(text, (current, normalizer) => normalizer.Normalize(current));
}

internal sealed class UnicodeNormalizer(NormalizationForm form) : INormalizer
{
    public string Normalize(string text) => text.Normalize(form);
}

/// <summary>Rust's per-character full lowercase mapping; U+0130 is its one multi-character case.</summary>
internal sealed class LowercaseNormalizer : INormalizer
{
    public string Normalize(string text) => text.Replace("\u0130", "i\u0307", StringComparison.Ordinal).ToLowerInvariant();
}

internal sealed class PrependNormalizer(string prefix) : INormalizer
{
    public string Normalize(string text) => text.Length == 0 ? text : prefix + text;
}

internal sealed class ReplaceNormalizer(ReplacePattern pattern) : INormalizer
{
    public string Normalize(string text) => pattern.Apply(text);
}

/// <summary>A <c>Replace</c> normalizer's or decoder's pattern; only the <c>{"String": ...}</c> form is supported.</summary>
internal sealed record ReplacePattern(string Find, string Content)
{
    public static ReplacePattern Read(JsonElement node, JsonSource source)
    {
        var pattern = source.Object(node, "pattern");
        var find = source.OptionalString(pattern, "String")
            ?? throw source.Fail("Replace: only {\"String\": ...} patterns are supported (not Regex)");
        if (find.Length == 0)
            throw source.Fail("Replace: the pattern string is empty");
        return new ReplacePattern(find, source.RequiredString(node, "content", "Replace"));
    }

    public string Apply(string text) => text.Replace(Find, Content, StringComparison.Ordinal);
}

// ---------------------------------------------------------------- pre-tokenizers

internal sealed class SequencePreTokenizer(IPreTokenizer[] preTokenizers) : IPreTokenizer
{
    public char? WordStartMarker => preTokenizers.Select(p => p.WordStartMarker).FirstOrDefault(marker => marker is not null);

    public void Split(Piece piece, List<Piece> output) =>
        output.AddRange(preTokenizers.Aggregate(new List<Piece> { piece }, (pieces, preTokenizer) => preTokenizer.SplitAll(pieces)));
}

/// <summary>
/// GPT-2's byte-level pre-tokenizer: optionally a leading space, the GPT-2 split
/// <c>'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+</c>,
/// then every UTF-8 byte written as its printable stand-in character.
/// </summary>
internal sealed class ByteLevelPreTokenizer(bool addPrefixSpace, bool useRegex) : IPreTokenizer
{
    private static readonly string[] Contractions = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d"];

    public char? WordStartMarker => ByteLevelAlphabet.ByteToChar[' '];

    public void Split(Piece piece, List<Piece> output)
    {
        var text = addPrefixSpace && !piece.Text.StartsWith(' ') ? " " + piece.Text : piece.Text;
        if (!useRegex)
        {
            output.Add(piece with { Text = ByteLevelAlphabet.Encode(text) });
            return;
        }
        for (var start = 0; start < text.Length;)
        {
            var length = MatchLength(text, start);
            output.Add(new Piece(ByteLevelAlphabet.Encode(text.Substring(start, length)), piece.AtStart && start == 0));
            start += length;
        }
    }

    /// <summary>The length of the GPT-2 regex's match at <paramref name="i"/> (it matches everywhere, so there are no gaps).</summary>
    private static int MatchLength(string s, int i)
    {
        foreach (var contraction in Contractions)
        {
            if (string.CompareOrdinal(s, i, contraction, 0, contraction.Length) == 0)
                return contraction.Length;
        }
        var j = s[i] == ' ' ? i + 1 : i;
        var run = j < s.Length ? ClassRunLength(s, j) : 0;
        return run > 0 ? j - i + run : WhitespaceLength(s, i);
    }

    /// <summary>A run of letters, of numbers, or of other non-space characters, by the class of the first; 0 on a space.</summary>
    private static int ClassRunLength(string s, int start)
    {
        var kind = Kind(CodePoints.At(s, start, out _));
        if (kind == 0)
            return 0;
        var i = start;
        while (i < s.Length && Kind(CodePoints.At(s, i, out var width)) == kind)
            i += width;
        return i - start;
    }

    private static int Kind(Rune rune) =>
        Rune.IsWhiteSpace(rune) ? 0 : CodePoints.IsLetter(rune) ? 1 : CodePoints.IsNumber(rune) ? 2 : 3;

    /// <summary><c>\s+(?!\S)|\s+</c>: a run of spaces, leaving its last one to the word that follows.</summary>
    private static int WhitespaceLength(string s, int start)
    {
        var end = start;
        while (end < s.Length && char.IsWhiteSpace(s[end]))
            end++;
        return end == s.Length || end - start == 1 ? end - start : end - start - 1;
    }
}

/// <summary>GPT-2's reversible map between bytes and printable characters.</summary>
internal static class ByteLevelAlphabet
{
    public static readonly char[] ByteToChar = BuildByteToChar();
    private static readonly Dictionary<char, byte> CharToByte =
        Enumerable.Range(0, 256).ToDictionary(b => ByteToChar[b], b => (byte)b);

    public static string Encode(string text)
    {
        var bytes = Encoding.UTF8.GetBytes(text);
        return string.Create(bytes.Length, bytes, (chars, source) =>
        {
            for (var i = 0; i < source.Length; i++)
                chars[i] = ByteToChar[source[i]];
        });
    }

    /// <summary>The bytes of a token: its characters mapped back, or its UTF-8 when one is outside the alphabet (added tokens).</summary>
    public static void AppendBytes(string token, List<byte> bytes)
    {
        var mapped = new List<byte>(token.Length);
        foreach (var c in token)
        {
            if (!CharToByte.TryGetValue(c, out var b))
            {
                bytes.AddRange(Encoding.UTF8.GetBytes(token));
                return;
            }
            mapped.Add(b);
        }
        bytes.AddRange(mapped);
    }

    private static char[] BuildByteToChar()
    {
        var map = new char[256];
        var next = 256;
        for (var b = 0; b < 256; b++)
        {
            var printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            map[b] = printable ? (char)b : (char)next++;
        }
        return map;
    }
}

/// <summary>When a Metaspace pre-tokenizer puts the replacement before a piece.</summary>
internal enum PrependScheme { Always, First, Never }

/// <summary>SentencePiece-style: spaces become the replacement ('▁'), optionally prepended, and each one starts a new word.</summary>
internal sealed class MetaspacePreTokenizer(char replacement, PrependScheme scheme, bool split) : IPreTokenizer
{
    public char? WordStartMarker => replacement;

    public static MetaspacePreTokenizer Read(JsonElement node, JsonSource source) =>
        new(source.RequiredChar(node, "replacement", "Metaspace"), ReadScheme(node, source), source.Bool(node, "split", true));

    /// <summary><c>prepend_scheme</c> (default always); the legacy <c>add_prefix_space: false</c> must say never.</summary>
    public static PrependScheme ReadScheme(JsonElement node, JsonSource source)
    {
        var scheme = source.OptionalString(node, "prepend_scheme") switch
        {
            null or "always" => PrependScheme.Always,
            "first" => PrependScheme.First,
            "never" => PrependScheme.Never,
            var other => throw source.Fail($"Metaspace: unknown prepend_scheme \"{other}\""),
        };
        if (!source.Bool(node, "add_prefix_space", true) && scheme != PrependScheme.Never)
            throw source.Fail("Metaspace: add_prefix_space does not match declared prepend_scheme");
        return scheme;
    }

    public void Split(Piece piece, List<Piece> output)
    {
        var text = piece.Text.Replace(' ', replacement);
        var prepend = scheme == PrependScheme.Always || (scheme == PrependScheme.First && piece.AtStart);
        if (prepend && !text.StartsWith(replacement))
            text = replacement + text;
        if (!split)
        {
            output.Add(piece with { Text = text });
            return;
        }
        var start = 0;
        for (var i = 1; i <= text.Length; i++)
        {
            if (i < text.Length && text[i] != replacement)
                continue;
            output.Add(new Piece(text[start..i], piece.AtStart && start == 0));
            start = i;
        }
    }
}

/// <summary>The regex <c>\w+|[^\w\s]+</c>: runs of word characters and runs of punctuation; spaces dropped.</summary>
internal sealed class WhitespacePreTokenizer : IPreTokenizer
{
    public char? WordStartMarker => null;

    public void Split(Piece piece, List<Piece> output)
    {
        var text = piece.Text;
        for (var i = 0; i < text.Length;)
        {
            var rune = CodePoints.At(text, i, out var width);
            if (Rune.IsWhiteSpace(rune))
            {
                i += width;
                continue;
            }
            var start = i;
            var word = CodePoints.IsWordChar(rune);
            while (i < text.Length && CodePoints.At(text, i, out width) is var next && !Rune.IsWhiteSpace(next) && CodePoints.IsWordChar(next) == word)
                i += width;
            output.Add(new Piece(text[start..i], piece.AtStart && start == 0));
        }
    }
}

/// <summary>Splits on whitespace, dropping it.</summary>
internal sealed class WhitespaceSplitPreTokenizer : IPreTokenizer
{
    public char? WordStartMarker => null;

    public void Split(Piece piece, List<Piece> output)
    {
        var start = 0;
        for (var i = 0; i <= piece.Text.Length; i++)
        {
            if (i < piece.Text.Length && !char.IsWhiteSpace(piece.Text[i]))
                continue;
            if (i > start)
                output.Add(new Piece(piece.Text[start..i], piece.AtStart && start == 0));
            start = i + 1;
        }
    }
}

// ---------------------------------------------------------------- post-processors

/// <summary>Chains post-processors; ByteLevel ones (null) are dropped, as they change no ids.</summary>
internal sealed class SequencePostProcessor(IPostProcessor[] processors) : IPostProcessor
{
    public static IPostProcessor? Of(IEnumerable<IPostProcessor?> processors)
    {
        var present = processors.OfType<IPostProcessor>().ToArray();
        return present.Length == 0 ? null : new SequencePostProcessor(present);
    }

    public Encoded Process(Encoded encoded) => processors.Aggregate(encoded, (current, processor) => processor.Process(current));
}

/// <summary>HF <c>TemplateProcessing</c>, single-sequence template: special tokens around the sequence "A".</summary>
internal sealed class TemplateProcessor(IReadOnlyList<TemplateProcessor.Special?> template) : IPostProcessor
{
    /// <summary>The ids and tokens one special piece inserts; a null piece is the sequence itself.</summary>
    internal sealed record Special(int[] Ids, string[] Tokens);

    public static TemplateProcessor Read(JsonElement node, JsonSource source)
    {
        var specials = source.Object(node, "special_tokens");
        var pieces = new List<Special?>();
        foreach (var piece in source.Array(node, "single"))
        {
            if (piece.ValueKind == JsonValueKind.Object && piece.TryGetProperty("SpecialToken", out var special))
                pieces.Add(ReadSpecial(specials, source.RequiredString(special, "id", "TemplateProcessing SpecialToken"), source));
            else if (piece.ValueKind == JsonValueKind.Object && piece.TryGetProperty("Sequence", out var sequence)
                && source.OptionalString(sequence, "id") == "A")
                pieces.Add(null);
            else
                throw source.Fail("TemplateProcessing: a \"single\" piece must be {\"SpecialToken\": ...} or {\"Sequence\": {\"id\": \"A\"}}");
        }
        return new TemplateProcessor(pieces);
    }

    private static Special ReadSpecial(JsonElement specials, string name, JsonSource source)
    {
        if (!specials.TryGetProperty(name, out var special))
            throw source.Fail($"TemplateProcessing: special token \"{name}\" is not in \"special_tokens\"");
        var ids = source.Array(special, "ids").Select(id => id.TryGetInt32(out var value) ? value : throw source.Fail($"TemplateProcessing: bad id for \"{name}\"")).ToArray();
        var tokens = source.Array(special, "tokens").Select(token => token.GetString() ?? "").ToArray();
        if (ids.Length != tokens.Length)
            throw source.Fail($"TemplateProcessing: \"{name}\" has {ids.Length} ids but {tokens.Length} tokens");
        return new Special(ids, tokens);
    }

    public Encoded Process(Encoded encoded)
    {
        var ids = new List<int>();
        var tokens = encoded.Tokens is null ? null : new List<string>();
        foreach (var piece in template)
        {
            ids.AddRange(piece?.Ids ?? (IEnumerable<int>)encoded.Ids);
            tokens?.AddRange(piece?.Tokens ?? (IEnumerable<string>)encoded.Tokens!);
        }
        return new Encoded(ids, tokens);
    }
}

// ---------------------------------------------------------------- decoders

internal sealed class SequenceDecoder(IDecoder[] decoders) : IDecoder
{
    public List<string> DecodeChain(List<string> tokens) => decoders.Aggregate(tokens, (current, decoder) => decoder.DecodeChain(current));
}

/// <summary>Maps the byte stand-in characters back to bytes and reads all of them as one UTF-8 text (invalid bytes become U+FFFD).</summary>
internal sealed class ByteLevelDecoder : IDecoder
{
    public List<string> DecodeChain(List<string> tokens)
    {
        var bytes = new List<byte>();
        foreach (var token in tokens)
            ByteLevelAlphabet.AppendBytes(token, bytes);
        return [Encoding.UTF8.GetString(bytes.ToArray())];
    }
}

/// <summary>The replacement becomes a space again, except in the first token, where it is dropped unless the scheme is never.</summary>
internal sealed class MetaspaceDecoder(char replacement, PrependScheme scheme) : IDecoder
{
    public static MetaspaceDecoder Read(JsonElement node, JsonSource source) =>
        new(source.RequiredChar(node, "replacement", "Metaspace"), MetaspacePreTokenizer.ReadScheme(node, source));

    public List<string> DecodeChain(List<string> tokens) =>
        tokens.Select((token, i) => i == 0 && scheme != PrependScheme.Never
            ? token.Replace(replacement.ToString(), "", StringComparison.Ordinal)
            : token.Replace(replacement, ' ')).ToList();
}

internal sealed class ReplaceDecoder(ReplacePattern pattern) : IDecoder
{
    public List<string> DecodeChain(List<string> tokens) => tokens.Select(pattern.Apply).ToList();
}

/// <summary>Runs of <c>&lt;0xNN&gt;</c> tokens become their UTF-8 text, or one U+FFFD per byte when invalid.</summary>
internal sealed class ByteFallbackDecoder : IDecoder
{
    private static readonly UTF8Encoding StrictUtf8 = new(false, throwOnInvalidBytes: true);

    public List<string> DecodeChain(List<string> tokens)
    {
        var output = new List<string>();
        var pending = new List<byte>();
        foreach (var token in tokens)
        {
            if (ByteOf(token) is { } b)
            {
                pending.Add(b);
                continue;
            }
            Flush(pending, output);
            output.Add(token);
        }
        Flush(pending, output);
        return output;
    }

    private static byte? ByteOf(string token) =>
        token.Length == 6 && token.StartsWith("<0x", StringComparison.Ordinal) && token[5] == '>'
            && byte.TryParse(token.AsSpan(3, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var b)
            ? b
            : null;

    private static void Flush(List<byte> pending, List<string> output)
    {
        if (pending.Count == 0)
            return;
        try
        {
            output.Add(StrictUtf8.GetString(pending.ToArray()));
        }
        catch (DecoderFallbackException)
        {
            output.AddRange(Enumerable.Repeat("\uFFFD", pending.Count));
        }
        pending.Clear();
    }
}

internal sealed class FuseDecoder : IDecoder
{
    public List<string> DecodeChain(List<string> tokens) => [string.Concat(tokens)];
}

/// <summary>Removes up to <c>start</c> leading and <c>stop</c> trailing <c>content</c> characters from every token.</summary>
internal sealed class StripDecoder(char content, int start, int stop) : IDecoder
{
    public List<string> DecodeChain(List<string> tokens) => tokens.Select(Strip).ToList();

    private string Strip(string token)
    {
        var from = 0;
        while (from < start && from < token.Length && token[from] == content)
            from++;
        var to = token.Length;
        while (token.Length - to < stop && to > from && token[to - 1] == content)
            to--;
        return token[from..to];
    }
}
