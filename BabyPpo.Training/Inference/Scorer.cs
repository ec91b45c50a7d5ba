using BabyPpo.Training.Model;
using BabyPpo.Training.Text;
using static TorchSharp.torch;

namespace BabyPpo.Training.Inference;

/// <summary>How <see cref="Scorer"/> batches and what it computes.</summary>
public sealed record ScorerOptions
{
    /// <summary>Padded tokens per forward pass (rows × longest row); bounds memory, the logits take 4·V bytes a token.</summary>
    public int MaxBatchTokens { get; init; } = 4096;
    /// <summary>
    /// Beginning-of-word correction (minicons <c>bow_correction=True</c>; Pimentel &amp; Meister 2024,
    /// Oh &amp; Schuler 2024): a word's probability also includes that the token after it starts a new
    /// word, and is divided by the probability that a new word starts where it does. Only for
    /// tokenizers with a word-start marker (Ġ or ▁); ignored otherwise, as minicons does.
    /// </summary>
    public bool BowCorrection { get; init; }
}

/// <summary>Per-token log-probabilities of one sequence: entry k is ln p(ids[ScoredFrom + k] | ids[..ScoredFrom + k]).</summary>
public sealed record TokenScores(int[] Ids, int ScoredFrom, float[] LogProbs)
{
    /// <summary>The summed log-probability (accumulated in double).</summary>
    public double Sum => LogProbs.Sum(x => (double)x);
}

/// <summary>
/// Batched sequence scoring, the engine of every evaluation and of the confidence reward. Sequences
/// are sorted by length and cut into right-padded batches of at most <see cref="ScorerOptions.MaxBatchTokens"/>
/// tokens; with right padding a real token never sees padding under the causal mask, so the fast
/// unmasked attention path applies. Results come back in input order.
/// </summary>
public sealed class Scorer
{
    readonly CausalLM _model;
    readonly Tokenizer? _tokenizer;
    readonly ScorerOptions _options;
    readonly long[]? _bowIds;   // ids of tokens that start a word, when the tokenizer marks word starts

    public Scorer(CausalLM model, Tokenizer? tokenizer = null, ScorerOptions? options = null)
    {
        _model = model;
        _tokenizer = tokenizer;
        _options = options ?? new ScorerOptions();
        if (_options.MaxBatchTokens < 1) throw new InputException($"max batch tokens must be at least 1, got {_options.MaxBatchTokens}");
        if (_options.BowCorrection && tokenizer?.WordStartMarker is not null)
            _bowIds = Enumerable.Range(0, tokenizer.VocabSize).Where(tokenizer.StartsWord).Select(i => (long)i).ToArray();
    }

    public Tokenizer Tokenizer => _tokenizer ?? throw new InvalidOperationException("this scorer was built without a tokenizer; score ids instead");

    /// <summary>Summed log-probability of every token after the first, for each text encoded with the tokenizer's defaults (e.g. BOS first).</summary>
    public double[] ScoreTexts(IReadOnlyList<string> texts) =>
        Score(texts.Select(t => Tokenizer.Encode(t)).ToList()).Select(s => s.Sum).ToArray();

    /// <summary>
    /// Summed log-probability of each continuation given its context. The two are encoded together
    /// (as one text), and the continuation's tokens are those after the longest common prefix with
    /// the context's own encoding, so a merge across the boundary is attributed to the continuation.
    /// </summary>
    public double[] ScoreContinuations(IReadOnlyList<(string Context, string Continuation)> pairs) =>
        ScoreContinuationTokens(pairs).Select(s => s.Sum).ToArray();

    /// <summary>
    /// The per-token form of <see cref="ScoreContinuations"/>: for each pair, the log-probability of
    /// every continuation token (so callers can also count them, e.g. for a mean per token).
    /// </summary>
    public IReadOnlyList<TokenScores> ScoreContinuationTokens(IReadOnlyList<(string Context, string Continuation)> pairs)
    {
        var sequences = new List<int[]>(pairs.Count);
        var starts = new List<int>(pairs.Count);
        foreach (var (context, continuation) in pairs)
        {
            var whole = Tokenizer.Encode(context + continuation);
            var prefix = Tokenizer.Encode(context);
            int common = 0;
            while (common < prefix.Length && common < whole.Length && prefix[common] == whole[common]) common++;
            sequences.Add(whole);
            starts.Add(Math.Clamp(common, 1, whole.Length));
        }
        return Score(sequences, starts);
    }

