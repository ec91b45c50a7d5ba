using static TorchSharp.torch;

namespace BabyPpo.Training.Model;

/// <summary>
/// OLMo-2's block (HF Olmo2DecoderLayer), the architecture of the LLM judge: no input norms; the
/// norms sit after attention and after the MLP, inside the residual branch:
///   h = x + norm(attn(x));  out = h + norm(mlp(h)).
/// Its attention applies RMSNorm to the whole q and k projections before the heads are split
/// (see <see cref="Attention"/>, which does this when the config is olmo2).
/// </summary>
public sealed class Olmo2DecoderLayer : DecoderLayer
{
    readonly Attention self_attn;
    readonly Mlp mlp;
    readonly RMSNorm post_attention_layernorm, post_feedforward_layernorm;

    public Olmo2DecoderLayer(LlamaConfig c) : base(nameof(Olmo2DecoderLayer))
    {
        self_attn = new Attention(c);
        mlp = new Mlp(c);
        post_attention_layernorm = new RMSNorm(c.HiddenSize, c.RmsNormEps);
        post_feedforward_layernorm = new RMSNorm(c.HiddenSize, c.RmsNormEps);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x, Tensor cos, Tensor sin, Tensor? mask, KvCache? cache, int layer)
    {
        var h = x + post_attention_layernorm.forward(self_attn.forward(x, cos, sin, mask, cache, layer));
        return h + post_feedforward_layernorm.forward(mlp.forward(h));
    }
}
