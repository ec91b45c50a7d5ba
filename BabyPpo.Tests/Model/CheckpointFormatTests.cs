using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;
using BabyPpo.Tests.Cli;
using BabyPpo.Training;
using BabyPpo.Training.Model;
using static TorchSharp.torch;

namespace BabyPpo.Tests.Model;

/// <summary>
/// The forms a hub checkpoint may come in: the newer rope_parameters config, half-precision
/// weights (F16, BF16), and weights of a dtype that is no float, which must be refused.
/// </summary>
public sealed class CheckpointFormatTests
{
    static readonly string TinyLlama = SharedData.Fixture("models", "tiny-llama");

    [Fact]
    public void RopeParametersConfigGivesTheFixtureLogits()
    {
        var fixture = SharedData.Fixture("models", "tiny-llama3-rope");
        using var folder = TempModel.CopyOf(fixture);
        var config = Path.Combine(folder.Path, "config.json");
        var json = LlamaConfigTests.ToRopeParameters(JsonNode.Parse(File.ReadAllText(config))!.AsObject());
        File.WriteAllText(config, json.ToJsonString());

        using var model = Checkpoint.LoadModel(folder.Path);
        using var expected = TensorAssert.ExpectedTensors(fixture);
        using var noGrad = no_grad();
        using var _ = NewDisposeScope();
        var logits = model.forward(expected["input_ids"].unsqueeze(0))[0];
        TensorAssert.AssertClose(expected["logits"], logits, "tiny-llama3-rope with rope_parameters", 1e-4);
    }

    /// <summary>
    /// tiny-llama's weights rounded to a 16-bit float and written with the project's writer. The
    /// loaded weights must be exactly the rounded values (TorchSharp's round-to-nearest-even, read
    /// back as float32), and the logits close to the float32 fixture. Tolerance: rounding changes
    /// every weight by a relative error of at most the unit roundoff u (2⁻⁸ for BF16's 8
    /// significant bits, 2⁻¹¹ for F16's 11). To first order these errors add up along the
    /// matrices a logit passes through: 3 layers × 7 projections + the embedding, used twice (it
    /// is also the tied head) = 23, each contributing at most u relative to the logits' scale
    /// (RMSNorm keeps activations at unit scale between layers). So |Δlogit| ≤ 23 · u · max|logit|.
    /// </summary>
    [Theory]
    [InlineData(ScalarType.BFloat16, "BF16", 8)]
    [InlineData(ScalarType.Float16, "F16", 11)]
    public void HalfPrecisionWeightsLoadAsTheirExactValuesAndGiveCloseLogits(ScalarType dtype, string name, int significantBits)
    {
        using var folder = TempModel.CopyOf(TinyLlama);
        var weights = Path.Combine(folder.Path, Checkpoint.WeightsFile);
        var original = SafeTensors.Load(weights);
        var rounded = new Dictionary<string, Tensor>();
        try
        {
            var half = original.ToDictionary(kv => kv.Key, kv => kv.Value.to(dtype));
            SafeTensors.Save(weights, half);
            foreach (var (key, t) in half)
            {
                rounded[key] = t.to(ScalarType.Float32);
                t.Dispose();
            }
            Assert.All(SafeTensors.ReadHeader(weights, out _), e => Assert.Equal(name, e.DType));

            using var model = Checkpoint.LoadModel(folder.Path);
            foreach (var (key, parameter) in model.state_dict())
                Assert.True(parameter.data<float>().ToArray().SequenceEqual(rounded[key].data<float>().ToArray()), $"{key} is not the {name} rounding of the fixture weight");

            using var expected = TensorAssert.ExpectedTensors(TinyLlama);
            using var noGrad = no_grad();
            double u = Math.Pow(2, -significantBits);
            for (int i = 0; i < 6; i++)
            {
                using var _ = NewDisposeScope();
                var reference = expected[$"logits_{i}"];
                double tolerance = 23 * u * reference.abs().max().item<float>();
                var logits = model.forward(expected[$"ids_{i}"].unsqueeze(0))[0];
                TensorAssert.AssertClose(reference, logits, $"{name} weights, sentence {i}", tolerance);
            }
        }
        finally
        {
            foreach (var t in original.Values.Concat(rounded.Values)) t.Dispose();
        }
    }

