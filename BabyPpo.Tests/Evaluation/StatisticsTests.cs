using System.Numerics;
using BabyPpo.Evaluation;

namespace BabyPpo.Tests.Evaluation;

/// <summary>
/// Accuracies, bootstrap intervals and McNemar's test. Expected values come from hand calculations
/// (binomial probabilities of small resamples), normal approximations, or exact big-integer sums.
/// </summary>
public sealed class StatisticsTests
{
    /// <summary>n outcomes of which the first <paramref name="correct"/> are true.</summary>
    static bool[] Outcomes(int n, int correct) => Enumerable.Range(0, n).Select(i => i < correct).ToArray();

    static double Width(Interval i) => i.High - i.Low;

    [Fact]
    public void AccuracyIsTheShareOfCorrectItems()
    {
        Assert.Equal(0.75, Statistics.Accuracy([true, false, true, true]));
        Assert.Equal(0.0, Statistics.Accuracy([false, false]));
    }

    [Fact]
    public void AccuracyOfNoItemsIsAnError() =>
        Assert.Throws<ArgumentException>(() => Statistics.Accuracy([]));

    [Fact]
    public void BootstrapWithTheSameSeedIsReproducibleAndAnotherSeedDiffers()
    {
        var outcomes = Outcomes(10_000, 6_543);   // fine enough that percentiles move with the draws
        var first = Statistics.BootstrapCi95(outcomes, seed: 7);
        var again = Statistics.BootstrapCi95(outcomes, seed: 7);
        var other = Statistics.BootstrapCi95(outcomes, seed: 8);
        Assert.Equal(first, again);
        Assert.NotEqual(first, other);
    }

    [Fact]
    public void BootstrapIntervalContainsTheAccuracyAndNarrowsAsItemsGrow()
    {
        var small = Statistics.BootstrapCi95(Outcomes(100, 70));
        var large = Statistics.BootstrapCi95(Outcomes(10_000, 7_000));
        Assert.InRange(0.7, large.Low, large.High);
        Assert.True(small.Low < 0.7 && 0.7 < small.High, $"{small} should straddle 0.7");
        // the width shrinks like 1/√n: 100× the items, a tenth of the width
        Assert.InRange(Width(large) / Width(small), 0.08, 0.12);
    }

    [Fact]
    public void BootstrapIntervalMatchesTheNormalApproximationForManyItems()
    {
        // p̂ ± 1.96·√(p̂(1−p̂)/n) = 0.7 ± 1.96·√(0.21/10,000) = 0.7 ± 0.0089818
        var ci = Statistics.BootstrapCi95(Outcomes(10_000, 7_000));
        Assert.Equal(0.7 - 0.0089818, ci.Low, 0.0006);
        Assert.Equal(0.7 + 0.0089818, ci.High, 0.0006);
    }

    [Fact]
    public void SmallSampleIntervalFollowsTheBinomialDistributionOfResampledCounts()
    {
        // 9 of 10 correct: a resample holds Binomial(10, 0.9) correct items.
        // P(≤ 6) = 1 − (0.3487 + 0.3874 + 0.1937 + 0.0574) = 0.0128 < 2.5% < P(≤ 7) = 0.0702,
        // and P(≤ 9) = 0.6513 < 97.5%, so the percentiles are 7/10 and 10/10.
        var ci = Statistics.BootstrapCi95(Outcomes(10, 9));
        Assert.Equal(new Interval(0.7, 1.0), ci);
    }

    [Fact]
    public void IntervalsAgreeWithNaiveItemResampling()
    {
        // The reference draws n item indices per resample, for both models at once. Its percentiles and
        // ours differ only by Monte Carlo error (~0.001 here) and the 1/400 grid of accuracies.
        const int n = 400, resamples = 4000;
        var a = new bool[n];
        var b = new bool[n];
        for (int i = 0; i < n; i++)
        {
            a[i] = i < 300;                         // 75% right
            b[i] = (i >= 40 && i < 300) || i >= 340; // 40 items only A, 60 only B: 80% right
        }
        var random = new Random(99);
        var accuracies = new double[resamples];
        var differences = new double[resamples];
        for (int r = 0; r < resamples; r++)
        {
            int correctA = 0, correctB = 0;
            for (int j = 0; j < n; j++)
            {
                int item = random.Next(n);
                if (a[item]) correctA++;
                if (b[item]) correctB++;
            }
            accuracies[r] = (double)correctA / n;
            differences[r] = (double)(correctB - correctA) / n;
        }
        var naive = NaivePercentiles(accuracies);
        var naiveDifference = NaivePercentiles(differences);
        var ci = Statistics.BootstrapCi95(a, resamples);
        var paired = Statistics.Compare(a, b, resamples).DifferenceCi95;
        Assert.Equal(naive.Low, ci.Low, 0.006);
        Assert.Equal(naive.High, ci.High, 0.006);
        Assert.Equal(naiveDifference.Low, paired.Low, 0.006);
        Assert.Equal(naiveDifference.High, paired.High, 0.006);
    }

