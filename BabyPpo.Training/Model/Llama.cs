using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;
using F = TorchSharp.torch.nn.functional;

namespace BabyPpo.Training.Model;

// A Hugging Face–exact Llama decoder, in reading order:
//   RMSNorm → Rotary → Attention → Mlp → LlamaDecoderLayer → DecoderStack → CausalLM.
// Field names are the HF state-dict keys (model.layers.0.self_attn.q_proj.weight, …), so a hub
// model.safetensors loads as it is. OLMo-2 (the judge) reuses everything here; Olmo2.cs holds its
// post-norm decoder layer. Shapes: B batch, T new positions, S = past + T key positions,
// H hidden, nh attention heads, nkv key/value heads, hd head dim, V vocabulary.

/// <summary>x / sqrt(mean(x²) + eps) · weight, over the last dimension (HF LlamaRMSNorm).</summary>
public sealed class RMSNorm : Module<Tensor, Tensor>
{
    readonly Parameter weight;
    readonly double _eps;

    public RMSNorm(long dim, double eps) : base(nameof(RMSNorm))
    {
        weight = new Parameter(ones(dim));
        _eps = eps;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        var variance = x.pow(2).mean([-1], keepdim: true);
        return weight * (x * rsqrt(variance + _eps));
    }
}

/// <summary>
/// The token embedding table (HF nn.Embedding; key <c>embed_tokens.weight</c>). Written out rather
/// than TorchSharp's Embedding, whose <c>weight</c> getter allocates a new tensor handle on every
/// access; the tied output head reads this weight on every forward pass.
/// </summary>
public sealed class TokenEmbedding : Module<Tensor, Tensor>
{
    public readonly Parameter weight;   // (V, H)

    public TokenEmbedding(long vocabSize, long hidden) : base(nameof(TokenEmbedding))
    {
        weight = new Parameter(empty(vocabSize, hidden));
        RegisterComponents();
    }

    /// <summary>(B, T) ids → (B, T, H) vectors.</summary>
    public override Tensor forward(Tensor ids) =>
        weight.index_select(0, ids.flatten()).view([.. ids.shape, weight.shape[1]]);
}

/// <summary>
/// Rotary position embeddings (HF LlamaRotaryEmbedding, incl. Llama-3 frequency scaling).
/// Not a module: HF keeps inv_freq as a non-persistent buffer, so it is no state-dict key.
/// </summary>
public sealed class Rotary
{
    readonly float[] _invFreq;   // (hd / 2)

    public Rotary(LlamaConfig config)
    {
        using var _ = NewDisposeScope();
        int dim = config.HeadDim;
        // inv_freq = 1 / theta^(2i / dim), in float32 exactly as HF computes it.
        var exponent = arange(0, dim, 2, ScalarType.Int64).to(ScalarType.Float32) / dim;
        var invFreq = 1.0f / tensor((float)config.RopeTheta).pow(exponent);
        if (config.RopeScaling is { } s)
        {
            // Llama 3: long wavelengths are slowed down by `factor`, short ones kept, the band in
            // between interpolated smoothly (HF _compute_llama3_parameters).
            double lowWavelen = s.OriginalMaxPositionEmbeddings / s.LowFreqFactor;
            double highWavelen = s.OriginalMaxPositionEmbeddings / s.HighFreqFactor;
            var wavelen = 2 * Math.PI / invFreq;
            var scaled = where(wavelen > lowWavelen, invFreq / s.Factor, invFreq);
            var smooth = (s.OriginalMaxPositionEmbeddings / wavelen - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor);
            var smoothed = (1 - smooth) * scaled / s.Factor + smooth * scaled;
            var medium = (wavelen < highWavelen).logical_not() & (wavelen > lowWavelen).logical_not();
            invFreq = where(medium, smoothed, scaled);
        }
        _invFreq = invFreq.data<float>().ToArray();
    }

