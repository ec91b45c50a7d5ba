namespace BabyPpo.Evaluation;

/// <summary>A closed interval [Low, High], e.g. a 95% confidence interval of an accuracy.</summary>
public sealed record Interval(double Low, double High);

/// <summary>
/// Two models scored on the same items. <c>Difference</c> is B − A, its interval is a paired bootstrap
/// interval; <c>OnlyACorrect</c>/<c>OnlyBCorrect</c> are the discordant pairs McNemar's test uses.
/// </summary>
public sealed record Comparison(
    int N,
    double AccuracyA,
    double AccuracyB,
    double Difference,
    Interval DifferenceCi95,
    int OnlyACorrect,
    int OnlyBCorrect,
    double McNemarP);

/// <summary>
/// Is a difference of one or two points between models real? Percentile bootstrap intervals for
/// accuracies (plain, macro-averaged over groups, and paired differences) and the exact McNemar test.
/// </summary>
/// <remarks>
/// <para>Reproducibility: every bootstrap draws its uniforms from <c>new System.Random(seed)</c>, in a
/// fixed order. A seeded <see cref="Random"/> runs .NET's original subtractive generator (kept for
/// compatibility; unseeded instances use another one) in integer arithmetic, so a seed gives the same
/// interval on every run, OS and CPU. Microsoft does not promise that sequence across major .NET
/// versions, so a new runtime could move an interval's last digits, never its meaning.</para>
/// <para>Speed: a resample of items only matters through how many items of each kind it draws, so we
/// draw those counts, exactly distributed, instead of n item indices. Drawing n items with replacement
/// from n items of which k are correct gives Binomial(n, k/n) correct ones; we sample it by inversion
/// (one uniform, binary search in its cumulative table), which is the same distribution, exact up to
/// the resolution of the uniform. 46,000 items × 10,000 resamples take milliseconds, not minutes.</para>
/// <para>Percentiles interpolate linearly between order statistics (numpy's default, Hyndman–Fan type 7).</para>
/// </remarks>
public static class Statistics
{
    public const int DefaultResamples = 10_000;
    public const int DefaultSeed = 12345;

    /// <summary>The fraction of true outcomes.</summary>
    public static double Accuracy(IReadOnlyList<bool> outcomes)
    {
        RequireItems(outcomes.Count, nameof(outcomes));
        return (double)CountTrue(outcomes) / outcomes.Count;
    }

    /// <summary>
    /// 95% percentile bootstrap interval of the accuracy: resample n items with replacement,
    /// recompute the accuracy, take the 2.5th and 97.5th percentiles. The resampled number of correct
    /// items is drawn as Binomial(n, k/n), which is exactly the count such a resample gives.
    /// </summary>
    public static Interval BootstrapCi95(IReadOnlyList<bool> outcomes, int resamples = DefaultResamples, int seed = DefaultSeed)
    {
        RequireItems(outcomes.Count, nameof(outcomes));
        RequireResamples(resamples);
        int n = outcomes.Count;
        var correct = new BinomialSampler(n, (double)CountTrue(outcomes) / n);
        var random = new Random(seed);
        var accuracies = new double[resamples];
        for (int r = 0; r < resamples; r++)
            accuracies[r] = (double)correct.Sample(random.NextDouble()) / n;
        return Percentiles95(accuracies);
    }

    /// <summary>
    /// 95% percentile bootstrap interval of the macro average over groups (e.g. Zorro's paradigms):
    /// each resample redraws the items of every group within that group, recomputes each group's
    /// accuracy and averages them with equal weight. Groups are visited in ordinal name order, one
    /// uniform each, so the interval depends on the items' groups and outcomes, not on their order.
    /// </summary>
    public static Interval BootstrapMacroCi95(IReadOnlyList<bool> outcomes, IReadOnlyList<string> groups, int resamples = DefaultResamples, int seed = DefaultSeed)
    {
        RequireItems(outcomes.Count, nameof(outcomes));
        RequireResamples(resamples);
        var counts = GroupCounts(outcomes, groups);
        var samplers = counts.Select(g => new BinomialSampler(g.N, (double)g.Correct / g.N)).ToArray();
        var random = new Random(seed);
        var averages = new double[resamples];
        for (int r = 0; r < resamples; r++)
        {
            double sum = 0;
            for (int g = 0; g < samplers.Length; g++)
                sum += (double)samplers[g].Sample(random.NextDouble()) / counts[g].N;
            averages[r] = sum / samplers.Length;
        }
        return Percentiles95(averages);
    }

