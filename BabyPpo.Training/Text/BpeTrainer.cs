using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace BabyPpo.Training.Text;

/// <summary>Settings of <see cref="BpeTrainer"/>.</summary>
public sealed record BpeTrainerOptions
{
    /// <summary>
    /// The size of the finished vocabulary: the 3 special tokens, the 256 byte symbols and one token
    /// per merge. Training stops earlier when no pair is frequent enough. At least 259.
    /// </summary>
    public int VocabSize { get; init; } = 4000;

    /// <summary>A pair is merged only while it occurs at least this often in the corpus (HF's <c>min_frequency</c>).</summary>
    public int MinFrequency { get; init; } = 2;

    public void Validate()
    {
        if (VocabSize < BpeTrainer.BaseVocabSize)
            throw new InputException($"vocabulary size must be at least {BpeTrainer.BaseVocabSize} (3 special tokens + 256 byte symbols), got {VocabSize}");
        if (MinFrequency < 1)
            throw new InputException($"minimum pair frequency must be at least 1, got {MinFrequency}");
    }
}

/// <summary>
/// Trains a GPT-2 style byte-level BPE tokenizer, the same shape as HF <c>tokenizers</c>' ByteLevel BPE:
/// ByteLevel pre-tokenizer (GPT-2 regex, no prefix space) and decoder, special tokens
/// <c>&lt;pad&gt;</c>=0, <c>&lt;s&gt;</c>=1, <c>&lt;/s&gt;</c>=2, the 256 byte symbols at 3..258 in code-point
/// order, then one token per merge, and a TemplateProcessing post-processor that puts <c>&lt;s&gt;</c> first.
/// </summary>
/// <remarks>
/// The algorithm is HF's <c>BpeTrainer</c>: texts are cut at special tokens and pre-tokenized into
/// words, which are counted once; then, repeatedly, the most frequent adjacent pair of symbols
/// (counted over word occurrences) is merged into a new token. Pair counts are kept incrementally:
/// a map pair → count and an index pair → words holding it; a merge rewrites only the words of its
/// index entry and adjusts the counts of the pairs it destroys and creates. A priority queue ordered by
/// (count descending, left id ascending, right id ascending) yields the best pair; its entries are
/// refreshed lazily (an entry whose count is stale is re-queued with the current count).
/// <para>
/// Ties are broken deterministically and as HF does: among pairs of equal count, the one whose left
/// token has the smaller id wins, then the smaller right id. Ids follow the order tokens were created,
/// so ties go to the pair of older tokens. Two trainings on the same texts give identical files.
/// When a merge produces a string that is already a token (e.g. "ab"+"c" after "a"+"bc"), the
/// existing id is reused, as HF does, so the vocabulary can end up a little smaller than asked.
/// </para>
/// </remarks>
public static class BpeTrainer
{
    /// <summary>The special tokens, with ids 0, 1, 2.</summary>
    public static readonly IReadOnlyList<string> SpecialTokens = ["<pad>", "<s>", "</s>"];

    public const string PadToken = "<pad>", BosToken = "<s>", EosToken = "</s>";

    /// <summary>Special tokens plus the 256 byte symbols: the vocabulary before any merge.</summary>
    public const int BaseVocabSize = 3 + 256;

    /// <summary>Trains on <paramref name="texts"/> (each one document, e.g. one line or one exchange).</summary>
    /// <exception cref="InputException">The options are out of range.</exception>
    public static TrainedBpe Train(IEnumerable<string> texts, BpeTrainerOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new BpeTrainerOptions();
        options.Validate();
        var wordCounts = CountWords(texts, cancellationToken);
        return new Training(wordCounts, options).Run(cancellationToken);
    }

    /// <summary>
    /// Byte-level words and how often each occurs. Words are counted in the order first seen, so the
    /// result (and everything after it) does not depend on hashing.
    /// </summary>
    static List<(string Word, long Count)> CountWords(IEnumerable<string> texts, CancellationToken cancellationToken)
    {
        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        var words = new List<(string Word, long Count)>();
        var pieces = new List<Piece>();
        var n = 0;
        foreach (var text in texts)
        {
            if ((++n & 1023) == 0) cancellationToken.ThrowIfCancellationRequested();
            foreach (var segment in SplitAtSpecials(text))
            {
                if (segment.SpecialId is not null) continue;
                pieces.Clear();
                PreTokenizer.Split(new Piece(segment.Text, false), pieces);
                foreach (var piece in pieces)
                {
                    if (piece.Text.Length == 0) continue;
                    if (index.TryGetValue(piece.Text, out var i))
                        words[i] = (piece.Text, words[i].Count + 1);
                    else
                    {
                        index[piece.Text] = words.Count;
                        words.Add((piece.Text, 1));
                    }
                }
            }
        }
        return words;
    }

