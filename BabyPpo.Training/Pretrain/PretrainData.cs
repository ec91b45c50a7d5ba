using System.Security.Cryptography;
using BabyPpo.Training.Data;
using BabyPpo.Training.Text;

namespace BabyPpo.Training.Pretrain;

/// <summary>
/// Pre-training text as documents, one per exchange. A dialogue pair file gives the mother's
/// utterance followed by the child's real reply, <c>"*MOT: … *CHI: …"</c> (the rejected reply is never
/// used). A CHILDES-tagged text or CHAT file (one <c>*XXX: …</c> utterance per line) is cut into
/// exchanges in the same spirit: a document holds the turns up to and including the child's replies,
/// and the next begins with the next turn of another speaker (or after <see cref="MaxTurnsPerDocument"/>
/// turns, for transcripts with long monologues); turns are joined by spaces, in order.
/// </summary>
public static class PretrainCorpus
{
    /// <summary>
    /// Reads a data file: dialogue pairs (.json, .jsonl, .csv) or CHILDES-tagged text (.txt, .cha).
    /// The evaluation sets (<c>eval_*.json</c>) are refused: a model that trained on them would score
    /// on its own training data.
    /// </summary>
    /// <exception cref="InputException">The file is missing, unreadable, an evaluation set, or empty.</exception>
    public static IReadOnlyList<string> ReadDocuments(string path)
    {
        if (Path.GetFileName(path).StartsWith("eval_", StringComparison.OrdinalIgnoreCase))
            throw InputException.At(path, "this is an evaluation set (eval_*); pre-train on the training dialogue (e.g. train.json) so that the evaluation stays held out");
        if (!File.Exists(path)) throw InputException.At(path, "data file not found");
        IReadOnlyList<string> documents = Path.GetExtension(path).ToLowerInvariant() switch
        {
            ".json" or ".jsonl" or ".csv" => Datasets.ReadDialoguePairs(path).Select(p => $"{p.Prompt.Trim()} {p.Chosen.Trim()}").ToList(),
            ".txt" or ".cha" => Exchanges(Datasets.ReadChildesText(path)),
            _ => throw InputException.At(path, "expected dialogue pairs (.json, .jsonl, .csv) or CHILDES-tagged text (.txt, .cha)"),
        };
        if (documents.Count == 0 || documents.All(string.IsNullOrWhiteSpace)) throw InputException.At(path, "no text to train on");
        return documents;
    }

    /// <summary>The most turns one document of a transcript holds.</summary>
    public const int MaxTurnsPerDocument = 16;

    const string Child = "CHI";

    static List<string> Exchanges(IReadOnlyList<Utterance> utterances)
    {
        var documents = new List<string>();
        var turns = new List<string>();
        for (int i = 0; i < utterances.Count; i++)
        {
            bool afterChild = i > 0 && utterances[i - 1].Speaker == Child && utterances[i].Speaker != Child;
            if (turns.Count > 0 && (afterChild || turns.Count == MaxTurnsPerDocument))
            {
                documents.Add(string.Join(" ", turns));
                turns.Clear();
            }
            turns.Add($"*{utterances[i].Speaker}: {utterances[i].Text}");
        }
        if (turns.Count > 0) documents.Add(string.Join(" ", turns));
        return documents;
    }

    /// <summary>The SHA-256 of a file, lower-case hex (recorded with every run and in the model card).</summary>
    public static string Sha256(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    /// <summary>
    /// Splits documents into training and held-out ones by a seeded shuffle: a share of
    /// <paramref name="heldOutFraction"/> (at least one document, and never all of them) is held out;
    /// both parts keep the documents' original order.
    /// </summary>
    public static (IReadOnlyList<string> Train, IReadOnlyList<string> HeldOut) Split(IReadOnlyList<string> documents, double heldOutFraction, long seed)
    {
        if (documents.Count < 2) throw new InputException($"need at least 2 documents to hold one out for evaluation, got {documents.Count}");
        int heldOutCount = Math.Clamp((int)Math.Round(documents.Count * heldOutFraction), 1, documents.Count - 1);
        var order = SeededOrder.Permutation(documents.Count, seed, stream: 0x5EED);
        var heldOut = new bool[documents.Count];
        foreach (var i in order.Take(heldOutCount)) heldOut[i] = true;
        return (documents.Where((_, i) => !heldOut[i]).ToList(), documents.Where((_, i) => heldOut[i]).ToList());
    }
}

/// <summary>
/// Documents packed into fixed-length blocks. Each document is encoded as <c>&lt;s&gt; … &lt;/s&gt;</c>
/// and the documents are concatenated into one token stream, which is cut into blocks of
/// <c>BlockSize + 1</c> tokens that overlap by one: block i covers stream positions
/// <c>[i·T, (i+1)·T]</c>, its first T tokens are the input and its last T the targets, so every token
/// of the stream after the first is predicted exactly once. A block may span several short
/// documents (attention crosses the <c>&lt;/s&gt; &lt;s&gt;</c> boundary, as in GPT-2 pre-training): no
/// token is wasted on padding. The tail that does not fill a whole block is dropped, or kept as one
/// shorter block when <c>keepPartial</c> (used for the held-out set, so that it is scored whole).
/// </summary>
public sealed class PackedBlocks
{
    readonly int[] _stream;
    readonly int _fullBlocks;
    readonly bool _partial;