    /// <summary>
    /// Per-token log-probabilities of each id sequence from <paramref name="scoreFrom"/>[i] (default 1:
    /// every token after the first) to its end.
    /// </summary>
    public IReadOnlyList<TokenScores> Score(IReadOnlyList<int[]> sequences, IReadOnlyList<int>? scoreFrom = null)
    {
        if (scoreFrom is not null && scoreFrom.Count != sequences.Count)
            throw new ArgumentException($"{scoreFrom.Count} start positions for {sequences.Count} sequences");
        var results = new TokenScores[sequences.Count];
        int window = _model.Config.MaxPositionEmbeddings;
        for (int i = 0; i < sequences.Count; i++)
        {
            if (sequences[i].Length > window)
                throw new InputException($"sequence {i} has {sequences[i].Length} tokens, more than the model's context window of {window}");
            int from = scoreFrom?[i] ?? 1;
            if (from < 1 || from > sequences[i].Length)
                throw new ArgumentException($"sequence {i}: scoring must start within 1..{sequences[i].Length}, got {from}");
            if (sequences[i].Length < 2) results[i] = new TokenScores(sequences[i], from, []);
        }

        // Longest first, so that the first batch shows at once whether memory suffices.
        var order = Enumerable.Range(0, sequences.Count).Where(i => results[i] is null)
            .OrderByDescending(i => sequences[i].Length).ToArray();
        using var noGrad = no_grad();
        for (int start = 0; start < order.Length;)
        {
            int width = sequences[order[start]].Length;
            int rows = Math.Max(1, Math.Min(order.Length - start, _options.MaxBatchTokens / width));
            var batch = order[start..(start + rows)];
            ScoreBatch(sequences, scoreFrom, batch, width, results);
            start += rows;
        }
        return results;
    }

    void ScoreBatch(IReadOnlyList<int[]> sequences, IReadOnlyList<int>? scoreFrom, int[] batch, int width, TokenScores[] results)
    {
        using var scope = NewDisposeScope();
        int rows = batch.Length;
        var ids = new long[rows * width];                        // right-padded with 0: padding is never seen by real tokens
        for (int r = 0; r < rows; r++)
        {
            var seq = sequences[batch[r]];
            for (int j = 0; j < seq.Length; j++) ids[r * width + j] = seq[j];
        }
        var input = tensor(ids, [rows, width], device: _model.Device);  // (B, T)
        var logProbs = _model.forward(input).log_softmax(-1);           // (B, T, V)
        var targets = input.narrow(1, 1, width - 1).unsqueeze(-1);       // (B, T-1, 1)
        var tokenLogProbs = logProbs.narrow(1, 0, width - 1).gather(2, targets).squeeze(-1); // (B, T-1)
        var host = tokenLogProbs.cpu().data<float>().ToArray();

        float[]? bowHost = null;                                         // (B, T): ln P(next token starts a word | prefix up to t)
        if (_bowIds is not null)
        {
            var bow = tensor(_bowIds, device: _model.Device);
            bowHost = logProbs.index_select(2, bow).logsumexp(2).cpu().data<float>().ToArray();
        }

        for (int r = 0; r < rows; r++)
        {
            int index = batch[r];
            var seq = sequences[index];
            int from = scoreFrom?[index] ?? 1;
            var scores = new float[seq.Length - from];
            for (int k = 0; k < scores.Length; k++) scores[k] = host[r * (width - 1) + from - 1 + k];
            if (bowHost is not null) ApplyBowCorrection(seq, from, scores, bowHost.AsSpan(r * width, width));
            results[index] = new TokenScores(seq, from, scores);
        }
    }

    /// <summary>
    /// minicons' correction, position by position. A scored token that ends a word (the next token
    /// starts one, or it is the last) gains ln P(next starts a word | through it); a scored token
    /// that starts a word, other than the first scored one, loses ln P(a word starts here | before it).
    /// </summary>
    void ApplyBowCorrection(int[] seq, int from, float[] scores, ReadOnlySpan<float> bowLogProb)
    {
        var tokenizer = Tokenizer;
        int last = seq.Length - 1;
        bool EndsWord(int position) => position == last || tokenizer.StartsWord(seq[position + 1]);
        for (int k = 0; k < scores.Length; k++)
        {
            int position = from + k;                                    // the token this score is for
            if (EndsWord(position)) scores[k] += bowLogProb[position];
            if (k > 0 && EndsWord(position - 1)) scores[k] -= bowLogProb[position - 1];
        }
    }
}