    static Interval NaivePercentiles(double[] values)
    {
        var sorted = values.Order().ToArray();
        return new Interval(sorted[(int)(0.025 * sorted.Length)], sorted[(int)(0.975 * sorted.Length)]);
    }

    [Fact]
    public void AllCorrectGivesOneOneAndAllWrongGivesZeroZero()
    {
        Assert.Equal(new Interval(1, 1), Statistics.BootstrapCi95(Outcomes(50, 50)));
        Assert.Equal(new Interval(0, 0), Statistics.BootstrapCi95(Outcomes(50, 0)));
    }

    [Fact]
    public void MacroIntervalResamplesWithinEachGroup()
    {
        // Group "a" is always right (accuracy 1 in every resample); group "b" has 9 of 10, whose
        // resampled accuracy has percentiles 0.7 and 1.0 (see above): macro = (1 + b)/2 ∈ [0.85, 1].
        var outcomes = Outcomes(50, 50).Concat(Outcomes(10, 9)).ToArray();
        var groups = Enumerable.Repeat("a", 50).Concat(Enumerable.Repeat("b", 10)).ToArray();
        var ci = Statistics.BootstrapMacroCi95(outcomes, groups);
        Assert.Equal(0.85, ci.Low, 1e-12);
        Assert.Equal(1.0, ci.High, 1e-12);
    }

    [Fact]
    public void MacroIntervalMatchesTheNormalApproximationOfAnAverageOfGroups()
    {
        // Four groups of 2,000 items at 60/70/80/90%: macro 0.75, variance (1/16)·Σ p(1−p)/2000
        // = (1/16)·0.70/2000 = 2.1875e-5, so 0.75 ± 1.96·0.0046771 = 0.75 ± 0.0091671.
        var outcomes = new List<bool>();
        var groups = new List<string>();
        foreach (var (name, correct) in new[] { ("p60", 1200), ("p70", 1400), ("p80", 1600), ("p90", 1800) })
        {
            outcomes.AddRange(Outcomes(2000, correct));
            groups.AddRange(Enumerable.Repeat(name, 2000));
        }
        var ci = Statistics.BootstrapMacroCi95(outcomes, groups);
        Assert.Equal(0.75 - 0.0091671, ci.Low, 0.0006);
        Assert.Equal(0.75 + 0.0091671, ci.High, 0.0006);
    }

    [Fact]
    public void MacroIntervalDoesNotDependOnItemOrder()
    {
        var outcomes = Outcomes(30, 20).Concat(Outcomes(40, 10)).ToArray();
        var groups = Enumerable.Repeat("x", 30).Concat(Enumerable.Repeat("y", 40)).ToArray();
        var order = Enumerable.Range(0, 70).Reverse().ToArray();
        var forward = Statistics.BootstrapMacroCi95(outcomes, groups);
        var reversed = Statistics.BootstrapMacroCi95(order.Select(i => outcomes[i]).ToArray(), order.Select(i => groups[i]).ToArray());
        Assert.Equal(forward, reversed);
    }

    [Fact]
    public void MacroIntervalNeedsOneGroupPerOutcome() =>
        Assert.Throws<ArgumentException>(() => Statistics.BootstrapMacroCi95([true, false], ["a"]));

    [Fact]
    public void CompareOfIdenticalOutcomesFindsNoDifference()
    {
        var outcomes = Outcomes(100, 64);
        var c = Statistics.Compare(outcomes, outcomes);
        Assert.Equal(new Comparison(100, 0.64, 0.64, 0, new Interval(0, 0), 0, 0, 1), c);
    }

    [Fact]
    public void CompareCountsDiscordantPairsAndTakesBMinusA()
    {
        bool[] a = [true, true, false, false, true];
        bool[] b = [true, false, true, true, true];
        var c = Statistics.Compare(a, b);
        Assert.Equal(5, c.N);
        Assert.Equal(0.6, c.AccuracyA, 1e-12);
        Assert.Equal(0.8, c.AccuracyB, 1e-12);
        Assert.Equal(0.2, c.Difference, 1e-12);
        Assert.Equal(1, c.OnlyACorrect);
        Assert.Equal(2, c.OnlyBCorrect);
        Assert.Equal(1.0, c.McNemarP);   // 2·P(X ≤ 1), X ~ Bin(3, ½) = 2·4/8 ≥ 1
    }

