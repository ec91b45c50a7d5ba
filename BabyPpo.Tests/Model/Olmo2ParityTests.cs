using BabyPpo.Training.Model;
using static TorchSharp.torch;

namespace BabyPpo.Tests.Model;

/// <summary>The OLMo-2 (judge) forward pass against HF transformers' Olmo2ForCausalLM.</summary>
public sealed class Olmo2ParityTests
{
    [Fact]
    public void Olmo2LogitsMatchHuggingFace()
    {
        var folder = SharedData.Fixture("models", "tiny-olmo2");
        using var model = Checkpoint.LoadModel(folder);
        Assert.True(model.Config.IsOlmo2);
        using var expected = TensorAssert.ExpectedTensors(folder);
        using var noGrad = no_grad();
        using var _ = NewDisposeScope();
        var logits = model.forward(expected["input_ids"].unsqueeze(0))[0];
        TensorAssert.AssertClose(expected["logits"], logits, "tiny-olmo2");
    }

    [Fact]
    public void Olmo2LeftPaddedRowMatchesItsUnpaddedRun()
    {
        var folder = SharedData.Fixture("models", "tiny-olmo2");
        using var model = Checkpoint.LoadModel(folder);
        using var expected = TensorAssert.ExpectedTensors(folder);
        using var noGrad = no_grad();
        using var _ = NewDisposeScope();
        var ids = expected["input_ids"];
        long t = ids.shape[0];
        var padded = cat([zeros(3, ScalarType.Int64), ids]).unsqueeze(0);
        var mask = cat([zeros(3, ScalarType.Int64), ones(t, ScalarType.Int64)]).unsqueeze(0);
        var logits = model.forward(padded, mask)[0].narrow(0, 3, t);
        TensorAssert.AssertClose(expected["logits"], logits, "tiny-olmo2, left-padded");
    }
}
