using BabyPpo.Training.Model;
using static TorchSharp.torch;

namespace BabyPpo.Tests;

/// <summary>Reading fixture tensors and comparing tensors with a tolerance.</summary>
public static class TensorAssert
{
    /// <summary>The tensors of a fixture folder's safetensors file.</summary>
    public static DisposableTensors ExpectedTensors(string folder, string file = "expected.safetensors") => new(SafeTensors.Load(Path.Combine(folder, file)));

    /// <summary>Same shape and every element within <paramref name="tolerance"/> (absolute).</summary>
    public static void AssertClose(Tensor expected, Tensor actual, string what, double tolerance = 1e-4)
    {
        Assert.Equal(expected.shape, actual.shape);
        double worst = (expected - actual).abs().max().item<float>();
        Assert.True(worst <= tolerance, $"{what}: largest absolute difference {worst:E3} exceeds {tolerance:E1}");
    }
}

/// <summary>A dictionary of tensors that disposes them all.</summary>
public sealed class DisposableTensors(Dictionary<string, Tensor> tensors) : IDisposable
{
    public Tensor this[string name] => tensors[name];

    public void Dispose()
    {
        foreach (var t in tensors.Values) t.Dispose();
    }
}