    /// <summary>
    /// Two models on the same items, in the same order. The interval of B − A is a paired bootstrap:
    /// each resample draws item indices once, for both models. Only the discordant items move the
    /// difference, so we draw, exactly as such a resample would, the number of discordant items
    /// D ~ Binomial(n, (b + c)/n) and how many of them only B got right, Binomial(D, c/(b + c)).
    /// The p-value is the exact two-sided McNemar test (<see cref="McNemarExactP"/>).
    /// </summary>
    public static Comparison Compare(IReadOnlyList<bool> a, IReadOnlyList<bool> b, int resamples = DefaultResamples, int seed = DefaultSeed)
    {
        if (a.Count != b.Count)
            throw new ArgumentException($"paired outcomes must have the same length: A has {a.Count}, B has {b.Count}", nameof(b));
        RequireItems(a.Count, nameof(a));
        RequireResamples(resamples);
        int n = a.Count, onlyA = 0, onlyB = 0;
        for (int i = 0; i < n; i++)
        {
            if (a[i] && !b[i]) onlyA++;
            else if (b[i] && !a[i]) onlyB++;
        }
        int discordant = onlyA + onlyB;
        var differences = new double[resamples];
        if (discordant > 0)
        {
            var discordantCount = new BinomialSampler(n, (double)discordant / n);
            var onlyBGivenDiscordant = new Dictionary<int, BinomialSampler>();
            double shareB = (double)onlyB / discordant;
            var random = new Random(seed);
            for (int r = 0; r < resamples; r++)
            {
                int d = discordantCount.Sample(random.NextDouble());
                if (!onlyBGivenDiscordant.TryGetValue(d, out var sampler))
                    onlyBGivenDiscordant[d] = sampler = new BinomialSampler(d, shareB);
                int b1 = sampler.Sample(random.NextDouble());
                differences[r] = (double)(b1 - (d - b1)) / n;
            }
        }
        return new Comparison(
            N: n,
            AccuracyA: Accuracy(a),
            AccuracyB: Accuracy(b),
            Difference: (double)(onlyB - onlyA) / n,
            DifferenceCi95: Percentiles95(differences),
            OnlyACorrect: onlyA,
            OnlyBCorrect: onlyB,
            McNemarP: McNemarExactP(onlyA, onlyB));
    }

