using static TorchSharp.torch;

namespace BabyPpo.Tests.Inference;

public sealed class SamplerTests
{
    [Fact]
    public void RowsAreSampledWithTheirProbabilitiesAndNeverWhereTheProbabilityIsZero()
    {
        // 20,000 draws of each row; the standard error of a frequency is at most 0.0036, so ±0.015 is over 4 σ.
        double[] p = [0.1, 0.0, 0.6, 0.3];
        using var scope = NewDisposeScope();
        var probs = tensor(p.Select(x => (float)x).ToArray()).unsqueeze(0).expand(20_000, 4).contiguous();
        using var rng = new TorchSharp.torch.Generator(42);
        var draws = BabyPpo.Training.Inference.Generator.SampleRows(probs, rng).data<long>().ToArray();
        for (int k = 0; k < p.Length; k++)
        {
            double frequency = draws.Count(d => d == k) / (double)draws.Length;
            Assert.True(Math.Abs(frequency - p[k]) < 0.015, $"token {k}: frequency {frequency:F4}, probability {p[k]}");
        }
        Assert.DoesNotContain(1L, draws);
    }

    [Fact]
    public void SameSeedGivesTheSameDraws()
    {
        using var scope = NewDisposeScope();
        var probs = rand(64, 1000).softmax(-1);
        using var a = new TorchSharp.torch.Generator(7);
        using var b = new TorchSharp.torch.Generator(7);
        Assert.Equal(BabyPpo.Training.Inference.Generator.SampleRows(probs, a).data<long>().ToArray(), BabyPpo.Training.Inference.Generator.SampleRows(probs, b).data<long>().ToArray());
    }
}
