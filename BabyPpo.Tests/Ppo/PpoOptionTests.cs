using BabyPpo.Training.Model;
using BabyPpo.Training.Ppo;
using TorchSharp;
using static TorchSharp.torch;

namespace BabyPpo.Tests.Ppo;

/// <summary>
/// The trl 0.8.6 options of the PPO trainer one by one, on small hand-made tensors or one or two
/// steps on tiny-llama. Every expected number was worked out outside this code base: by hand where
/// the comment shows the arithmetic, otherwise with a short plain-Python transcription of the trl
/// 0.8.6 formulas (core.py masked_mean / masked_var / masked_whiten, PPOTrainer._kl_penalty /
/// compute_rewards / compute_advantages / loss, AdaptiveKLController, RunningMoments), printed with
/// repr() and pasted here. None is the output of the C# code under test.
/// </summary>
public sealed class PpoOptionTests
{
    static readonly string TinyLlama = SharedData.Fixture("models", "tiny-llama");

    static Tensor Row(params float[] values) => tensor(values).unsqueeze(0);

    static Tensor Rows(float[][] rows) => tensor(rows.SelectMany(r => r).ToArray(), [rows.Length, rows[0].Length]);

    static void AssertValues(double[] expected, Tensor actual, double tolerance, string what)
    {
        var got = actual.to(ScalarType.Float64).cpu().data<double>().ToArray();
        Assert.Equal(expected.Length, got.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - got[i]) <= tolerance, $"{what}[{i}]: expected {expected[i]}, got {got[i]}");
    }

    /// <summary>Only the positions where the flattened mask is 1.</summary>
    static void AssertMaskedValues(double[] expected, Tensor actual, int[] mask, double tolerance, string what)
    {
        var got = actual.to(ScalarType.Float64).cpu().data<double>().ToArray();
        Assert.Equal(expected.Length, got.Length);
        for (int i = 0; i < expected.Length; i++)
            if (mask[i] == 1)
                Assert.True(Math.Abs(expected[i] - got[i]) <= tolerance, $"{what}[{i}]: expected {expected[i]}, got {got[i]}");
    }

    // ---------------------------------------------------------------- 1. KL penalty kinds

    [Theory]
    // logp − logp_ref = [0.5, −1, 0]; abs = |·|; mse = ½(·)² = [0.125, 0.5, 0] (by hand)
    [InlineData(KlPenalty.Kl, new[] { 0.5, -1.0, 0.0 })]
    [InlineData(KlPenalty.Abs, new[] { 0.5, 1.0, 0.0 })]
    [InlineData(KlPenalty.Mse, new[] { 0.125, 0.5, 0.0 })]
    public void SampledKlPenaltiesAreTheDifferenceItsAbsoluteValueOrHalfItsSquare(KlPenalty kind, double[] expected)
    {
        using var scope = NewDisposeScope();
        var logProbs = Row(-1.0f, -2.0f, -0.5f);
        var refLogProbs = Row(-1.5f, -1.0f, -0.5f);
        AssertValues(expected, PpoMath.KlPenaltyOf(logProbs, refLogProbs, kind), 1e-6, kind.ToString());
    }

    [Fact]
    public void FullKlPenaltyIsTheExactKlOfTheNextTokenDistributionsSummedOverTheVocabulary()
    {
        using var scope = NewDisposeScope();
        // (B=1, L=2, V=3): p = policy, q = reference.
        double[][] p = [[0.7, 0.2, 0.1], [1.0 / 3, 1.0 / 3, 1.0 / 3]];
        double[][] q = [[0.5, 0.25, 0.25], [0.1, 0.6, 0.3]];
        Tensor Log(double[][] d) => tensor(d.SelectMany(r => r.Select(x => (float)Math.Log(x))).ToArray(), [1, 2, 3]);
        var kl = PpoMath.KlPenaltyOf(Log(p), Log(q), KlPenalty.Full);
        Assert.Equal([1L, 2L], kl.shape);
        // Σ p (ln p − ln q), Python: 0.7·ln1.4 + 0.2·ln0.8 + 0.1·ln0.4 = 0.09927278218459155;
        // ⅓(ln(1/0.3) + ln(1/1.8) + ln(1/0.9)) = 0.24051555169388095
        AssertValues([0.09927278218459155, 0.24051555169388095], kl, 1e-6, "full KL");
    }

    // ---------------------------------------------------------------- 2. rewards

    [Fact]
    public void RewardsAreMinusKlCoefTimesKlEverywherePlusTheScoreAtEachRowsLastMaskedToken()
    {
        using var scope = NewDisposeScope();
        var kls = Rows([[0.1f, 0.2f, 0.3f, 0.4f], [0.5f, -0.5f, 1.0f, 2.0f], [1.0f, 1.0f, 1.0f, 1.0f]]);
        // row 2 has its only response token at position 0 (the last 1 is also the first)
        var masks = Rows([[0f, 1f, 1f, 0f], [1f, 1f, 1f, 1f], [1f, 0f, 0f, 0f]]);
        var scores = tensor(new[] { 2.0f, -1.0f, 3.0f });
        var (rewards, nonScore, returnedKls) = PpoMath.ComputeRewards(scores, kls, masks, klCoef: 0.5);

        // By hand: non-score = −0.5·kl at every position (unmasked ones too, as trl);
        // scores added at positions 2, 3 and 0: −0.15 + 2 = 1.85, −1.0 − 1 = −2.0, −0.5 + 3 = 2.5.
        double[] expectedNonScore = [-0.05, -0.1, -0.15, -0.2, -0.25, 0.25, -0.5, -1.0, -0.5, -0.5, -0.5, -0.5];
        AssertValues(expectedNonScore, nonScore, 1e-6, "non-score rewards");
        AssertValues([-0.05, -0.1, 1.85, -0.2, -0.25, 0.25, -0.5, -2.0, 2.5, -0.5, -0.5, -0.5], rewards, 1e-6, "rewards");
        AssertValues([0.1, 0.2, 0.3, 0.4, 0.5, -0.5, 1.0, 2.0, 1.0, 1.0, 1.0, 1.0], returnedKls, 1e-6, "kls");
    }

    // ---------------------------------------------------------------- 3. advantages

    [Fact]
    public void OneRowGaeWithGammaAndLamIsWhitenedOverTheMask()
    {
        using var scope = NewDisposeScope();
        var (values, advantages, returns) = PpoMath.ComputeAdvantages(
            Row(0.5f, 1.0f, -0.5f, 2.0f), Row(0.1f, -0.2f, 1.0f, 3.0f), Row(1f, 1f, 1f, 0f), gamma: 0.9, lam: 0.8, whitenRewards: false);
        int[] mask = [1, 1, 1, 0];
        // By hand, values and rewards masked first (v = [0.5, 1, −0.5, 0], r = [0.1, −0.2, 1, 0]):
        // t=3: δ = 0 → A₃ = 0; t=2: δ = 1 + 0.9·0 + 0.5 = 1.5 → A₂ = 1.5;
        // t=1: δ = −0.2 − 0.45 − 1 = −1.65 → A₁ = −1.65 + 0.72·1.5 = −0.57;
        // t=0: δ = 0.1 + 0.9 − 0.5 = 0.5 → A₀ = 0.5 + 0.72·(−0.57) = 0.0896. returns = A + v.
        AssertValues([0.5, 1.0, -0.5, 0.0], values, 1e-6, "masked values");
        AssertMaskedValues([0.5896, 0.43, 1.0, 0.0], returns, mask, 1e-5, "returns");
        // Whitened over the three masked A (Python masked_whiten, Bessel variance):
        AssertMaskedValues([-0.2366700229912161, -0.8604348624891094, 1.0971048854803254, 0], advantages, mask, 1e-5, "advantages");
        var masked = advantages.narrow(1, 0, 3);
        Assert.Equal(0.0, masked.mean().item<float>(), 5);
        Assert.Equal(1.0, masked.var().item<float>(), 4);   // torch var is Bessel-corrected, as masked_var
    }

    [Fact]
    public void OneRowGaeWithWhitenedRewardsWhitensTheMaskedRewardsKeepingTheirMean()
    {
        using var scope = NewDisposeScope();
        var (_, advantages, returns) = PpoMath.ComputeAdvantages(
            Row(0.5f, 1.0f, -0.5f, 2.0f), Row(0.1f, -0.2f, 1.0f, 3.0f), Row(1f, 1f, 1f, 0f), gamma: 0.9, lam: 0.8, whitenRewards: true);
        int[] mask = [1, 1, 1, 0];
        // Python (trl order: mask, masked_whiten(rewards, shift_mean=False), GAE over all positions,
        // whiten advantages). As in trl, the whitened reward of the unmasked position 3,
        // (0 − 0.3)/sqrt(0.39) + 0.3, is not re-masked and flows back into A₀..A₂ through λ.
        AssertMaskedValues([0.403747250110565, 0.33889382446512406, 1.2910202544804648, 0], returns, mask, 1e-5, "returns");
        AssertMaskedValues([-0.34327521931749544, -0.783151155873964, 1.1264263751914596, 0], advantages, mask, 1e-5, "advantages");
    }

    [Theory]
    // Python, gamma 1, lam 0.95; the whitening of rewards and advantages is over both rows together.
    // Unmasked positions (written 0 here) are not compared.
    [InlineData(false,
        new[] { 1.7280000000000002, 1.8400000000000003, 2.0, 0.0, 0.0, -1.4249999999999998, -1.7, -1.5 },
        new[] { 0.7934229278055686, 1.2124534431734524, 0.6757641131456207, 0.0, 0.0, -0.9884888573733766, -0.7175639551958654, -0.9755876715553998 })]
    [InlineData(true,
        new[] { 1.553619172804301, 1.6504209651659534, 1.7823823131326497, 0.0, 0.0, -1.2441142341288534, -1.4915331225672819, -1.3227030672039986 },
        new[] { 0.7869483665236072, 1.2461154560873005, 0.6306447027621428, 0.0, 0.0, -0.9981596068030035, -0.6797277669453496, -0.9858211516246976 })]
    public void TwoRowGaeIsComputedPerRowAndWhitenedOverTheWholeMask(bool whitenRewards, double[] expectedReturns, double[] expectedAdvantages)
    {
        using var scope = NewDisposeScope();
        var values = Rows([[0.3f, -0.4f, 0.8f, 0.0f], [1.0f, 0.6f, -0.2f, 0.5f]]);
        var rewards = Rows([[0.0f, -0.1f, 2.0f, 0.7f], [0.5f, 0.2f, -0.3f, -1.5f]]);
        int[] mask = [1, 1, 1, 0, 0, 1, 1, 1];
        var masks = Rows([[1f, 1f, 1f, 0f], [0f, 1f, 1f, 1f]]);
        var (maskedValues, advantages, returns) = PpoMath.ComputeAdvantages(values, rewards, masks, gamma: 1.0, lam: 0.95, whitenRewards);
        AssertValues([0.3, -0.4, 0.8, 0.0, 0.0, 0.6, -0.2, 0.5], maskedValues, 1e-6, "masked values");
        AssertMaskedValues(expectedReturns, returns, mask, 1e-5, "returns");
        AssertMaskedValues(expectedAdvantages, advantages, mask, 1e-5, "advantages");
    }

    // ---------------------------------------------------------------- 4. masked statistics

    [Fact]
    public void MaskedVarIsBesselCorrectedOverTheMaskedValues()
    {
        using var scope = NewDisposeScope();
        // [1, 2, 4] (100 masked out): mean 7/3, squared deviations 16/9 + 1/9 + 25/9 = 42/9, / (3 − 1) = 7/3
        var variance = PpoMath.MaskedVar(Row(1f, 2f, 4f, 100f), Row(1f, 1f, 1f, 0f));
        Assert.Equal(7.0 / 3, variance.item<float>(), 5);
        // over a 2-D mask, all rows together: [1, 2] ∪ [4] is the same set
        var twoRows = PpoMath.MaskedVar(Rows([[1f, 2f, 9f], [-5f, 4f, 7f]]), Rows([[1f, 1f, 0f], [0f, 1f, 0f]]));
        Assert.Equal(7.0 / 3, twoRows.item<float>(), 5);
    }

    [Fact]
    public void MaskedVarOfExactlyOneMaskedTokenIsNanAsTrlsZeroTimesOneOverZero()
    {
        using var scope = NewDisposeScope();
        var variance = PpoMath.MaskedVar(Row(3f, 5f, 8f), Row(0f, 1f, 0f));
        Assert.True(float.IsNaN(variance.item<float>()), $"expected NaN, got {variance.item<float>()}");
    }

    [Fact]
    public void MaskedVarOverNoMaskedTokenThrows()
    {
        using var scope = NewDisposeScope();
        Assert.Throws<InvalidOperationException>(() => PpoMath.MaskedVar(Row(3f, 5f, 8f), Row(0f, 0f, 0f)));
    }

    [Fact]
    public void MaskedWhitenWithoutShiftMeanAddsTheMaskedMeanBack()
    {
        using var scope = NewDisposeScope();
        var values = Row(1f, 2f, 4f, 100f);
        var mask = Row(1f, 1f, 1f, 0f);
        // (x − 7/3)/sqrt(7/3 + 1e-8), then + 7/3 when shift_mean is false (Python, every position)
        AssertValues([-0.8728715590735306, -0.21821788976838274, 1.0910894488419132, 63.93784170213612],
            PpoMath.MaskedWhiten(values, mask), 1e-4, "whitened");
        AssertValues([1.460461774259803, 2.115115443564951, 3.4244227821752466, 66.27117503546945],
            PpoMath.MaskedWhiten(values, mask, shiftMean: false), 1e-4, "whitened, mean kept");
    }

    // ---------------------------------------------------------------- 5. loss

    /// <summary>
    /// One row, four positions, the last masked out (its numbers would change every result).
    /// Ratios exp(logp − old logp) = [1.5, 0.5, 1.1 | 3]; advantages [1, 1, −2 | 5];
    /// old values [0, 1, 2 | 0], predictions [0.5, 1.1, 1.0 | 9], returns [1, 0, 1.5 | 0].
    /// </summary>
    static PpoMath.LossResult HandMadeLoss(PpoConfig config)
    {
        var oldLogProbs = Row(-1.0f, -2.0f, -0.5f, -1.0f);
        var logProbs = oldLogProbs + Row(MathF.Log(1.5f), MathF.Log(0.5f), MathF.Log(1.1f), MathF.Log(3f));
        var logits = zeros(1, 4, 2);   // two equally likely tokens: entropy ln 2 everywhere
        return PpoMath.Loss(oldLogProbs, Row(0f, 1f, 2f, 0f), logits, Row(0.5f, 1.1f, 1.0f, 9f), logProbs,
            Row(1f, 1f, 1f, 0f), Row(1f, 1f, -2f, 5f), Row(1f, 0f, 1.5f, 0f), config);
    }

    [Fact]
    public void ClippedPolicyLossAndClippedValueLossWeightedByVfCoef()
    {
        using var scope = NewDisposeScope();
        var result = HandMadeLoss(new PpoConfig { ClipRange = 0.2, ClipRangeValue = 0.2, VfCoef = 0.1, RatioThreshold = 10 });
        // By hand. Policy: −A·r = [−1.5, −0.5, 2.2]; with r clipped to [0.8, 1.2]: [−1.2, −0.8, 2.2];
        // max = [−1.2, −0.5, 2.2], mean 0.5/3 = 1/6; clipped (pg2 > pg1) at the first only: 1/3.
        // Value: clipped predictions [0.2, 1.1, 1.8]; squared errors [0.25, 1.21, 0.25] and
        // [0.64, 1.21, 0.09]; max [0.64, 1.21, 0.25], ½ mean = ½·0.7 = 0.35; clipped at the first only: 1/3.
        // Total = 1/6 + 0.1·0.35 = 0.2016667.
        Assert.Equal(1.0 / 6, result.PolicyLoss.item<float>(), 5);
        Assert.Equal(0.1 * 0.35, result.ValueLoss.item<float>(), 5);   // the returned value loss carries vf_coef (trl loss_v)
        Assert.Equal(1.0 / 6 + 0.035, result.Total.item<float>(), 5);
        var s = result.Stats;
        Assert.False(s.Skipped);
        Assert.Equal(1.0 / 6, s.PolicyLoss, 5);
        Assert.Equal(0.35, s.ValueLoss, 5);                             // the statistic does not (trl loss/value)
        Assert.Equal(1.0 / 6 + 0.035, s.TotalLoss, 5);
        Assert.Equal(1.0 / 3, s.PolicyClipFrac, 5);
        Assert.Equal(1.0 / 3, s.ValueClipFrac, 5);
        // mean ratio (1.5 + 0.5 + 1.1)/3; approx KL ½·mean(ln²r) and policy KL mean(−ln r) (Python)
        Assert.Equal(1.0333333333333334, s.AverageRatio, 5);
        Assert.Equal(0.10898983303094993, s.ApproxKl, 5);
        Assert.Equal(0.06412396421581866, s.PolicyKl, 5);
        Assert.Equal(Math.Log(2), s.Entropy, 5);
        Assert.Equal(0.0, s.AdvantagesMean, 5);                          // (1 + 1 − 2)/3
        Assert.Equal(2.5 / 3, s.ReturnsMean, 5);
        Assert.Equal(0.5833333333333334, s.ReturnsVar, 5);              // Bessel variance of [1, 0, 1.5]
        Assert.Equal(1.0, s.ValuesMean, 5);
        Assert.Equal(1.0, s.ValuesVar, 5);                               // of [0, 1, 2]
        Assert.Equal(2.6 / 3, s.ValuePrediction, 5);
        Assert.Equal(1.71 / 3, s.ValueError, 5);                         // mean of [0.25, 1.21, 0.25]
    }

    [Fact]
    public void MiniBatchWhoseMeanRatioExceedsTheRatioThresholdIsSkippedWithZeroLoss()
    {
        using var scope = NewDisposeScope();
        // mean ratio 31/30 ≈ 1.0333 > 1.02: skipped
        var skipped = HandMadeLoss(new PpoConfig { RatioThreshold = 1.02 });
        Assert.True(skipped.Stats.Skipped);
        Assert.Equal(0.0, skipped.PolicyLoss.item<float>());
        Assert.Equal(0.0, skipped.ValueLoss.item<float>());
        Assert.Equal(0.0, skipped.Total.item<float>());
        Assert.Equal((0.0, 0.0, 0.0), (skipped.Stats.PolicyLoss, skipped.Stats.ValueLoss, skipped.Stats.TotalLoss));
        Assert.Equal(1.0333333333333334, skipped.Stats.AverageRatio, 5);   // the diagnostics are still reported
        Assert.Equal(1.0 / 3, skipped.Stats.PolicyClipFrac, 5);
        // 1.0333 ≤ 1.05: kept
        var kept = HandMadeLoss(new PpoConfig { RatioThreshold = 1.05 });
        Assert.False(kept.Stats.Skipped);
        Assert.Equal(1.0 / 6 + 0.035, kept.Total.item<float>(), 5);
    }

    // ---------------------------------------------------------------- 6. KL controllers

    [Fact]
    public void AdaptiveKlControllerMultipliesByOnePlusTheClippedProportionalErrorTimesStepsOverHorizon()
    {
        var kl = new KlController(0.2, adaptive: true, target: 6, horizon: 10000);
        // by hand: kl 9 → error clip(0.5) = 0.2 → ×(1 + 0.2·256/10000) = ×1.00512 → 0.201024
        kl.Update(9.0, 256);
        Assert.Equal(0.201024, kl.Value, 12);
        // kl 3 → error clip(−0.5) = −0.2 → ×0.99488 (Python: 0.19999475712)
        kl.Update(3.0, 256);
        Assert.Equal(0.19999475712, kl.Value, 12);
        // kl 6.6 → error 0.1 inside the clip → ×1.00256 (Python: 0.20050674369822719)
        kl.Update(6.6, 256);
        Assert.Equal(0.20050674369822719, kl.Value, 12);
    }

    [Fact]
    public void FixedKlControllerNeverChanges()
    {
        var kl = new KlController(0.2, adaptive: false, target: 6, horizon: 10000);
        foreach (var current in new[] { 9.0, 3.0, 0.0, 1e6 }) kl.Update(current, 256);
        Assert.Equal(0.2, kl.Value);
    }

    [Theory]
    // The policy starts as the reference, so objective/kl = 0 and the error is clip(0/6 − 1) = −0.2:
    // 0.2·(1 − 0.2·4/10000) = 0.199984 (trl passes config.batch_size, 4 here). Fixed: 0.2.
    [InlineData(true, 0.199984)]
    [InlineData(false, 0.2)]
    public void TrainerUpdatesTheKlCoefficientOnlyWhenAdaptive(bool adaptive, double expectedAfter)
    {
        using var setup = new TinySetup(new PpoConfig { BatchSize = 4, MiniBatchSize = 4, PpoEpochs = 1, AdaptiveKlControl = adaptive, InitKlCoef = 0.2 });
        var result = setup.Trainer.Step(Queries, Responses, [1.0, 0.0, 0.5, -1.0]);
        Assert.Equal(0.0, result.Stats["objective/kl"], 6);
        Assert.Equal(0.2, result.KlCoefBefore);
        Assert.Equal(expectedAfter, result.KlCoefAfter, 12);
        Assert.Equal(expectedAfter, setup.Trainer.Kl.Value, 12);
    }

    // ---------------------------------------------------------------- 7. score scaling, normalisation, clipping

    static readonly int[][] Queries = [[1, 17, 42], [1, 88], [1, 5, 9, 300], [1, 64, 2]];
    static readonly int[][] Responses = [[23, 99, 7], [401, 3, 56, 12], [77, 8], [150, 151, 152]];

    /// <summary>
    /// Two steps with raw scores [1, 2, 3, 10] then [0, 0, 5, 5]. Expected ppo/mean_scores and
    /// ppo/std_scores from a Python transcription of trl 0.8.6: RunningMoments (mean 0, var 1,
    /// count 1e-24; var_mean(unbiased=False) of the batch merged by Chan's formula; std =
    /// sqrt(var·n/(n − 1))), factor = running std + 1.1920928955078125e-07, norm subtracts the running
    /// mean first, then clip. After both steps the running mean is 3.25 and std 3.370036032024414
    /// (the plain mean and sample std of all eight scores).
    /// </summary>
    [Theory]
    [InlineData(true, false, null, 0.9797958685030426, 0.9999999707998075, 0.7418318047077327, 0.8565935842828707)]
    [InlineData(true, true, null, 0.0, 0.9999999707998076, -0.22254954141231978, 0.8565935842828707)]
    [InlineData(true, false, 1.0, 0.6174234506886409, 0.32411576177995566, 0.5, 0.5773502691896257)]
    // scaling, norm and clip 0.8: step 1 (x − 4)/4.0825 = [−0.735, −0.490, −0.245, 1.470 → 0.8];
    // step 2 (x − 3.25)/3.3700 = [−0.964 → −0.8, −0.8, 0.519, 0.519] (Python for the digits)
    [InlineData(true, true, 0.8, -0.167423450688641, 0.6752474863785648, -0.14035886835229353, 0.7616879698507055)]
    // clip alone (no scaling): [1, 2, 3, 10] → [1, 1, 1, 1]; [0, 0, 5, 5] → [0, 0, 1, 1] (by hand)
    [InlineData(false, false, 1.0, 1.0, 0.0, 0.5, 0.5773502691896257)]
    // no option: the raw scores (by hand: means 4 and 2.5, sample stds sqrt(50/3) and sqrt(25/3))
    [InlineData(false, false, null, 4.0, 4.08248290463863, 2.5, 2.886751345948129)]
    public void ScoreScalingNormAndClipChangeTheTrainedScoresButNotTheReportedRawRewards(
        bool scaling, bool norm, double? clip, double mean1, double std1, double mean2, double std2)
    {
        using var setup = new TinySetup(new PpoConfig
        {
            BatchSize = 4, MiniBatchSize = 4, PpoEpochs = 1, UseScoreScaling = scaling, UseScoreNorm = norm, ScoreClip = clip,
        });
        double[] raw1 = [1, 2, 3, 10], raw2 = [0, 0, 5, 5];
        double lastScore1 = double.NaN;
        var first = setup.Trainer.Step(Queries, Responses, raw1, batch =>
        {
            // the trained score is the reward at row 3's last response token (KL is 0 at the first step)
            var rewards = batch.Rewards[3];
            var masks = batch.Masks[3];
            long last = (arange(masks.shape[0]) * masks).argmax().item<long>();
            lastScore1 = rewards[last].item<float>();
        });
        var second = setup.Trainer.Step(Queries, Responses, raw2);

        Assert.Equal(mean1, first.Stats["ppo/mean_scores"], 6);
        Assert.Equal(std1, first.Stats["ppo/std_scores"], 6);
        Assert.Equal(mean2, second.Stats["ppo/mean_scores"], 6);
        Assert.Equal(std2, second.Stats["ppo/std_scores"], 6);
        // env/reward_* stay those of the raw scores
        Assert.Equal(4.0, first.Stats["env/reward_mean"], 12);
        Assert.Equal(Math.Sqrt(50.0 / 3), first.Stats["env/reward_std"], 12);
        Assert.Equal(2.5, second.Stats["env/reward_mean"], 12);
        Assert.Equal(Math.Sqrt(25.0 / 3), second.Stats["env/reward_std"], 12);
        // the scaled score is what enters the rewards: score 10 in step 1 becomes
        // 10/4.0825 = 2.449 (scaling), (10 − 4)/4.0825 = 1.470 (norm), or is clipped
        double std = Math.Sqrt(50.0 / 3) + 1.1920928955078125e-07;
        double expectedLast = !scaling ? 10 : norm ? 6 / std : 10 / std;
        if (clip is double c) expectedLast = Math.Min(expectedLast, c);
        Assert.Equal(expectedLast, lastScore1, 4);
    }

    // ---------------------------------------------------------------- 8. early stopping, max_grad_norm

    [Theory]
    // target_kl 1e-6 with early stopping: stop after the first epoch's 2 mini-batches instead of 4 × 2
    [InlineData(true, 1e-6, 2, 1)]
    // a target that is never reached, or early stopping off: all 8 mini-batches
    [InlineData(true, 1e6, 8, 0)]
    [InlineData(false, 1e-6, 8, 0)]
    public void EarlyStoppingOnTargetKlEndsTheStepAfterTheFirstEpoch(bool earlyStopping, double targetKl, int expectedMiniBatches, int expectedFlag)
    {
        // Two copies of one sample, scored −10 and +10, in the order [0, 1], one per mini-batch: the
        // first update lowers the response's log-probs (its advantages are all negative), so the
        // second mini-batch, the same tokens, sees policy KL mean(old − new) > 0.
        using var setup = new TinySetup(new PpoConfig
        {
            BatchSize = 2, MiniBatchSize = 1, PpoEpochs = 4, LearningRate = 1e-3, EarlyStopping = earlyStopping, TargetKl = targetKl,
        });
        setup.Trainer.Permutation = _ => [0, 1];
        var result = setup.Trainer.Step([[1, 17, 42], [1, 17, 42]], [[23, 99, 7], [23, 99, 7]], [-10.0, 10.0]);

        double firstEpochKl = result.MiniBatches[1].Stats.PolicyKl;
        Assert.True(firstEpochKl > 1.5e-6, $"premise: the first epoch's last policy KL {firstEpochKl} should exceed 1.5 × 1e-6");
        Assert.True(result.MiniBatches[0].Stats.PolicyKl is > -1e-6 and < 1e-6, "the first mini-batch sees the policy before any update");
        Assert.Equal(expectedMiniBatches, result.MiniBatches.Count);
        Assert.Equal(expectedFlag, result.Stats["ppo/early_stopped"]);
        Assert.Equal(expectedFlag == 1, result.EarlyStopped);
    }

    [Fact]
    public void MaxGradNormBoundsTheParameterChangeOfAnUpdate()
    {
        // One Adam step (one epoch, one mini-batch) moves each parameter by lr·g/(|g| + eps) (bias
        // corrections cancel on the first step), so ‖Δθ‖ ≤ lr·‖g‖/eps ≤ lr·max_grad_norm/eps once
        // the gradient is clipped: 1e-2·1e-10/1e-8 = 1e-4 (×2 for float32 rounding of the weights).
        // Unclipped, every parameter with a real gradient moves by about lr = 1e-2.
        const double lr = 1e-2, maxNorm = 1e-10, eps = 1e-8;
        double bound = 2 * lr * maxNorm / eps;
        double Change(double? maxGradNorm)
        {
            using var setup = new TinySetup(new PpoConfig
            {
                BatchSize = 4, MiniBatchSize = 4, PpoEpochs = 1, LearningRate = lr, AdamEps = eps, MaxGradNorm = maxGradNorm,
            });
            var before = setup.Policy.parameters().Select(p => p.detach().clone()).ToList();
            setup.Trainer.Step(Queries, Responses, [1.0, -2.0, 0.5, 3.0]);
            using var scope = NewDisposeScope();
            double squares = setup.Policy.parameters().Zip(before, (p, b) => (p.detach() - b).to(ScalarType.Float64).square().sum().item<double>()).Sum();
            foreach (var b in before) b.Dispose();
            return Math.Sqrt(squares);
        }
        double clipped = Change(maxNorm), free = Change(null);
        Assert.True(clipped <= bound, $"with max_grad_norm {maxNorm} the policy moved by {clipped:E3}, more than {bound:E1}");
        Assert.True(free > 100 * bound, $"without max_grad_norm the policy moved by only {free:E3}");
    }

    // ---------------------------------------------------------------- 9. too few response tokens

    [Fact]
    public void StepRefusesABatchWithFewerResponseTokensThanMinResponseTokens()
    {
        Assert.Equal(2, PpoTrainer.MinResponseTokens);
        using var setup = new TinySetup(new PpoConfig { BatchSize = 4, MiniBatchSize = 4, PpoEpochs = 1 });
        var error = Assert.Throws<ArgumentException>(() => setup.Trainer.Step([[1, 17, 42]], [[23]], [1.0]));
        Assert.Contains("response tokens", error.Message);
        // exactly MinResponseTokens in all (two one-token responses) is accepted
        var result = setup.Trainer.Step([[1, 17, 42], [1, 88]], [[23], [401]], [1.0, 0.0]);
        Assert.Single(result.MiniBatches);
    }

    /// <summary>tiny-llama as policy and (separately loaded) reference, a zero value head (so the values are 0 and the value loss sends no gradient into the trunk), and a trainer.</summary>
    sealed class TinySetup : IDisposable
    {
        public CausalLM Policy { get; }
        public CausalLM Reference { get; }
        public ValueHead Head { get; }
        public PpoTrainer Trainer { get; }

        public TinySetup(PpoConfig config)
        {
            Policy = Checkpoint.LoadModel(TinyLlama);
            Reference = Checkpoint.LoadModel(TinyLlama);
            Head = new ValueHead(Policy.Config.HiddenSize, 0);
            using (no_grad())
                foreach (var p in Head.parameters()) p.zero_();
            Trainer = new PpoTrainer(Policy, Head, Reference, config, padId: Policy.Config.PadTokenId ?? 0);
        }

        public void Dispose()
        {
            Trainer.Dispose();
            Head.Dispose();
            Reference.Dispose();
            Policy.Dispose();
        }
    }
}