    /// <summary>
    /// cos and sign-folded sin tables for the given positions (B, T), each (B, 1, T, hd): cos(θ)
    /// repeated over both halves, and sin(θ) with the first half negated, so that
    /// rotate_half(x)·sin = swap_halves(x)·signed_sin.
    /// </summary>
    public (Tensor Cos, Tensor SignedSin) Tables(Tensor positions)
    {
        var invFreq = tensor(_invFreq, device: positions.device);                     // (hd/2)
        var freqs = positions.to(ScalarType.Float32).unsqueeze(-1) * invFreq;           // (B, T, hd/2)
        var cos = freqs.cos();
        var sin = freqs.sin();
        return (cat([cos, cos], -1).unsqueeze(1), cat([-sin, sin], -1).unsqueeze(1));   // (B, 1, T, hd)
    }

    /// <summary>
    /// x·cos + rotate_half(x)·sin with rotate_half(x) = (−x₂, x₁) over the two halves of hd (HF
    /// apply_rotary_pos_emb), written as x·cos + (x₂, x₁)·signed_sin: three tensor operations.
    /// </summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor signedSin)
    {
        long[] shape = x.shape;
        var swapped = x.view([.. shape[..^1], 2, shape[^1] / 2]).flip(-2).view(shape);
        return addcmul(x * cos, swapped, signedSin, 1);
    }
}

/// <summary>Grouped-query self-attention with rotary positions; OLMo-2 adds q/k norms over the whole projections.</summary>
public sealed class Attention : Module
{
    readonly Linear q_proj, k_proj, v_proj, o_proj;
    readonly RMSNorm? q_norm, k_norm;   // OLMo-2 only
    readonly int _heads, _kvHeads, _headDim;

    public Attention(LlamaConfig c) : base(nameof(Attention))
    {
        _heads = c.NumAttentionHeads;
        _kvHeads = c.NumKeyValueHeads;
        _headDim = c.HeadDim;
        q_proj = Linear(c.HiddenSize, _heads * _headDim, hasBias: c.AttentionBias);
        k_proj = Linear(c.HiddenSize, _kvHeads * _headDim, hasBias: c.AttentionBias);
        v_proj = Linear(c.HiddenSize, _kvHeads * _headDim, hasBias: c.AttentionBias);
        o_proj = Linear(_heads * _headDim, c.HiddenSize, hasBias: c.AttentionBias);
        if (c.IsOlmo2)
        {
            q_norm = new RMSNorm(_heads * _headDim, c.RmsNormEps);
            k_norm = new RMSNorm(_kvHeads * _headDim, c.RmsNormEps);
        }
        RegisterComponents();
    }

    /// <param name="x">(B, T, H)</param>
    /// <param name="mask">(B, 1, T, S) true where a query may attend to a key; null means plainly causal.</param>
    public Tensor forward(Tensor x, Tensor cos, Tensor sin, Tensor? mask, KvCache? cache, int layer)
    {
        long b = x.shape[0], t = x.shape[1];
        Tensor q = q_proj.forward(x), k = k_proj.forward(x), v = v_proj.forward(x);
        if (q_norm is not null && k_norm is not null)
        {
            q = q_norm.forward(q);
            k = k_norm.forward(k);
        }
        q = q.view(b, t, _heads, _headDim).transpose(1, 2);       // (B, nh, T, hd)
        k = k.view(b, t, _kvHeads, _headDim).transpose(1, 2);     // (B, nkv, T, hd)
        v = v.view(b, t, _kvHeads, _headDim).transpose(1, 2);     // (B, nkv, T, hd)
        q = Rotary.Apply(q, cos, sin);
        k = Rotary.Apply(k, cos, sin);
        if (cache is not null) (k, v) = cache.Append(layer, k, v); // (B, nkv, S, hd)
        if (_kvHeads != _heads)
        {
            k = k.repeat_interleave(_heads / _kvHeads, dim: 1);     // (B, nh, S, hd)
            v = v.repeat_interleave(_heads / _kvHeads, dim: 1);
        }
        var y = F.scaled_dot_product_attention(q, k, v, attn_mask: mask, is_casual: mask is null && t > 1); // (B, nh, T, hd)
        return o_proj.forward(y.transpose(1, 2).reshape(b, t, _heads * _headDim));          // (B, T, H)
    }
}

/// <summary>SwiGLU: down(silu(gate(x)) · up(x)).</summary>
public sealed class Mlp : Module<Tensor, Tensor>
{
    readonly Linear gate_proj, up_proj, down_proj;