    internal static readonly ByteLevelPreTokenizer PreTokenizer = new(addPrefixSpace: false, useRegex: true);

    /// <summary>The text between special tokens, and the special tokens themselves (matched exactly, leftmost, longest).</summary>
    internal static IEnumerable<(string Text, int? SpecialId)> SplitAtSpecials(string text)
    {
        var start = 0;
        for (var i = 0; i < text.Length; i++)
        {
            if (text[i] != '<') continue;
            for (var id = 0; id < SpecialTokens.Count; id++)   // none is a prefix of another, so the order does not matter
            {
                var special = SpecialTokens[id];
                if (string.CompareOrdinal(text, i, special, 0, special.Length) != 0) continue;
                if (i > start) yield return (text[start..i], null);
                yield return (special, id);
                start = i + special.Length;
                i = start - 1;
                break;
            }
        }
        if (start < text.Length) yield return (text[start..], null);
    }

    /// <summary>The state of one training run: words as symbol ids, pair counts, the pair → words index and the queue.</summary>
    sealed class Training
    {
        readonly BpeTrainerOptions _options;
        readonly string[] _wordTexts;
        readonly int[][] _symbols;
        readonly int[] _lengths;
        readonly long[] _counts;
        readonly List<string> _tokens = [];                        // id → token string
        readonly Dictionary<string, int> _ids = new(StringComparer.Ordinal);
        readonly List<(int Left, int Right)> _merges = [];
        readonly Dictionary<long, long> _pairCounts = [];
        readonly Dictionary<long, HashSet<int>> _pairWords = [];
        readonly PriorityQueue<long, (long NegativeCount, long Pair)> _queue = new();

        public Training(List<(string Word, long Count)> words, BpeTrainerOptions options)
        {
            _options = options;
            foreach (var special in SpecialTokens) AddToken(special);
            foreach (var symbol in ByteLevelAlphabet.ByteToChar.Order()) AddToken(symbol.ToString());
            _wordTexts = new string[words.Count];
            _symbols = new int[words.Count][];
            _lengths = new int[words.Count];
            _counts = new long[words.Count];
            for (var w = 0; w < words.Count; w++)
            {
                var (text, count) = words[w];
                _wordTexts[w] = text;
                _symbols[w] = text.Select(c => _ids[c.ToString()]).ToArray();
                _lengths[w] = text.Length;
                _counts[w] = count;
                for (var i = 0; i + 1 < text.Length; i++)
                {
                    var pair = Key(_symbols[w][i], _symbols[w][i + 1]);
                    _pairCounts[pair] = _pairCounts.GetValueOrDefault(pair) + count;
                    WordsOf(pair).Add(w);
                }
            }
            foreach (var (pair, count) in _pairCounts)
                _queue.Enqueue(pair, (-count, pair));
        }

        public TrainedBpe Run(CancellationToken cancellationToken)
        {
            while (_tokens.Count < _options.VocabSize && _queue.TryDequeue(out var pair, out var priority))
            {
                var count = _pairCounts.GetValueOrDefault(pair);
                if (count != -priority.NegativeCount)
                {
                    if (count > 0) _queue.Enqueue(pair, (-count, pair));  // stale entry: re-queue with the current count
                    continue;
                }
                if (count < _options.MinFrequency) break;
                if ((_merges.Count & 63) == 0) cancellationToken.ThrowIfCancellationRequested();
                Merge(pair);
            }
            var segmentations = new Dictionary<string, int[]>(StringComparer.Ordinal);
            for (var w = 0; w < _symbols.Length; w++)
                segmentations[_wordTexts[w]] = _symbols[w][.._lengths[w]];
            return new TrainedBpe(
                _tokens.ToArray(),
                _merges.Select(m => (_tokens[m.Left], _tokens[m.Right])).ToArray(),
                segmentations);
        }

        /// <summary>Merges every occurrence of <paramref name="pair"/> (left to right, as HF's <c>Word::merge</c>) and updates the counts.</summary>
        void Merge(long pair)
        {
            int left = (int)(pair >> 32), right = (int)(uint)pair;
            var merged = AddToken(_tokens[left] + _tokens[right]);
            _merges.Add((left, right));
            var words = _pairWords[pair];
            _pairWords.Remove(pair);
            _pairCounts.Remove(pair);
            var deltas = new Dictionary<long, long>();
            foreach (var w in words)
                MergeInWord(w, left, right, merged, deltas);
            foreach (var (changed, delta) in deltas)
            {
                if (changed == pair || delta == 0) continue;
                var count = _pairCounts.GetValueOrDefault(changed) + delta;
                if (count <= 0)
                {
                    _pairCounts.Remove(changed);
                    _pairWords.Remove(changed);
                    continue;
                }
                _pairCounts[changed] = count;
                if (delta > 0) _queue.Enqueue(changed, (-count, changed));
            }
        }

