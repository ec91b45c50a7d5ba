using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp;
using static TorchSharp.torch;

namespace BabyPpo.Training.Model;

/// <summary>
/// The safetensors format, read and written without any dependency: an 8-byte little-endian
/// header length, a JSON header <c>{"name": {"dtype", "shape", "data_offsets": [begin, end]}, …,
/// "__metadata__": {…}}</c>, then the raw little-endian tensor data. Reading converts F16 and BF16
/// to F32 (the dtype every model here computes in); writing keeps F32, F16, BF16 and I64 bit for bit.
/// </summary>
public static class SafeTensors
{
    /// <summary>Reads every tensor of a file into new CPU tensors (the caller owns them).</summary>
    public static Dictionary<string, Tensor> Load(string path)
    {
        var entries = ReadHeader(path, out long dataStart);
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        using var file = File.OpenRead(path);
        try
        {
            foreach (var entry in entries)
            {
                var bytes = new byte[entry.End - entry.Begin];
                file.Position = dataStart + entry.Begin;
                file.ReadExactly(bytes);
                tensors[entry.Name] = ToTensor(path, entry, bytes);
            }
        }
        catch
        {
            foreach (var t in tensors.Values) t.Dispose();
            throw;
        }
        return tensors;
    }

    /// <summary>One tensor's description in the header.</summary>
    public sealed record Entry(string Name, string DType, long[] Shape, long Begin, long End);

    /// <summary>Parses and validates the header; <paramref name="dataStart"/> is where tensor bytes begin.</summary>
    public static List<Entry> ReadHeader(string path, out long dataStart)
    {
        if (!File.Exists(path)) throw InputException.At(path, "file not found");
        using var file = File.OpenRead(path);
        long fileLength = file.Length;
        if (fileLength < 8) throw InputException.At(path, $"truncated safetensors file ({fileLength} bytes, no header)");
        Span<byte> lengthBytes = stackalloc byte[8];
        file.ReadExactly(lengthBytes);
        long headerLength = BinaryPrimitives.ReadInt64LittleEndian(lengthBytes);
        if (headerLength <= 0 || headerLength > 100_000_000 || 8 + headerLength > fileLength)
            throw InputException.At(path, $"not a safetensors file or truncated (header length {headerLength}, file length {fileLength})");
        var header = new byte[headerLength];
        file.ReadExactly(header);
        dataStart = 8 + headerLength;

        JsonObject json;
        try { json = JsonNode.Parse(header)?.AsObject() ?? throw new JsonException("empty header"); }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            throw InputException.At(path, $"safetensors header is not valid JSON ({e.Message})");
        }

