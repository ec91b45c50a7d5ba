using System.Text.Json.Serialization;
using BabyPpo.Training.Model;

namespace BabyPpo.Training.Pretrain;

/// <summary>
/// Hyper-parameters of causal-LM pre-training. The defaults suit a small baby on about a megabyte of
/// dialogue on a CPU (nanoGPT-style settings for small models).
/// </summary>
public sealed record PretrainConfig
{
    /// <summary>Optimizer steps of the whole run (a resumed run counts the steps already done).</summary>
    public int Steps { get; init; } = 2000;

    /// <summary>Blocks per step; each step trains on <c>BatchSize × BlockSize</c> tokens.</summary>
    public int BatchSize { get; init; } = 16;

    /// <summary>Tokens per block (the model's input length); at most the model's max_position_embeddings.</summary>
    public int BlockSize { get; init; } = 128;

    /// <summary>Peak learning rate, reached after the warm-up.</summary>
    public double LearningRate { get; init; } = 1e-3;

    /// <summary>The learning rate at the last step, where the cosine decay ends.</summary>
    public double MinLearningRate { get; init; } = 1e-4;

    /// <summary>Steps of linear warm-up from 0 to <see cref="LearningRate"/>.</summary>
    public int WarmupSteps { get; init; } = 100;

    /// <summary>AdamW's decoupled weight decay, applied to matrices (the embedding included), not to norm weights or biases.</summary>
    public double WeightDecay { get; init; } = 0.1;

    public double Beta1 { get; init; } = 0.9;

    public double Beta2 { get; init; } = 0.95;

    public double Epsilon { get; init; } = 1e-8;

    /// <summary>Largest global L2 norm of the gradients; larger ones are scaled down to it. 0 = no clipping.</summary>
    public double GradClip { get; init; } = 1.0;

    /// <summary>Steps between held-out evaluations; 0 = only at the end.</summary>
    public int EvalEvery { get; init; } = 100;

    /// <summary>Held-out blocks per evaluation (the first ones, always the same); 0 = all.</summary>
    public int EvalBlocks { get; init; } = 64;

    /// <summary>Share of the documents kept out of training for the evaluation loss (at least one document).</summary>
    public double HeldOutFraction { get; init; } = 0.02;

    /// <summary>Steps between checkpoints; 0 = only the final one. A checkpoint is also written at the end and on cancellation.</summary>
    public int CheckpointEvery { get; init; } = 500;

    /// <summary>How many of the newest checkpoints to keep (older ones are deleted after a new one is complete).</summary>
    public int KeepCheckpoints { get; init; } = 2;

    /// <summary>Seeds the weights, the held-out split and the order of the blocks: the same seed and data give the same run.</summary>
    public long Seed { get; init; }

    /// <exception cref="InputException">A setting is out of range.</exception>
    public void Validate()
    {
        Require(Steps >= 1, $"steps must be at least 1, got {Steps}");
        Require(BatchSize >= 1, $"batch size must be at least 1, got {BatchSize}");
        Require(BlockSize >= 2, $"block size must be at least 2, got {BlockSize}");
        Require(LearningRate > 0, $"learning rate must be > 0, got {LearningRate}");
        Require(MinLearningRate >= 0 && MinLearningRate <= LearningRate, $"minimum learning rate must be between 0 and the learning rate ({LearningRate}), got {MinLearningRate}");
        Require(WarmupSteps >= 0, $"warm-up steps must be >= 0, got {WarmupSteps}");
        Require(WarmupSteps < Steps, $"{WarmupSteps} warm-up steps leave nothing of a {Steps}-step run at the peak learning rate; give fewer warm-up steps (--warmup)");
        Require(WeightDecay >= 0, $"weight decay must be >= 0, got {WeightDecay}");
        Require(Beta1 is >= 0 and < 1 && Beta2 is >= 0 and < 1, $"AdamW betas must be in [0, 1), got {Beta1} and {Beta2}");
        Require(Epsilon > 0, $"AdamW epsilon must be > 0, got {Epsilon}");
        Require(GradClip >= 0, $"gradient clipping norm must be >= 0 (0 = off), got {GradClip}");
        Require(EvalEvery >= 0 && EvalBlocks >= 0 && CheckpointEvery >= 0, "evaluation and checkpoint intervals must be >= 0 (0 = only at the end)");
        Require(KeepCheckpoints >= 1, $"keep at least 1 checkpoint, got {KeepCheckpoints}");
        Require(HeldOutFraction is > 0 and < 0.5, $"held-out fraction must be in (0, 0.5), got {HeldOutFraction}");
    }

