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

    /// <summary>
    /// Forgets every position from <paramref name="length"/> on, so that another continuation of
    /// the same prefix can be run (the scorer scores two sentences after one shared prefix).
    /// </summary>
    public void Truncate(int length)
    {
        if (length < 0 || length > Length)
            throw new ArgumentOutOfRangeException(nameof(length), length, $"the cache holds {Length} positions");
        Length = length;
    }

    /// <summary>Called by the model once all layers have appended <paramref name="positions"/> new positions.</summary>
    internal void Advance(int positions) => Length += positions;

    public void Dispose()
    {
        foreach (var t in _keys) t.Dispose();
        foreach (var t in _values) t.Dispose();
    }
}
