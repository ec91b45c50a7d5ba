using System.Text.Json.Nodes;
using BabyPpo.Training.Model;
using static TorchSharp.torch;

namespace BabyPpo.Tests.Model;

/// <summary>The Llama forward pass against logits computed by HF transformers (../shared/fixtures/models).</summary>
public sealed class LlamaParityTests
{
    static readonly string TinyLlama = SharedData.Fixture("models", "tiny-llama");

    [Fact]
    public void EachSentenceAloneMatchesHuggingFaceLogits()
    {
        using var model = Checkpoint.LoadModel(TinyLlama);
        using var expected = TensorAssert.ExpectedTensors(TinyLlama);
        using var noGrad = no_grad();
        for (int i = 0; i < 6; i++)
        {
            using var _ = NewDisposeScope();
            var ids = expected[$"ids_{i}"].unsqueeze(0);
            var logits = model.forward(ids)[0];
            TensorAssert.AssertClose(expected[$"logits_{i}"], logits, $"sentence {i}");
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void PaddedBatchMatchesUnpaddedRunsAtRealPositions(bool leftPadding)
    {
        using var model = Checkpoint.LoadModel(TinyLlama);
        using var expected = TensorAssert.ExpectedTensors(TinyLlama);
        using var noGrad = no_grad();
        using var _ = NewDisposeScope();
        var rows = Enumerable.Range(0, 6).Select(i => expected[$"ids_{i}"].data<long>().ToArray()).ToList();
        int width = rows.Max(r => r.Length);
        var ids = new long[6, width];
        var mask = new long[6, width];
        for (int i = 0; i < 6; i++)
        {
            int offset = leftPadding ? width - rows[i].Length : 0;
            for (int j = 0; j < rows[i].Length; j++)
            {
                ids[i, offset + j] = rows[i][j];
                mask[i, offset + j] = 1;
            }
        }
        var logits = model.forward(tensor(ids), tensor(mask));
        for (int i = 0; i < 6; i++)
        {
            int offset = leftPadding ? width - rows[i].Length : 0;
            TensorAssert.AssertClose(expected[$"logits_{i}"], logits[i].narrow(0, offset, rows[i].Length), $"row {i} ({(leftPadding ? "left" : "right")} padding)");
        }
    }

    [Fact]
    public void SummedLogProbabilitiesMatchTheFixture()
    {
        using var model = Checkpoint.LoadModel(TinyLlama);
        var sentences = JsonNode.Parse(File.ReadAllText(Path.Combine(TinyLlama, "expected.json")))!["sentences"]!.AsArray();
        using var noGrad = no_grad();
        foreach (var sentence in sentences)
        {
            using var _ = NewDisposeScope();
            var ids = sentence!["ids"]!.AsArray().Select(x => x!.GetValue<long>()).ToArray();
            var logProbs = model.forward(tensor(ids).unsqueeze(0))[0].log_softmax(-1);              // (T, V)
            var next = tensor(ids[1..]).unsqueeze(1);                                                // (T-1, 1)
            double sum = logProbs.narrow(0, 0, ids.Length - 1).gather(1, next).sum().to(ScalarType.Float64).item<double>();
            Assert.Equal(sentence["logprob_sum_after_first"]!.GetValue<double>(), sum, 1e-3);
        }
    }

    [Fact]
    public void Llama3RopeScalingMatchesHuggingFaceBeyondTheOriginalContext()
    {
        var folder = SharedData.Fixture("models", "tiny-llama3-rope");
        using var model = Checkpoint.LoadModel(folder);
        Assert.NotNull(model.Config.RopeScaling);
        using var expected = TensorAssert.ExpectedTensors(folder);
        using var noGrad = no_grad();
        using var _ = NewDisposeScope();
        var logits = model.forward(expected["input_ids"].unsqueeze(0))[0];
        TensorAssert.AssertClose(expected["logits"], logits, "150-token input");
    }

    [Fact]
    public void SaveThenLoadIsBitExact()
    {
        var folder = Path.Combine(Path.GetTempPath(), "babyppo-roundtrip-" + Guid.NewGuid().ToString("N"));
        try
        {
            using var original = Checkpoint.LoadModel(TinyLlama);
            Checkpoint.SaveModel(original, folder);
            using var reloaded = Checkpoint.LoadModel(folder);
            Assert.Equal(original.Config, reloaded.Config);
            var a = original.state_dict();
            var b = reloaded.state_dict();
            Assert.Equal(a.Keys.Order(), b.Keys.Order());
            foreach (var key in a.Keys)
                Assert.True(a[key].data<float>().ToArray().SequenceEqual(b[key].data<float>().ToArray()), $"{key} changed in the round trip");
            Assert.DoesNotContain("lm_head.weight", SafeTensors.ReadHeader(Path.Combine(folder, Checkpoint.WeightsFile), out _).Select(e => e.Name));
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
    }
}