    public Mlp(LlamaConfig c) : base(nameof(Mlp))
    {
        gate_proj = Linear(c.HiddenSize, c.IntermediateSize, hasBias: c.MlpBias);
        up_proj = Linear(c.HiddenSize, c.IntermediateSize, hasBias: c.MlpBias);
        down_proj = Linear(c.IntermediateSize, c.HiddenSize, hasBias: c.MlpBias);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => down_proj.forward(F.silu(gate_proj.forward(x)) * up_proj.forward(x));
}

/// <summary>One transformer block; Llama and OLMo-2 differ only in where the norms sit.</summary>
public abstract class DecoderLayer : Module
{
    protected DecoderLayer(string name) : base(name) { }

    /// <param name="x">(B, T, H) → (B, T, H)</param>
    public abstract Tensor forward(Tensor x, Tensor cos, Tensor sin, Tensor? mask, KvCache? cache, int layer);
}

/// <summary>Pre-norm block: x + attn(norm(x)), then + mlp(norm(·)).</summary>
public sealed class LlamaDecoderLayer : DecoderLayer
{
    readonly Attention self_attn;
    readonly Mlp mlp;
    readonly RMSNorm input_layernorm, post_attention_layernorm;

    public LlamaDecoderLayer(LlamaConfig c) : base(nameof(LlamaDecoderLayer))
    {
        self_attn = new Attention(c);
        mlp = new Mlp(c);
        input_layernorm = new RMSNorm(c.HiddenSize, c.RmsNormEps);
        post_attention_layernorm = new RMSNorm(c.HiddenSize, c.RmsNormEps);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x, Tensor cos, Tensor sin, Tensor? mask, KvCache? cache, int layer)
    {
        var h = x + self_attn.forward(input_layernorm.forward(x), cos, sin, mask, cache, layer);
        return h + mlp.forward(post_attention_layernorm.forward(h));
    }
}

/// <summary>Embeddings, the stack of blocks and the final norm (HF LlamaModel / Olmo2Model).</summary>
public sealed class DecoderStack : Module
{
    internal readonly TokenEmbedding embed_tokens;
    readonly ModuleList<DecoderLayer> layers;
    readonly RMSNorm norm;
    readonly Rotary _rotary;

    public DecoderStack(LlamaConfig c) : base(nameof(DecoderStack))
    {
        embed_tokens = new TokenEmbedding(c.VocabSize, c.HiddenSize);
        layers = new ModuleList<DecoderLayer>(Enumerable.Range(0, c.NumHiddenLayers)
            .Select(_ => c.IsOlmo2 ? (DecoderLayer)new Olmo2DecoderLayer(c) : new LlamaDecoderLayer(c)).ToArray());
        norm = new RMSNorm(c.HiddenSize, c.RmsNormEps);
        _rotary = new Rotary(c);
        RegisterComponents();
    }

    /// <param name="inputIds">(B, T) new token ids.</param>
    /// <param name="attentionMask">(B, S) 1 on real tokens, 0 on padding, covering the cached
    /// positions too; null when no row is padded.</param>
    /// <returns>(B, T, H) final hidden states, after the last norm.</returns>
    public Tensor forward(Tensor inputIds, Tensor? attentionMask, KvCache? cache)
    {
        long b = inputIds.shape[0], t = inputIds.shape[1];
        int past = cache?.Length ?? 0;
        var (positions, mask) = PositionsAndMask(b, t, past, attentionMask, inputIds.device);
        var (cos, sin) = _rotary.Tables(positions);
        var x = embed_tokens.forward(inputIds);                               // (B, T, H)
        for (int i = 0; i < layers.Count; i++)
            x = layers[i].forward(x, cos, sin, mask, cache, i);
        cache?.Advance((int)t);
        return norm.forward(x);
    }

