using BabyPpo.Training.Model;
using BabyPpo.Training.Text;
using static TorchSharp.torch;

namespace BabyPpo.Training.Inference;

/// <summary>How <see cref="Scorer"/> batches and what it computes.</summary>
public sealed record ScorerOptions
{
    /// <summary>
    /// Padded tokens per forward pass (rows × longest row). Memory hardly depends on it (the output
    /// head runs in slices of <see cref="Scorer.HeadRows"/> positions). On two CPU cores passes of
    /// 1536–3072 tokens ran alike; small passes lose, since every pass pays each operation's fixed
    /// cost, and with two threads each operation also waits for the slower thread (badly so when
    /// other processes compete for the cores).
    /// </summary>
    public int MaxBatchTokens { get; init; } = 2048;
    /// <summary>
    /// Beginning-of-word correction (minicons <c>bow_correction=True</c>; Pimentel &amp; Meister 2024,
    /// Oh &amp; Schuler 2024): a word's probability also includes that the token after it starts a new
    /// word, and is divided by the probability that a new word starts where it does. Only for
    /// tokenizers with a word-start marker (Ġ or ▁); ignored otherwise, as minicons does.
    /// </summary>
    public bool BowCorrection { get; init; }
    /// <summary>
    /// <see cref="Scorer.ScorePairs"/> runs the common token prefix of a pair's two sentences once and
    /// continues both from its KV cache. The scores are the same as scoring each sentence alone
    /// (a token's probability depends only on the tokens before it); only the work shrinks.
    /// </summary>
    public bool SharePrefixes { get; init; } = true;
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
/// <para>
/// Only the work the scores need is done: the last token of a sequence is never fed to the model
/// (nothing is predicted from it, except under the beginning-of-word correction); the output head
/// runs only at positions whose next token is scored, in slices of <see cref="HeadRows"/>, and a
/// log-probability is computed as the target's logit minus the log-sum-exp of the logits, without
/// a full log-softmax tensor. <see cref="ScorePairs"/> also computes a shared prefix once.
/// </para>
/// </summary>
public sealed class Scorer
{
    /// <summary>Positions per slice of the output head: (HeadRows, V) logits at a time, 32 MB for V = 16000.</summary>
    public const int HeadRows = 512;

    /// <summary>Pairs whose common prefix is shorter run as two plain sequences (a prefix of one BOS saves nothing).</summary>
    const int MinSharedPrefix = 2;

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

    /// <summary>The options this scorer runs with.</summary>
    public ScorerOptions Options => _options;

    /// <summary>Whether the beginning-of-word correction is applied (asked for, and the tokenizer marks word starts).</summary>
    public bool AppliesBowCorrection => _bowIds is not null;

    /// <summary>Summed log-probability of every token after the first, for each text encoded with the tokenizer's defaults (e.g. BOS first).</summary>
    public double[] ScoreTexts(IReadOnlyList<string> texts, IProgress<int>? progress = null, CancellationToken cancellationToken = default) =>
        Score(texts.Select(t => Tokenizer.Encode(t)).ToList(), null, progress, cancellationToken).Select(s => s.Sum).ToArray();

