using static TorchSharp.torch;

namespace BabyPpo.Training.Model;

/// <summary>
/// Keys and values of every layer for a batch, pre-allocated for the longest sequence so that
/// incremental decoding writes one position per step instead of re-running the prefix.
/// The model appends to it during a forward pass; <see cref="Length"/> advances once per pass.
/// Owns its tensors: dispose it when the batch is done.
/// </summary>
public sealed class KvCache : IDisposable
{
    readonly Tensor[] _keys;     // per layer: (B, n_kv_heads, capacity, head_dim)
    readonly Tensor[] _values;   // per layer: (B, n_kv_heads, capacity, head_dim)

    /// <summary>Positions already filled (the same for every layer between forward passes).</summary>
    public int Length { get; private set; }

    public int Capacity { get; }
    public long BatchSize { get; }

    public KvCache(LlamaConfig config, long batchSize, int capacity, Device device, ScalarType dtype = ScalarType.Float32)
    {
        if (capacity > config.MaxPositionEmbeddings)
            throw new InputException($"sequence length {capacity} exceeds the model's context window of {config.MaxPositionEmbeddings} tokens");
        Capacity = capacity;
        BatchSize = batchSize;
        _keys = new Tensor[config.NumHiddenLayers];
        _values = new Tensor[config.NumHiddenLayers];
        using var _ = NewDisposeScope();
        for (int i = 0; i < config.NumHiddenLayers; i++)
        {
            _keys[i] = zeros([batchSize, config.NumKeyValueHeads, capacity, config.HeadDim], dtype, device).MoveToOuterDisposeScope();
            _values[i] = zeros([batchSize, config.NumKeyValueHeads, capacity, config.HeadDim], dtype, device).MoveToOuterDisposeScope();
        }
    }

    /// <summary>
    /// Writes the new keys/values (B, n_kv_heads, T, head_dim) of one layer after the filled
    /// positions and returns views of everything so far (B, n_kv_heads, Length + T, head_dim).
    /// </summary>
    internal (Tensor Keys, Tensor Values) Append(int layer, Tensor keys, Tensor values)
    {
        long t = keys.shape[2];
        if (Length + t > Capacity)
            throw new InvalidOperationException($"KV cache full: {Length} + {t} positions exceed its capacity of {Capacity}");
        _keys[layer].narrow(2, Length, t).copy_(keys);
        _values[layer].narrow(2, Length, t).copy_(values);
        return (_keys[layer].narrow(2, 0, Length + t), _values[layer].narrow(2, 0, Length + t));
    }

    KvCache(Tensor[] keys, Tensor[] values, int length, int capacity, long batchSize)
    {
        (_keys, _values, Length, Capacity, BatchSize) = (keys, values, length, capacity, batchSize);
    }

    /// <summary>
    /// A new cache in which every row of this one appears <paramref name="copies"/> times in a row
    /// (rows r·copies … r·copies + copies − 1 hold row r), filled as far as this one: a prefix computed
    /// once can then be continued in several ways in one batch (the scorer's shared prefixes).
    /// </summary>
    public KvCache RepeatRows(int copies)
    {
        if (copies < 1) throw new ArgumentOutOfRangeException(nameof(copies), copies, "at least one copy");
        using var _ = NewDisposeScope();
        var keys = _keys.Select(k => k.repeat_interleave(copies, dim: 0).MoveToOuterDisposeScope()).ToArray();
        var values = _values.Select(v => v.repeat_interleave(copies, dim: 0).MoveToOuterDisposeScope()).ToArray();
        return new KvCache(keys, values, Length, Capacity, BatchSize * copies);
    }

    /// <summary>Called by the model once all layers have appended <paramref name="positions"/> new positions.</summary>
    internal void Advance(int positions) => Length += positions;

    public void Dispose()
    {
        foreach (var t in _keys) t.Dispose();
        foreach (var t in _values) t.Dispose();
    }
}