        var entries = new List<Entry>();
        foreach (var (name, node) in json)
        {
            if (name == "__metadata__") continue;
            try
            {
                var o = node!.AsObject();
                string dtype = o["dtype"]!.GetValue<string>();
                long[] shape = o["shape"]!.AsArray().Select(d => d!.GetValue<long>()).ToArray();
                var offsets = o["data_offsets"]!.AsArray();
                long begin = offsets[0]!.GetValue<long>(), end = offsets[1]!.GetValue<long>();
                if (shape.Any(d => d < 0) || begin < 0 || end < begin)
                    throw InputException.At(path, $"tensor '{name}': negative size in shape [{string.Join(", ", shape)}] or data_offsets [{begin}, {end}]");
                long expected = checked(shape.Aggregate(1L, (a, b) => a * b) * ElementSize(path, name, dtype));
                if (end - begin != expected)
                    throw InputException.At(path, $"tensor '{name}': data_offsets span {end - begin} bytes, but dtype {dtype} and shape [{string.Join(", ", shape)}] need {expected}");
                if (dataStart + end > fileLength)
                    throw InputException.At(path, $"truncated file: tensor '{name}' ends at byte {dataStart + end}, the file has {fileLength}");
                entries.Add(new Entry(name, dtype, shape, begin, end));
            }
            catch (Exception e) when (e is NullReferenceException or InvalidOperationException or FormatException or JsonException or OverflowException or ArgumentException)
            {
                throw InputException.At(path, $"tensor '{name}': malformed header entry (expected dtype, shape and data_offsets)");
            }
        }
        return entries;
    }

    /// <summary>Writes tensors in name order: float16, bfloat16 and int64 tensors as F16, BF16 and I64, anything else as F32.</summary>
    public static void Save(string path, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var header = new JsonObject();
        if (metadata is not null)
            header["__metadata__"] = new JsonObject(metadata.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)JsonValue.Create(kv.Value))));
        var blobs = new List<byte[]>();
        long offset = 0;
        foreach (var name in tensors.Keys.Order(StringComparer.Ordinal))
        {
            var (dtype, bytes) = ToBytes(tensors[name]);
            header[name] = new JsonObject
            {
                ["dtype"] = dtype,
                ["shape"] = new JsonArray(tensors[name].shape.Select(d => (JsonNode?)JsonValue.Create(d)).ToArray()),
                ["data_offsets"] = new JsonArray(offset, offset + bytes.Length),
            };
            blobs.Add(bytes);
            offset += bytes.Length;
        }
        var headerBytes = Encoding.UTF8.GetBytes(header.ToJsonString());
        int padding = (8 - headerBytes.Length % 8) % 8;   // keep the data 8-byte aligned, as the reference writer does
        headerBytes = [.. headerBytes, .. Enumerable.Repeat((byte)' ', padding)];

        var temp = path + ".tmp";
        using (var file = File.Create(temp))
        {
            Span<byte> lengthBytes = stackalloc byte[8];
            BinaryPrimitives.WriteInt64LittleEndian(lengthBytes, headerBytes.Length);
            file.Write(lengthBytes);
            file.Write(headerBytes);
            foreach (var blob in blobs) file.Write(blob);
        }
        File.Move(temp, path, overwrite: true);   // a crash never leaves half a file under the real name
    }

    static int ElementSize(string path, string name, string dtype) => dtype switch
    {
        "F32" or "I32" => 4,
        "F16" or "BF16" or "I16" => 2,
        "F64" or "I64" => 8,
        "U8" or "I8" or "BOOL" => 1,
        _ => throw InputException.At(path, $"tensor '{name}': unsupported dtype {dtype}"),
    };

    static Tensor ToTensor(string path, Entry entry, byte[] bytes)
    {
        int n = checked((int)entry.Shape.Aggregate(1L, (a, b) => a * b));
        switch (entry.DType)
        {
            case "F32":
            {
                var values = new float[n];
                Buffer.BlockCopy(bytes, 0, values, 0, bytes.Length);
                return torch.tensor(values, entry.Shape);
            }
            case "F16":
            {
                var values = new float[n];
                for (int i = 0; i < n; i++) values[i] = (float)BitConverter.UInt16BitsToHalf(BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(2 * i)));
                return torch.tensor(values, entry.Shape);
            }
            case "BF16":
            {
                var values = new float[n];
                for (int i = 0; i < n; i++) values[i] = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(2 * i)) << 16);
                return torch.tensor(values, entry.Shape);
            }
            case "F64":
            {
                var values = new double[n];
                Buffer.BlockCopy(bytes, 0, values, 0, bytes.Length);
                return torch.tensor(values, entry.Shape);
            }
            case "I64":
            {
                var values = new long[n];
                Buffer.BlockCopy(bytes, 0, values, 0, bytes.Length);
                return torch.tensor(values, entry.Shape);
            }
            case "I32":
            {
                var values = new int[n];
                Buffer.BlockCopy(bytes, 0, values, 0, bytes.Length);
                return torch.tensor(values, entry.Shape);
            }
            case "U8" or "BOOL":
                return torch.tensor(bytes, entry.Shape);
            default:
                throw InputException.At(path, $"tensor '{entry.Name}': unsupported dtype {entry.DType}");
        }
    }

    static (string DType, byte[] Bytes) ToBytes(Tensor tensor)
    {
        using var cpu = tensor.detach().cpu().contiguous();
        if (cpu.dtype == ScalarType.Int64)
        {
            var longs = cpu.data<long>().ToArray();
            var bytes = new byte[longs.Length * 8];
            Buffer.BlockCopy(longs, 0, bytes, 0, bytes.Length);
            return ("I64", bytes);
        }
        if (cpu.dtype is ScalarType.Float16 or ScalarType.BFloat16)
        {
            // The tensor's own memory: 16-bit patterns, little-endian on every platform TorchSharp runs on.
            return (cpu.dtype == ScalarType.Float16 ? "F16" : "BF16", cpu.bytes.ToArray());
        }
        using var f32 = cpu.to_type(ScalarType.Float32);
        var floats = f32.data<float>().ToArray();
        var data = new byte[floats.Length * 4];
        Buffer.BlockCopy(floats, 0, data, 0, data.Length);
        return ("F32", data);
    }
}