    /// <summary>
    /// Exact two-sided McNemar test on the discordant pairs b = <paramref name="onlyA"/>,
    /// c = <paramref name="onlyB"/>: p = min(1, 2·P(X ≤ min(b, c))) with X ~ Binomial(b + c, 1/2);
    /// p = 1 when b + c = 0. The tail is summed in log space, so it stays exact and finite for any
    /// b + c (tens of thousands of discordant items included).
    /// </summary>
    public static double McNemarExactP(int onlyA, int onlyB)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(onlyA);
        ArgumentOutOfRangeException.ThrowIfNegative(onlyB);
        long m = (long)onlyA + onlyB;
        long k = Math.Min(onlyA, onlyB);
        // By symmetry the tail up to the middle (k = m/2, or k = (m − 1)/2 for odd m) holds at least
        // half the mass, so p = 1 exactly; we return it rather than a log-space 0.9999999999999999.
        if (2 * k + 1 >= m) return 1;
        // P(X ≤ k) = P(X = k) · Σ_{j ≥ 0} C(m, k−j)/C(m, k); the terms fall going down (k < m/2),
        // so we stop once they no longer change the sum.
        double logPk = LogFactorial(m) - LogFactorial(k) - LogFactorial(m - k) - m * Math.Log(2);
        double sum = 1, term = 1;
        for (long i = k; i > 0; i--)
        {
            term *= (double)i / (m - i + 1);    // C(m, i−1)/C(m, i)
            sum += term;
            if (term < sum * 1e-17) break;
        }
        return Math.Min(1, 2 * Math.Exp(logPk + Math.Log(sum)));
    }

    // ln(x!) exactly summed below 256, by Stirling's series above (truncation error < 1e-25 there).
    static readonly double[] SmallLogFactorials = BuildSmallLogFactorials(256);

    static double LogFactorial(long x)
    {
        if (x < SmallLogFactorials.Length) return SmallLogFactorials[x];
        double n = x, n2 = n * n;
        return n * Math.Log(n) - n + 0.5 * Math.Log(2 * Math.PI * n)
            + (1.0 / 12 - (1.0 / 360 - (1.0 / 1260 - 1.0 / (1680 * n2)) / n2) / n2) / n;
    }

    static double[] BuildSmallLogFactorials(int count)
    {
        var table = new double[count];
        for (int i = 2; i < count; i++) table[i] = table[i - 1] + Math.Log(i);
        return table;
    }

    /// <summary>
    /// Binomial(n, p) sampled by inversion: the smallest x with F(x) > u for a uniform u in [0, 1).
    /// The table covers the values whose probability is at least 1e-18 of the mode's (the rest is far
    /// below what a uniform can resolve) and is renormalised; probabilities are built from the mode
    /// outwards with pmf(x+1)/pmf(x) = (n−x)/(x+1) · p/(1−p), so nothing under- or overflows.
    /// </summary>
    sealed class BinomialSampler
    {
        const double Negligible = 1e-18;
        readonly int _first;        // the smallest value the table covers
        readonly double[] _cdf;     // _cdf[i] = P(X ≤ _first + i); the last entry is exactly 1

        public BinomialSampler(int n, double p)
        {
            if (p <= 0 || p >= 1)
            {
                _first = p <= 0 ? 0 : n;
                _cdf = [1.0];
                return;
            }
            int mode = (int)Math.Min(n, Math.Floor((n + 1) * p));
            double odds = p / (1 - p);
            var below = new List<double>();   // pmf(mode−1), pmf(mode−2), … relative to pmf(mode)
            double t = 1;
            for (int x = mode; x > 0; x--)
            {
                t *= x / ((n - x + 1) * odds);
                if (t < Negligible) break;
                below.Add(t);
            }
            var above = new List<double>();   // pmf(mode+1), pmf(mode+2), …
            t = 1;
            for (int x = mode; x < n; x++)
            {
                t *= (n - x) * odds / (x + 1);
                if (t < Negligible) break;
                above.Add(t);
            }
            _first = mode - below.Count;
            _cdf = new double[below.Count + 1 + above.Count];
            double total = 0;
            int at = 0;
            for (int i = below.Count - 1; i >= 0; i--) _cdf[at++] = total += below[i];
            _cdf[at++] = total += 1;
            foreach (double q in above) _cdf[at++] = total += q;
            for (int i = 0; i < _cdf.Length; i++) _cdf[i] /= total;
            _cdf[^1] = 1;
        }

        public int Sample(double u)
        {
            int lo = 0, hi = _cdf.Length - 1;   // invariant: the answer lies in [lo, hi]
            while (lo < hi)
            {
                int mid = (lo + hi) >>> 1;
                if (_cdf[mid] > u) hi = mid;
                else lo = mid + 1;
            }
            return _first + lo;
        }
    }

    static Interval Percentiles95(double[] values)
    {
        Array.Sort(values);
        return new Interval(Percentile(values, 0.025), Percentile(values, 0.975));
    }

    static double Percentile(double[] sorted, double q)
    {
        double h = (sorted.Length - 1) * q;
        int lo = (int)Math.Floor(h);
        int hi = Math.Min(lo + 1, sorted.Length - 1);
        return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
    }

    /// <summary>Items and correct items per group, groups in ordinal name order.</summary>
    internal static List<(string Group, int N, int Correct)> GroupCounts(IReadOnlyList<bool> outcomes, IReadOnlyList<string> groups)
    {
        if (groups.Count != outcomes.Count)
            throw new ArgumentException($"one group per outcome: {outcomes.Count} outcomes, {groups.Count} groups", nameof(groups));
        var counts = new SortedDictionary<string, (int N, int Correct)>(StringComparer.Ordinal);
        for (int i = 0; i < outcomes.Count; i++)
        {
            string group = groups[i] ?? throw new ArgumentException($"item {i} has no group", nameof(groups));
            counts.TryGetValue(group, out var c);
            counts[group] = (c.N + 1, c.Correct + (outcomes[i] ? 1 : 0));
        }
        return counts.Select(kv => (kv.Key, kv.Value.N, kv.Value.Correct)).ToList();
    }

    static int CountTrue(IReadOnlyList<bool> outcomes)
    {
        int count = 0;
        for (int i = 0; i < outcomes.Count; i++)
            if (outcomes[i]) count++;
        return count;
    }

    static void RequireItems(int count, string name)
    {
        if (count == 0) throw new ArgumentException("no items to evaluate", name);
    }

    static void RequireResamples(int resamples) => ArgumentOutOfRangeException.ThrowIfNegativeOrZero(resamples);
}