    PackedBlocks(int[] stream, int blockSize, bool keepPartial)
    {
        _stream = stream;
        BlockSize = blockSize;
        _fullBlocks = Math.Max(0, (stream.Length - 1) / blockSize);
        _partial = keepPartial && stream.Length - 1 - _fullBlocks * blockSize > 0;
    }

    /// <summary>Input length of a (full) block.</summary>
    public int BlockSize { get; }

    /// <summary>The number of blocks, the shorter last one included.</summary>
    public int Count => _fullBlocks + (_partial ? 1 : 0);

    /// <summary>Tokens of the stream (documents with their <c>&lt;s&gt;</c> and <c>&lt;/s&gt;</c>).</summary>
    public long StreamTokens => _stream.Length;

    /// <summary>Target tokens over all blocks (what one epoch trains on).</summary>
    public long TargetTokens => Enumerable.Range(0, Count).Sum(i => (long)Length(i) - 1);

    /// <summary>Encodes and packs documents; <paramref name="tokenizer"/> must know <c>&lt;s&gt;</c> and <c>&lt;/s&gt;</c> (bos/eos).</summary>
    public static PackedBlocks Pack(Tokenizer tokenizer, IEnumerable<string> documents, int blockSize, bool keepPartial = false)
    {
        int bos = tokenizer.BosId ?? throw new InputException("the tokenizer has no beginning-of-sequence token (bos_token in tokenizer_config.json)");
        int eos = tokenizer.EosId ?? throw new InputException("the tokenizer has no end-of-sequence token (eos_token in tokenizer_config.json)");
        var stream = new List<int>();
        foreach (var document in documents)
        {
            stream.Add(bos);
            stream.AddRange(tokenizer.Encode(document, addSpecialTokens: false));
            stream.Add(eos);
        }
        return new PackedBlocks(stream.ToArray(), blockSize, keepPartial);
    }

    /// <summary>Token count of block <paramref name="index"/>: <c>BlockSize + 1</c>, less for a kept partial block.</summary>
    public int Length(int index) =>
        index < _fullBlocks ? BlockSize + 1 : _stream.Length - _fullBlocks * BlockSize;

    /// <summary>The tokens of block <paramref name="index"/> (input = all but the last, targets = all but the first).</summary>
    public ReadOnlySpan<int> Block(int index)
    {
        if (index < 0 || index >= Count) throw new ArgumentOutOfRangeException(nameof(index));
        return _stream.AsSpan(index * BlockSize, Length(index));
    }
}

/// <summary>
/// Deterministic shuffles from a seed (SplitMix64 + Fisher–Yates), independent of .NET's Random, so
/// the data order can be recomputed exactly on resume and across runtimes.
/// </summary>
public static class SeededOrder
{
    /// <summary>A permutation of 0..n-1 determined by (seed, stream).</summary>
    public static int[] Permutation(int n, long seed, long stream)
    {
        var order = Enumerable.Range(0, n).ToArray();
        ulong state = (ulong)seed * 0x9E3779B97F4A7C15UL ^ (ulong)stream * 0xD1B54A32D192ED03UL;
        for (int i = n - 1; i > 0; i--)
        {
            int j = (int)(Next(ref state) % (ulong)(i + 1));
            (order[i], order[j]) = (order[j], order[i]);
        }
        return order;
    }

    static ulong Next(ref ulong state)
    {
        ulong z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}

/// <summary>
/// Which training blocks each step uses: epochs of a seeded permutation of all blocks, read in
/// consecutive slices of the batch size. The position is a function of the step alone, so a resumed
/// run continues with exactly the blocks an uninterrupted run would have used.
/// </summary>
public sealed class DataOrder(int blocks, int batchSize, long seed)
{
    int _epoch = -1;
    int[] _permutation = [];

    /// <summary>Epoch and offset into it where step <paramref name="step"/> starts (recorded in checkpoints).</summary>
    public (long Epoch, int Offset) PositionAt(int step)
    {
        long first = (long)step * batchSize;
        return (first / blocks, (int)(first % blocks));
    }

    /// <summary>The block indices of step <paramref name="step"/> (0-based).</summary>
    public int[] BlocksOf(int step)
    {
        var indices = new int[batchSize];
        for (int j = 0; j < batchSize; j++)
        {
            long global = (long)step * batchSize + j;
            int epoch = checked((int)(global / blocks));
            if (epoch != _epoch)
            {
                _permutation = SeededOrder.Permutation(blocks, seed, stream: epoch);
                _epoch = epoch;
            }
            indices[j] = _permutation[(int)(global % blocks)];
        }
        return indices;
    }
}