    /// <summary>The settings that change the parameters a run reaches; a resumed run must keep them.</summary>
    [JsonIgnore]
    internal object TrainingIdentity => this with { Steps = 0, EvalEvery = 0, EvalBlocks = 0, CheckpointEvery = 0, KeepCheckpoints = 1 };

    static void Require(bool condition, string message)
    {
        if (!condition) throw new InputException(message);
    }
}

/// <summary>
/// Learning rate at a step: linear warm-up from 0 to the peak over <c>WarmupSteps</c>, then cosine decay
/// to <c>MinLearningRate</c> at the last step.
/// </summary>
public static class LearningRateSchedule
{
    /// <param name="step">The 0-based step about to be taken.</param>
    public static double At(int step, PretrainConfig config)
    {
        if (step < config.WarmupSteps) return config.LearningRate * (step + 1) / config.WarmupSteps;
        int decaySteps = Math.Max(1, config.Steps - 1 - config.WarmupSteps);
        double progress = Math.Clamp((double)(step - config.WarmupSteps) / decaySteps, 0, 1);
        return config.MinLearningRate + 0.5 * (1 + Math.Cos(Math.PI * progress)) * (config.LearningRate - config.MinLearningRate);
    }
}

/// <summary>Named model sizes for pre-training; the vocabulary comes from the tokenizer.</summary>
public static class ModelPresets
{
    /// <summary>The names <see cref="Resolve"/> accepts besides a config.json path.</summary>
    public static readonly IReadOnlyList<string> Names = ["tiny", "small", "baby"];

    /// <summary>
    /// tiny: hidden 64, 2 layers, 4 heads, context 64 (tests); small: hidden 128, 4 layers, 4 heads,
    /// context 128 (the shipped demo baby); baby: the BabyLM size, hidden 256, 8 layers, 8 heads,
    /// context 256. All have SwiGLU MLPs 4× wide and tied embeddings, with pad 0, bos 1, eos 2.
    /// </summary>
    public static LlamaConfig Resolve(string sizeOrPath, int vocabSize)
    {
        LlamaConfig preset(int hidden, int layers, int heads, int context) =>
            LlamaConfig.Baby(vocabSize, hidden, layers, heads, 4 * hidden, context);
        return sizeOrPath switch
        {
            "tiny" => preset(64, 2, 4, 64),
            "small" => preset(128, 4, 4, 128),
            "baby" => preset(256, 8, 8, 256),
            _ when File.Exists(sizeOrPath) || Directory.Exists(sizeOrPath) => FromFile(sizeOrPath, vocabSize),
            _ => throw new InputException($"unknown model size '{sizeOrPath}': expected one of {string.Join(", ", Names)} or a config.json path"),
        };
    }

    static LlamaConfig FromFile(string path, int vocabSize)
    {
        var config = LlamaConfig.Load(path);
        if (config.IsOlmo2) throw InputException.At(path, "pre-training builds Llama models; this config describes OLMo-2");
        if (config.VocabSize < vocabSize)
            throw InputException.At(path, $"vocab_size {config.VocabSize} is smaller than the tokenizer's {vocabSize} tokens");
        return config;
    }
}