        void MergeInWord(int w, int left, int right, int merged, Dictionary<long, long> deltas)
        {
            var s = _symbols[w];
            int n = _lengths[w], write = 0;
            long count = _counts[w];
            for (var read = 0; read < n;)
            {
                if (read + 1 < n && s[read] == left && s[read + 1] == right)
                {
                    if (write > 0)
                    {
                        Add(deltas, Key(s[write - 1], left), -count);
                        Add(deltas, Key(s[write - 1], merged), count);
                        WordsOf(Key(s[write - 1], merged)).Add(w);
                    }
                    if (read + 2 < n)
                    {
                        Add(deltas, Key(right, s[read + 2]), -count);
                        Add(deltas, Key(merged, s[read + 2]), count);
                        WordsOf(Key(merged, s[read + 2])).Add(w);
                    }
                    s[write++] = merged;
                    read += 2;
                }
                else
                {
                    s[write++] = s[read++];
                }
            }
            _lengths[w] = write;
        }

        int AddToken(string token)
        {
            if (_ids.TryGetValue(token, out var id)) return id;
            _ids[token] = _tokens.Count;
            _tokens.Add(token);
            return _tokens.Count - 1;
        }

        HashSet<int> WordsOf(long pair)
        {
            if (!_pairWords.TryGetValue(pair, out var words))
                _pairWords[pair] = words = [];
            return words;
        }

        static void Add(Dictionary<long, long> deltas, long pair, long delta) =>
            deltas[pair] = deltas.GetValueOrDefault(pair) + delta;

        static long Key(int left, int right) => ((long)left << 32) | (uint)right;
    }
}