    [Fact]
    public void PairedIntervalMatchesTheNormalApproximationOfAPairedDifference()
    {
        // 10,000 items, 500 only A right, 700 only B right: d = 0.02,
        // Var = (p10 + p01 − d²)/n = (0.05 + 0.07 − 0.0004)/10,000, so d ± 1.96·0.0034583 = 0.02 ± 0.0067783.
        var a = new bool[10_000];
        var b = new bool[10_000];
        for (int i = 0; i < 10_000; i++)
        {
            a[i] = i < 500 || (i >= 1200 && i < 7000);
            b[i] = (i >= 500 && i < 1200) || (i >= 1200 && i < 7000);
        }
        var c = Statistics.Compare(a, b);
        Assert.Equal((500, 700), (c.OnlyACorrect, c.OnlyBCorrect));
        Assert.Equal(0.02, c.Difference, 1e-12);
        Assert.Equal(0.02 - 0.0067783, c.DifferenceCi95.Low, 0.0006);
        Assert.Equal(0.02 + 0.0067783, c.DifferenceCi95.High, 0.0006);
    }

    [Fact]
    public void CompareNeedsOutcomesOfEqualLength() =>
        Assert.Throws<ArgumentException>(() => Statistics.Compare([true, false], [true]));

    [Fact]
    public void McNemarMatchesTheTextbookExample()
    {
        // b = 1, c = 9: 2·P(X ≤ 1), X ~ Bin(10, ½) = 2·(1 + 10)/1024
        Assert.Equal(0.021484375, Statistics.McNemarExactP(1, 9), 1e-12);
        Assert.Equal(0.021484375, Statistics.McNemarExactP(9, 1), 1e-12);
        Assert.Equal(0.0625, Statistics.McNemarExactP(0, 5), 1e-12);   // 2·(1/32)
    }

    [Fact]
    public void McNemarIsOneWithoutEvidence()
    {
        Assert.Equal(1.0, Statistics.McNemarExactP(0, 0));
        Assert.Equal(1.0, Statistics.McNemarExactP(7, 7));
        Assert.Equal(1.0, Statistics.McNemarExactP(1, 2));         // 2·P(X ≤ 1), X ~ Bin(3, ½) = 2·4/8
        Assert.Equal(1.0, Statistics.McNemarExactP(20_000, 20_000));
    }

    [Theory]
    [InlineData(37, 61)]
    [InlineData(300, 420)]
    [InlineData(1500, 1000)]
    public void McNemarMatchesAnExactBigIntegerSum(int onlyA, int onlyB)
    {
        int m = onlyA + onlyB, k = Math.Min(onlyA, onlyB);
        BigInteger choose = 1, tail = 0;
        for (int i = 0; i <= k; i++)
        {
            tail += choose;
            choose = choose * (m - i) / (i + 1);
        }
        double expected = Math.Min(1, 2 * Math.Exp(BigInteger.Log(tail) - m * Math.Log(2)));
        double actual = Statistics.McNemarExactP(onlyA, onlyB);
        Assert.True(Math.Abs(actual - expected) <= 1e-9 * expected, $"p = {actual}, exact {expected}");
    }

    [Fact]
    public void McNemarWithManyDiscordantPairsAgreesWithTheNormalApproximation()
    {
        // z = (|b − c| − 1)/√(b + c) = 399/√40,400 = 1.98509 with continuity correction
        double z = 399 / Math.Sqrt(40_400);
        double normal = Erfc(z / Math.Sqrt(2));   // two-sided: 2·(1 − Φ(z)) = erfc(z/√2)
        double p = Statistics.McNemarExactP(20_000, 20_400);
        Assert.True(double.IsFinite(p));
        Assert.InRange(p, 0, 1);
        Assert.Equal(normal, p, 0.005);
        double extreme = Statistics.McNemarExactP(0, 50_000);   // 2·2^−50,000 underflows to 0
        Assert.True(double.IsFinite(extreme) && extreme >= 0 && extreme < 1e-300);
    }

    [Fact]
    public void McNemarRejectsNegativeCounts() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => Statistics.McNemarExactP(-1, 3));

    /// <summary>erfc by Numerical Recipes' Chebyshev fit (fractional error below 1.2e-7), independent of the code under test.</summary>
    static double Erfc(double x)
    {
        double z = Math.Abs(x), t = 1 / (1 + 0.5 * z);
        double r = t * Math.Exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418
            + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587
            + t * (-0.82215223 + t * 0.17087277)))))))));
        return x >= 0 ? r : 2 - r;
    }
}