    /// <summary>
    /// Positions come from the attention mask (cumulative sum − 1), so a left- or right-padded row
    /// gets the same positions as when it runs alone. The mask lets query i see key j when j is not
    /// in its future and j is a real token; a padding query also sees itself, so that no row is
    /// empty (an empty row would give NaN, and 0 · NaN leaks through the next layer's attention).
    /// </summary>
    static (Tensor Positions, Tensor? Mask) PositionsAndMask(long b, long t, int past, Tensor? attentionMask, Device device)
    {
        if (attentionMask is null && past == 0)                                // unpadded: plainly causal
            return (arange(t, ScalarType.Int64, device).unsqueeze(0).expand(b, t), null);
        attentionMask ??= ones([b, past + t], ScalarType.Int64, device);
        long s = attentionMask.shape[1];
        if (s != past + t)
            throw new ArgumentException($"attention mask covers {s} positions, but the cache holds {past} and {t} are new");
        var real = attentionMask.to(ScalarType.Int64);                       // (B, S)
        if (t == 1)
        {
            // One new token (a decoding step): every earlier key is in its past, so the mask is the
            // real-token mask with the token's own key always visible.
            var last = (real.sum(1, keepdim: true) - 1).clamp_min(0);        // (B, 1)
            var visible = cat([real.narrow(1, 0, s - 1).to(ScalarType.Bool), ones([b, 1], ScalarType.Bool, device)], 1);
            return (last, visible.view(b, 1, 1, s));                         // (B, 1, 1, S)
        }
        var pos = (real.cumsum(1) - 1).clamp_min(0).narrow(1, past, t);      // (B, T)
        var key = arange(s, ScalarType.Int64, device).unsqueeze(0);          // (1, S)
        var query = arange(past, past + t, ScalarType.Int64, device).unsqueeze(1); // (T, 1)
        var causal = key <= query;                                           // (T, S)
        var self = key == query;                                             // (T, S)
        var allowed = causal & (real.unsqueeze(1).to(ScalarType.Bool) | self); // (B, T, S)
        return (pos, allowed.unsqueeze(1));                                  // (B, 1, T, S)
    }
}

/// <summary>
/// A decoder-only language model with its output head (HF LlamaForCausalLM / Olmo2ForCausalLM).
/// With tied embeddings there is no lm_head module: the embedding matrix is the head, one
/// parameter, updated once per optimizer step.
/// </summary>
public sealed class CausalLM : Module
{
    readonly DecoderStack model;
    readonly Linear? lm_head;

    public LlamaConfig Config { get; }

    /// <summary>Where the weights live (CPU or a GPU).</summary>
    public Device Device => model.embed_tokens.weight.device;

    public CausalLM(LlamaConfig config) : base(nameof(CausalLM))
    {
        Config = config;
        model = new DecoderStack(config);
        if (!config.TieWordEmbeddings) lm_head = Linear(config.HiddenSize, config.VocabSize, hasBias: false);
        RegisterComponents();
    }

    /// <summary>A fresh model with HF's initialisation: normal(0, initializer_range) weights, zero biases, unit norms.</summary>
    public static CausalLM Initialise(LlamaConfig config, long seed)
    {
        var model = new CausalLM(config);
        using var _ = NewDisposeScope();
        using var noGrad = no_grad();
        var generator = new Generator((ulong)seed);
        foreach (var (name, p) in model.named_parameters())
        {
            if (name.EndsWith("norm.weight", StringComparison.Ordinal)) p.fill_(1.0);
            else if (name.EndsWith(".bias", StringComparison.Ordinal)) p.zero_();
            else p.normal_(0, config.InitializerRange, generator);
        }
        if (config.PadTokenId is int pad) model.model.embed_tokens.weight[pad].zero_();
        return model;
    }

    /// <summary>(B, T) ids → (B, T, H) final hidden states (used by the value head).</summary>
    public Tensor Hidden(Tensor inputIds, Tensor? attentionMask = null, KvCache? cache = null) =>
        model.forward(inputIds, attentionMask, cache);

    /// <summary>(…, H) hidden states → (…, V) logits.</summary>
    public Tensor Logits(Tensor hidden) =>
        lm_head is null ? F.linear(hidden, model.embed_tokens.weight) : lm_head.forward(hidden);

    /// <summary>(B, T) ids → (B, T, V) logits.</summary>
    public Tensor forward(Tensor inputIds, Tensor? attentionMask = null, KvCache? cache = null) =>
        Logits(Hidden(inputIds, attentionMask, cache));
}