/// <summary>
/// A trained byte-level BPE tokenizer: its vocabulary and merges, the Hugging Face files that describe it,
/// and the segmentation the trainer reached for every word of its corpus.
/// </summary>
public sealed class TrainedBpe
{
    static readonly JsonWriterOptions Indented = new() { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    readonly IReadOnlyDictionary<string, int[]> _segmentations;
    Tokenizer? _tokenizer;

    internal TrainedBpe(string[] tokens, (string Left, string Right)[] merges, IReadOnlyDictionary<string, int[]> segmentations)
    {
        Tokens = tokens;
        Merges = merges;
        _segmentations = segmentations;
        TokenizerJson = WriteTokenizerJson(tokens, merges);
        TokenizerConfigJson = WriteTokenizerConfigJson();
    }

    /// <summary>Token strings by id: specials, byte symbols, then one per new merged string.</summary>
    public IReadOnlyList<string> Tokens { get; }

    /// <summary>The merges in the order they were learned (their rank).</summary>
    public IReadOnlyList<(string Left, string Right)> Merges { get; }

    /// <summary>The vocabulary size (largest id + 1).</summary>
    public int VocabSize => Tokens.Count;

    /// <summary>The <c>tokenizer.json</c> text, in HF's layout (vocabulary by id, merges by rank).</summary>
    public string TokenizerJson { get; }

    /// <summary>The <c>tokenizer_config.json</c> text: bos/eos/pad tokens and <c>add_bos_token</c>.</summary>
    public string TokenizerConfigJson { get; }

    /// <summary>The tokenizer these files describe, read by our HF-exact loader.</summary>
    public Tokenizer Tokenizer => _tokenizer ??= Tokenizer.FromJson(TokenizerJson, TokenizerConfigJson);

    /// <summary>Writes <c>tokenizer.json</c> and <c>tokenizer_config.json</c> into <paramref name="folder"/>.</summary>
    public void Save(string folder) => Tokenizer.Save(folder);

    /// <summary>
    /// The ids of a text by the trainer's own segmentation of its words (no BOS), without running the
    /// merges again: the reference that the saved tokenizer must reproduce on the training text.
    /// </summary>
    /// <exception cref="ArgumentException">The text holds a word the trainer never saw.</exception>
    public int[] EncodeWithTrainingSegmentation(string text)
    {
        var ids = new List<int>();
        var pieces = new List<Piece>();
        foreach (var (segment, specialId) in BpeTrainer.SplitAtSpecials(text))
        {
            if (specialId is { } id)
            {
                ids.Add(id);
                continue;
            }
            pieces.Clear();
            BpeTrainer.PreTokenizer.Split(new Piece(segment, false), pieces);
            foreach (var piece in pieces.Where(p => p.Text.Length > 0))
                ids.AddRange(_segmentations.TryGetValue(piece.Text, out var word) ? word
                    : throw new ArgumentException($"the word \"{piece.Text}\" was not in the training corpus", nameof(text)));
        }
        return ids.ToArray();
    }

    static string WriteTokenizerJson(string[] tokens, (string Left, string Right)[] merges)
    {
        using var stream = new MemoryStream();
        using (var json = new Utf8JsonWriter(stream, Indented))
        {
            json.WriteStartObject();
            json.WriteString("version", "1.0");
            json.WriteNull("truncation");
            json.WriteNull("padding");
            json.WriteStartArray("added_tokens");
            for (var id = 0; id < BpeTrainer.SpecialTokens.Count; id++)
            {
                json.WriteStartObject();
                json.WriteNumber("id", id);
                json.WriteString("content", BpeTrainer.SpecialTokens[id]);
                json.WriteBoolean("single_word", false);
                json.WriteBoolean("lstrip", false);
                json.WriteBoolean("rstrip", false);
                json.WriteBoolean("normalized", false);
                json.WriteBoolean("special", true);
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteNull("normalizer");
            WriteByteLevel(json, "pre_tokenizer", addPrefixSpace: false);
            WriteTemplateProcessing(json);
            WriteByteLevel(json, "decoder", addPrefixSpace: true);   // HF's ByteLevel decoder default; decoding ignores it
            json.WriteStartObject("model");
            json.WriteString("type", "BPE");
            json.WriteNull("dropout");
            json.WriteNull("unk_token");
            json.WriteNull("continuing_subword_prefix");
            json.WriteNull("end_of_word_suffix");
            json.WriteBoolean("fuse_unk", false);
            json.WriteBoolean("byte_fallback", false);
            json.WriteBoolean("ignore_merges", false);
            json.WriteStartObject("vocab");
            for (var id = 0; id < tokens.Length; id++)
                json.WriteNumber(tokens[id], id);
            json.WriteEndObject();
            json.WriteStartArray("merges");
            foreach (var (left, right) in merges)
            {
                json.WriteStartArray();
                json.WriteStringValue(left);
                json.WriteStringValue(right);
                json.WriteEndArray();
            }
            json.WriteEndArray();
            json.WriteEndObject();
            json.WriteEndObject();
        }
        return Encoding.UTF8.GetString(stream.ToArray());
    }

    static void WriteByteLevel(Utf8JsonWriter json, string name, bool addPrefixSpace)
    {
        json.WriteStartObject(name);
        json.WriteString("type", "ByteLevel");
        json.WriteBoolean("add_prefix_space", addPrefixSpace);
        json.WriteBoolean("trim_offsets", true);
        json.WriteBoolean("use_regex", true);
        json.WriteEndObject();
    }

    /// <summary>Single: <c>&lt;s&gt; $A</c>; pair: <c>&lt;s&gt; $A &lt;s&gt; $B</c>.</summary>
    static void WriteTemplateProcessing(Utf8JsonWriter json)
    {
        json.WriteStartObject("post_processor");
        json.WriteString("type", "TemplateProcessing");
        json.WriteStartArray("single");
        WritePiece(json, "SpecialToken", BpeTrainer.BosToken);
        WritePiece(json, "Sequence", "A");
        json.WriteEndArray();
        json.WriteStartArray("pair");
        WritePiece(json, "SpecialToken", BpeTrainer.BosToken);
        WritePiece(json, "Sequence", "A");
        WritePiece(json, "SpecialToken", BpeTrainer.BosToken);
        WritePiece(json, "Sequence", "B");
        json.WriteEndArray();
        json.WriteStartObject("special_tokens");
        json.WriteStartObject(BpeTrainer.BosToken);
        json.WriteString("id", BpeTrainer.BosToken);
        json.WriteStartArray("ids");
        json.WriteNumberValue(1);
        json.WriteEndArray();
        json.WriteStartArray("tokens");
        json.WriteStringValue(BpeTrainer.BosToken);
        json.WriteEndArray();
        json.WriteEndObject();
        json.WriteEndObject();
        json.WriteEndObject();
    }

    static void WritePiece(Utf8JsonWriter json, string kind, string id)
    {
        json.WriteStartObject();
        json.WriteStartObject(kind);
        json.WriteString("id", id);
        json.WriteNumber("type_id", 0);
        json.WriteEndObject();
        json.WriteEndObject();
    }

    static string WriteTokenizerConfigJson()
    {
        using var stream = new MemoryStream();
        using (var json = new Utf8JsonWriter(stream, Indented))
        {
            json.WriteStartObject();
            json.WriteString("bos_token", BpeTrainer.BosToken);
            json.WriteString("eos_token", BpeTrainer.EosToken);
            json.WriteString("pad_token", BpeTrainer.PadToken);
            json.WriteBoolean("add_bos_token", true);
            json.WriteBoolean("add_eos_token", false);
            json.WriteString("tokenizer_class", "PreTrainedTokenizerFast");
            json.WriteEndObject();
        }
        return Encoding.UTF8.GetString(stream.ToArray()) + "\n";
    }
}