    [Fact]
    public void HalfPrecisionTensorsAreWrittenAsTheirIeeeBitPatterns()
    {
        // 1 = 0x3C00, −2 = 0xC000, 65504 (largest F16) = 0x7BFF; BF16 is the top half of float32: 1 = 0x3F80, −2 = 0xC000, 0.5 = 0x3F00.
        using var temp = new TempFolder();
        var path = Path.Combine(temp.Path, "half.safetensors");
        using (var f16 = tensor(new float[] { 1, -2, 65504 }).to(ScalarType.Float16))
        using (var bf16 = tensor(new float[] { 1, -2, 0.5f }).to(ScalarType.BFloat16))
            SafeTensors.Save(path, new Dictionary<string, Tensor> { ["a"] = f16, ["b"] = bf16 });
        var entries = SafeTensors.ReadHeader(path, out long dataStart).ToDictionary(e => e.Name);
        var bytes = File.ReadAllBytes(path);
        ushort[] Halves(SafeTensors.Entry e) => Enumerable.Range(0, 3)
            .Select(k => BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan((int)(dataStart + e.Begin + 2 * k)))).ToArray();
        Assert.Equal("F16", entries["a"].DType);
        Assert.Equal([0x3C00, 0xC000, 0x7BFF], Halves(entries["a"]));
        Assert.Equal("BF16", entries["b"].DType);
        Assert.Equal([0x3F80, 0xC000, 0x3F00], Halves(entries["b"]));
    }

    [Theory]
    [InlineData("I32", 4)]
    [InlineData("I64", 8)]
    [InlineData("U8", 1)]
    [InlineData("BOOL", 1)]
    public void WeightOfANonFloatDtypeIsRefusedNamingFileTensorAndDtype(string dtype, int size)
    {
        using var folder = TempModel.CopyOf(TinyLlama);
        var weights = Path.Combine(folder.Path, Checkpoint.WeightsFile);
        var entries = SafeTensors.ReadHeader(weights, out long dataStart);
        var bytes = File.ReadAllBytes(weights);
        // The same tensors, with model.norm.weight (64 values) rewritten as `dtype` ones.
        var tensors = entries.Select(e => e.Name == "model.norm.weight"
            ? (e.Name, dtype, e.Shape, new byte[64 * size])
            : (e.Name, e.DType, e.Shape, bytes[(int)(dataStart + e.Begin)..(int)(dataStart + e.End)])).ToList();
        WriteSafetensors(weights, tensors);

        var error = Assert.Throws<InputException>(() => Checkpoint.LoadModel(folder.Path));
        Assert.StartsWith(weights + ": ", error.Message);
        Assert.Contains("'model.norm.weight'", error.Message);
        Assert.Contains(dtype, error.Message);
        Assert.Contains("F32, F16 or BF16", error.Message);
    }

    /// <summary>A safetensors file written by hand from the format's description (independent of SafeTensors.Save).</summary>
    static void WriteSafetensors(string path, IEnumerable<(string Name, string DType, long[] Shape, byte[] Data)> tensors)
    {
        var header = new JsonObject();
        var data = new MemoryStream();
        foreach (var (name, dtype, shape, bytes) in tensors)
        {
            header[name] = new JsonObject
            {
                ["dtype"] = dtype,
                ["shape"] = new JsonArray(shape.Select(d => (JsonNode?)d).ToArray()),
                ["data_offsets"] = new JsonArray(data.Length, data.Length + bytes.Length),
            };
            data.Write(bytes);
        }
        var headerBytes = Encoding.UTF8.GetBytes(header.ToJsonString());
        using var file = File.Create(path);
        var length = new byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(length, headerBytes.Length);
        file.Write(length);
        file.Write(headerBytes);
        file.Write(data.ToArray());
    }
}