    /// <summary>
    /// Summed log-probabilities of both texts of each pair (every token after the first, as
    /// <see cref="ScoreTexts"/>), computing their shared prefix once (<see cref="ScorePairs"/>).
    /// </summary>
    public (double A, double B)[] ScoreTextPairs(IReadOnlyList<(string A, string B)> pairs, IProgress<int>? progress = null, CancellationToken cancellationToken = default) =>
        ScorePairs(pairs.Select(p => (Tokenizer.Encode(p.A), Tokenizer.Encode(p.B))).ToList(), progress, cancellationToken)
            .Select(s => (s.A.Sum, s.B.Sum)).ToArray();

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
            int common = CommonPrefix(prefix, whole);
            sequences.Add(whole);
            starts.Add(Math.Clamp(common, 1, whole.Length));
        }
        return Score(sequences, starts);
    }

    /// <summary>
    /// Per-token log-probabilities of each id sequence from <paramref name="scoreFrom"/>[i] (default 1:
    /// every token after the first) to its end. <paramref name="progress"/> receives the number of
    /// sequences scored so far after each batch; cancellation is checked between batches.
    /// </summary>
    public IReadOnlyList<TokenScores> Score(IReadOnlyList<int[]> sequences, IReadOnlyList<int>? scoreFrom = null,
        IProgress<int>? progress = null, CancellationToken cancellationToken = default)
    {
        if (scoreFrom is not null && scoreFrom.Count != sequences.Count)
            throw new ArgumentException($"{scoreFrom.Count} start positions for {sequences.Count} sequences");
        var from = new int[sequences.Count];
        for (int i = 0; i < sequences.Count; i++) from[i] = scoreFrom?[i] ?? 1;
        var run = new Run(this, sequences, from, progress, cancellationToken);
        run.ScorePlain(Enumerable.Range(0, sequences.Count).Where(run.NeedsModel).ToArray());
        return run.Results();
    }

    /// <summary>
    /// Per-token log-probabilities of both sequences of each pair, every token after the first (as
    /// <see cref="Score"/> with the default start). With <see cref="ScorerOptions.SharePrefixes"/>, the
    /// tokens the two have in common at the start run through the model once, into a KV cache that
    /// both continuations then read; the results equal scoring the sequences one by one.
    /// <paramref name="progress"/> counts sequences (two per pair).
    /// </summary>
    public IReadOnlyList<(TokenScores A, TokenScores B)> ScorePairs(IReadOnlyList<(int[] A, int[] B)> pairs,
        IProgress<int>? progress = null, CancellationToken cancellationToken = default)
    {
        var sequences = new int[pairs.Count * 2][];
        for (int i = 0; i < pairs.Count; i++) (sequences[2 * i], sequences[2 * i + 1]) = pairs[i];
        var run = new Run(this, sequences, Enumerable.Repeat(1, sequences.Length).ToArray(), progress, cancellationToken);
        var shared = new List<int>();
        var plain = new List<int>();
        for (int i = 0; i < pairs.Count; i++)
        {
            bool both = run.NeedsModel(2 * i) && run.NeedsModel(2 * i + 1);
            if (both && _options.SharePrefixes && CommonPrefix(sequences[2 * i], sequences[2 * i + 1]) >= MinSharedPrefix) shared.Add(i);
            else plain.AddRange(new[] { 2 * i, 2 * i + 1 }.Where(run.NeedsModel));
        }
        run.ScoreShared(shared.ToArray());
        run.ScorePlain(plain.ToArray());
        var results = run.Results();
        return Enumerable.Range(0, pairs.Count).Select(i => (results[2 * i], results[2 * i + 1])).ToList();
    }

    static int CommonPrefix(int[] a, int[] b)
    {
        int common = 0;
        while (common < a.Length && common < b.Length && a[common] == b[common]) common++;
        return common;
    }

    /// <summary>
    /// One scoring call: the sequences, where their scores start, and the host buffers the batches
    /// fill (token log-probabilities, and under the BOW correction ln P(next token starts a word)
    /// at every position).
    /// </summary>
    sealed class Run
    {
        readonly Scorer _scorer;
        readonly IReadOnlyList<int[]> _sequences;
        readonly int[] _from;
        readonly float[][] _tokens;
        readonly float[][]? _bows;
        readonly IProgress<int>? _progress;
        readonly CancellationToken _cancellationToken;
        int _done;

        public Run(Scorer scorer, IReadOnlyList<int[]> sequences, int[] from, IProgress<int>? progress, CancellationToken cancellationToken)
        {
            _scorer = scorer;
            _sequences = sequences;
            _from = from;
            _progress = progress;
            _cancellationToken = cancellationToken;
            int window = scorer._model.Config.MaxPositionEmbeddings, vocabulary = scorer._model.Config.VocabSize;
            _tokens = new float[sequences.Count][];
            if (scorer._bowIds is not null) _bows = new float[sequences.Count][];
            for (int i = 0; i < sequences.Count; i++)
            {
                if (sequences[i].Length > window)
                    throw new InputException($"sequence {i} has {sequences[i].Length} tokens, more than the model's context window of {window}");
                foreach (var id in sequences[i])
                    if ((uint)id >= (uint)vocabulary)
                        throw new InputException($"sequence {i} holds token id {id}, outside the model's vocabulary (0..{vocabulary - 1}); is the tokenizer the model's own?");
                if (from[i] < 1 || from[i] > sequences[i].Length)
                    throw new ArgumentException($"sequence {i}: scoring must start within 1..{sequences[i].Length}, got {from[i]}");
                _tokens[i] = new float[sequences[i].Length - from[i]];
                if (_bows is not null) _bows[i] = new float[sequences[i].Length];
            }
        }

        bool Bow => _bows is not null;

        /// <summary>A sequence of fewer than two tokens has nothing to score.</summary>
        public bool NeedsModel(int i) => _sequences[i].Length >= 2;

        /// <summary>Tokens fed to the model: all but the last, which predicts nothing (unless BOW needs what follows it).</summary>
        int InputLength(int i) => Bow ? _sequences[i].Length : _sequences[i].Length - 1;

        public IReadOnlyList<TokenScores> Results()
        {
            var results = new TokenScores[_sequences.Count];
            for (int i = 0; i < results.Length; i++)
            {
                if (_bows is not null && NeedsModel(i)) _scorer.ApplyBowCorrection(_sequences[i], _from[i], _tokens[i], _bows[i]);
                results[i] = new TokenScores(_sequences[i], _from[i], _tokens[i]);
            }
            return results;
        }

        /// <summary>Each sequence alone, longest first (the first batch shows at once whether memory suffices).</summary>
        public void ScorePlain(int[] indices)
        {
            var order = indices.OrderByDescending(InputLength).ToArray();
            using var noGrad = no_grad();
            for (int start = 0; start < order.Length;)
            {
                _cancellationToken.ThrowIfCancellationRequested();
                int width = InputLength(order[start]);
                int rows = Math.Max(1, Math.Min(order.Length - start, _scorer._options.MaxBatchTokens / width));
                var pass = new Pass(rows, width);
                for (int r = 0; r < rows; r++) AddRow(pass, r, order[start + r], 0);
                using (var scope = NewDisposeScope()) RunPass(pass, null);
                start += rows;
                Report(rows);
            }
        }

        /// <summary>
        /// Pairs (2i, 2i + 1) whose sequences share a prefix of P ≥ 2 tokens, grouped by P so that
        /// the prefixes need no padding. Two passes per batch: the prefixes run once into a KV
        /// cache; the cache's rows are doubled, and the rests of both sequences of every pair run
        /// side by side (rows 2r and 2r + 1), each reading its pair's prefix.
        /// </summary>
        public void ScoreShared(int[] pairs)
        {
            using var noGrad = no_grad();
            foreach (var group in pairs.GroupBy(p => CommonPrefix(_sequences[2 * p], _sequences[2 * p + 1])).OrderByDescending(g => g.Key))
            {
                int prefix = group.Key;
                int Rest(int pair) => Math.Max(0, Math.Max(InputLength(2 * pair), InputLength(2 * pair + 1)) - prefix);
                var order = group.OrderByDescending(Rest).ToArray();
                for (int start = 0; start < order.Length;)
                {
                    _cancellationToken.ThrowIfCancellationRequested();
                    int width = Rest(order[start]);                             // the widest rest of the batch
                    int rows = Math.Max(1, Math.Min(order.Length - start, _scorer._options.MaxBatchTokens / Math.Max(prefix, 2 * width)));
                    var batch = order[start..(start + rows)];
                    using (var scope = NewDisposeScope())
                    {
                        using var cache = new KvCache(_scorer._model.Config, rows, prefix + width, _scorer._model.Device);
                        var head = new Pass(rows, prefix);
                        for (int r = 0; r < rows; r++) AddPrefixRow(head, r, batch[r], prefix);
                        RunPass(head, cache);
                        if (width > 0)
                        {
                            using var both = cache.RepeatRows(2);
                            var rest = new Pass(2 * rows, width);
                            for (int r = 0; r < 2 * rows; r++) AddRow(rest, r, 2 * batch[r / 2] + r % 2, prefix);
                            RunPass(rest, both);
                        }
                    }
                    start += rows;
                    Report(2 * rows);
                }
            }
        }

        void Report(int sequences)
        {
            _done += sequences;
            _progress?.Report(_done);
        }

        /// <summary>
        /// Row <paramref name="row"/> of a pass holds sequence <paramref name="i"/> from position
        /// <paramref name="offset"/> on (the positions before are in the KV cache), up to its input length.
        /// Every position p whose next token is scored predicts ids[p + 1]; under BOW, every scored
        /// position also gets ln P(the next token starts a word).
        /// </summary>
        void AddRow(Pass pass, int row, int i, int offset)
        {
            var ids = _sequences[i];
            int from = _from[i], end = InputLength(i);
            for (int p = offset; p < end; p++) pass.Ids[row * pass.Width + p - offset] = ids[p];
            for (int p = Math.Max(offset, from - 1); p < end; p++)
            {
                bool scored = p + 1 < ids.Length;
                int request = pass.Request(row, p - offset, scored ? ids[p + 1] : 0, 0);
                if (scored) pass.Outputs.Add(new Output(request, 0, i, p + 1 - from));
                if (Bow && p >= from) pass.Outputs.Add(new Output(request, 2, i, p));
            }
        }

        /// <summary>
        /// The shared prefix of pair <paramref name="pair"/> (P tokens, scores start at 1): positions
        /// before P − 1 serve both sequences; position P − 1 predicts each one's first own token.
        /// </summary>
        void AddPrefixRow(Pass pass, int row, int pair, int prefix)
        {
            int a = 2 * pair, b = 2 * pair + 1;
            var idsA = _sequences[a];
            var idsB = _sequences[b];
            for (int p = 0; p < prefix; p++) pass.Ids[row * pass.Width + p] = idsA[p];
            for (int p = 0; p < prefix; p++)
            {
                bool last = p == prefix - 1;
                bool scoredA = p + 1 < idsA.Length, scoredB = p + 1 < idsB.Length;
                int request = pass.Request(row, p, scoredA ? idsA[p + 1] : 0, scoredB ? idsB[p + 1] : 0);
                if (scoredA) pass.Outputs.Add(new Output(request, 0, a, p));
                if (scoredB) pass.Outputs.Add(new Output(request, last ? 1 : 0, b, p));
                if (Bow && p >= 1)
                {
                    pass.Outputs.Add(new Output(request, 2, a, p));
                    pass.Outputs.Add(new Output(request, 2, b, p));
                }
            }
        }

        /// <summary>
        /// Runs the model over a pass and fills the host buffers. Each asked-for position's hidden
        /// state goes through the output head in slices; ln p(target) = logit[target] − logsumexp(logits).
        /// </summary>
        void RunPass(Pass pass, KvCache? cache)
        {
            var model = _scorer._model;
            var device = model.Device;
            int n = pass.Count;
            var input = tensor(pass.Ids, [pass.Rows, pass.Width], device: device);            // (B, T)
            var hidden = model.Hidden(input, null, cache);                                      // (B, T, H)
            if (n == 0) return;
            var picked = hidden.reshape(-1, hidden.shape[2])
                .index_select(0, tensor(pass.Positions.ToArray(), device: device));             // (n, H)
            var targets = tensor(pass.Targets.ToArray(), [n, 2], device: device);               // (n, 2)
            var bowIds = _scorer._bowIds is { } ids ? tensor(ids, device: device) : null;
            var logProbs = new float[2 * n];
            var bows = Bow ? new float[n] : null;
            for (int start = 0; start < n; start += HeadRows)
            {
                using var slice = NewDisposeScope();
                int rows = Math.Min(HeadRows, n - start);
                var logits = model.Logits(picked.narrow(0, start, rows));                      // (r, V)
                var normaliser = logits.logsumexp(1, keepdim: true);                           // (r, 1)
                var chosen = logits.gather(1, targets.narrow(0, start, rows)) - normaliser;    // (r, 2)
                chosen.cpu().data<float>().CopyTo(logProbs, 2 * start);
                if (bows is not null)
                    (logits.index_select(1, bowIds!).logsumexp(1) - normaliser.squeeze(1)).cpu().data<float>().CopyTo(bows, start);
            }
            foreach (var o in pass.Outputs)
            {
                if (o.Slot < 2) _tokens[o.Sequence][o.Index] = logProbs[2 * o.Request + o.Slot];
                else _bows![o.Sequence][o.Index] = bows![o.Request];
            }
        }
    }

    /// <summary>Where a computed value goes: slot 0 or 1 (a token log-probability) or 2 (BOW) of a request, into sequence's entry Index.</summary>
    readonly record struct Output(int Request, int Slot, int Sequence, int Index);

    /// <summary>
    /// One forward pass: right-padded input ids (Rows, Width), and the requests, i.e. positions whose
    /// next-token distribution is needed, each with up to two target ids.
    /// </summary>
    sealed class Pass(int rows, int width)
    {
        public int Rows { get; } = rows;
        public int Width { get; } = width;
        public long[] Ids { get; } = new long[rows * width];   // padding 0: never seen by a real token
        public List<long> Positions { get; } = new(rows * width);
        public List<long> Targets { get; } = new(2 * rows * width);
        public List<Output> Outputs { get; } = new(2 * rows * width);
        public int Count => Positions.Count;

        public int Request(int row, int column, long target0, long target1)
        {
            Positions.Add((long)row * Width + column);
            Targets.Add(target0);
            Targets.Add(target1);
            return Positions.Count - 1;
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
