using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using BabyPpo.Training.Model;
using BabyPpo.Training.Text;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace BabyPpo.Training.Pretrain;

/// <summary>One report of a pre-training run: after every step, and with the held-out loss after each evaluation.</summary>
/// <param name="Step">Steps done so far.</param>
/// <param name="Loss">Mean cross-entropy (nats per token) of this step's batch.</param>
/// <param name="LearningRate">The learning rate this step used.</param>
/// <param name="TokensPerSecond">Training tokens per second of this session, evaluation and checkpoints excluded.</param>
/// <param name="HeldOutLoss">Mean cross-entropy on the held-out blocks, when this step was evaluated.</param>
/// <param name="Checkpoint">The checkpoint folder written after this step, if any.</param>
public sealed record PretrainProgress(
    int Step, int TotalSteps, double Loss, double LearningRate, double TokensPerSecond,
    double? HeldOutLoss = null, string? Checkpoint = null);

/// <summary>One line of the training log: the step's loss and learning rate, and the held-out loss when evaluated.</summary>
public sealed record PretrainLogEntry(int Step, double Loss, double LearningRate, double? HeldOutLoss);

/// <summary>What a finished run reports: its final losses, its log and where the model was written.</summary>
public sealed record PretrainResult(int Steps, double FinalLoss, double HeldOutLoss, IReadOnlyList<PretrainLogEntry> Log, string? OutputFolder, long Parameters);

/// <summary>
/// What to pre-train: the data file, the output folder, the model size and the tokenizer (an existing
/// one, or a byte-level BPE trained on the training documents with <see cref="VocabSize"/> tokens).
/// </summary>
public sealed record PretrainRequest
{
    /// <summary>Dialogue pairs (.json, .jsonl, .csv) or CHILDES-tagged text (.txt); see <see cref="PretrainCorpus"/>.</summary>
    public required string DataPath { get; init; }

    /// <summary>Where the final model (a Hugging Face folder), the log and <c>checkpoints/</c> go.</summary>
    public required string OutputFolder { get; init; }

    /// <summary>A preset name (<see cref="ModelPresets.Names"/>) or a config.json path.</summary>
    public string Model { get; init; } = "small";

    /// <summary>A tokenizer.json (or a folder holding one) to use instead of training one.</summary>
    public string? TokenizerPath { get; init; }

    /// <summary>Vocabulary of the tokenizer trained when <see cref="TokenizerPath"/> is null.</summary>
    public int VocabSize { get; init; } = 4000;

    /// <summary>Minimum pair frequency of that tokenizer's merges.</summary>
    public int MinFrequency { get; init; } = 2;

    public PretrainConfig Config { get; init; } = new();

    /// <summary>Continue from the newest checkpoint in <c>OutputFolder/checkpoints</c> (its stored settings; only Steps may change).</summary>
    public bool Resume { get; init; }
}

/// <summary>
/// Causal-LM pre-training of a Llama: AdamW with linear warm-up and cosine decay, gradient clipping,
/// periodic held-out evaluation, atomic checkpoints that a run resumes from exactly, and progress
/// reports. One dispose scope per step: only .NET numbers leave a step; the weights and the
/// optimizer's moments are the only tensors that live across steps.
/// </summary>
/// <remarks>
/// Layout of <c>OutputFolder</c>: the final model (<c>config.json</c>, <c>model.safetensors</c>,
/// <c>tokenizer.json</c>, <c>tokenizer_config.json</c>), <c>training_log.json</c>, and
/// <c>checkpoints/step-NNNNNN/</c>, each a Hugging Face folder plus <c>optimizer.safetensors</c> (AdamW's
/// moments by parameter name) and <c>trainer_state.json</c> (step, settings, data hash and order,
/// log). A checkpoint is written into a temporary folder and renamed when complete, so a crash never
/// leaves a half-written one under a real name. The data order depends only on the seed and the step,
/// and no other randomness is used after initialisation, so resuming gives the same parameters as an
/// uninterrupted run.
/// </remarks>
public sealed class Pretrainer : IDisposable
{
    const string CheckpointsFolder = "checkpoints";
    const string StateFile = "trainer_state.json";
    const string OptimizerFile = "optimizer.safetensors";
    const string LogFile = "training_log.json";
    static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    readonly CausalLM _model;
    readonly Tokenizer _tokenizer;
    readonly PackedBlocks _train, _heldOut;
    readonly DataOrder _order;
    readonly CausalLmOptimizer _optimizer;
    readonly List<PretrainLogEntry> _log = [];
    readonly string? _outputFolder;
    readonly string _dataSha256;
    double _trainSeconds;
    long _trainTokens;

    /// <summary>
    /// A trainer for <paramref name="model"/> (which it does not own) on packed blocks. With an
    /// <paramref name="outputFolder"/> it writes checkpoints and the final model there.
    /// </summary>
    public Pretrainer(CausalLM model, Tokenizer tokenizer, PackedBlocks train, PackedBlocks heldOut, PretrainConfig config,
        string? outputFolder = null, string dataSha256 = "")
    {
        config.Validate();
        if (config.BlockSize > model.Config.MaxPositionEmbeddings)
            throw new InputException($"block size {config.BlockSize} exceeds the model's context of {model.Config.MaxPositionEmbeddings} positions");
        if (train.BlockSize != config.BlockSize || heldOut.BlockSize != config.BlockSize)
            throw new ArgumentException("the blocks were packed with another block size than the config's");
        if (train.Count == 0)
            throw new InputException($"the training text gives {train.StreamTokens} tokens, fewer than one block of {config.BlockSize + 1}; use a smaller block size or more text");
        if (heldOut.Count == 0)
            throw new InputException("the held-out documents give no block to evaluate on");
        if (tokenizer.VocabSize > model.Config.VocabSize)
            throw new InputException($"the tokenizer has {tokenizer.VocabSize} tokens but the model only {model.Config.VocabSize}");
        _model = model;
        _tokenizer = tokenizer;
        _train = train;
        _heldOut = heldOut;
        Config = config;
        _outputFolder = outputFolder;
        _dataSha256 = dataSha256;
        _order = new DataOrder(train.Count, config.BatchSize, config.Seed);

        _optimizer = new CausalLmOptimizer(model, config);
    }

    public PretrainConfig Config { get; }

    /// <summary>Steps done so far.</summary>
    public int Step { get; private set; }

    public IReadOnlyList<PretrainLogEntry> Log => _log;

    public CausalLM Model => _model;

    // ── The whole pipeline ────────────────────────────────────────────────────────────────────

    /// <summary>
    /// Reads the data, splits off the held-out documents, trains or loads the tokenizer, builds (or,
    /// with <see cref="PretrainRequest.Resume"/>, restores) the model and trains it, writing checkpoints
    /// and finally the model into <see cref="PretrainRequest.OutputFolder"/>.
    /// </summary>
    /// <exception cref="InputException">A file, a setting or the data does not fit.</exception>
    /// <exception cref="OperationCanceledException">Cancelled; a checkpoint of the last step was written first.</exception>
    public static PretrainResult Run(PretrainRequest request, IProgress<PretrainProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        var documents = PretrainCorpus.ReadDocuments(request.DataPath);
        var sha = PretrainCorpus.Sha256(request.DataPath);
        string? checkpoint = request.Resume ? LatestCheckpoint(request.OutputFolder)
            ?? throw InputException.At(Path.Combine(request.OutputFolder, CheckpointsFolder), "no checkpoint to resume from") : null;
        if (!request.Resume && LatestCheckpoint(request.OutputFolder) is { } earlier)
            throw InputException.At(earlier, "the output folder already holds a run's checkpoints; resume it (--resume) or choose another folder");
        var config = request.Config;
        if (checkpoint is not null)
            config = ReadState(checkpoint).Config with { Steps = request.Config.Steps };
        config.Validate();
        var (trainDocuments, heldOutDocuments) = PretrainCorpus.Split(documents, config.HeldOutFraction, config.Seed);

        Tokenizer tokenizer;
        LlamaConfig modelConfig;
        if (checkpoint is not null)
        {
            tokenizer = Tokenizer.Load(checkpoint);
            modelConfig = LlamaConfig.Load(checkpoint);
        }
        else
        {
            tokenizer = request.TokenizerPath is { } path
                ? Tokenizer.Load(path)
                : BpeTrainer.Train(trainDocuments, new BpeTrainerOptions { VocabSize = request.VocabSize, MinFrequency = request.MinFrequency }, cancellationToken).Tokenizer;
            modelConfig = ModelPresets.Resolve(request.Model, tokenizer.VocabSize);
        }
        var train = PackedBlocks.Pack(tokenizer, trainDocuments, config.BlockSize);
        var heldOut = PackedBlocks.Pack(tokenizer, heldOutDocuments, config.BlockSize, keepPartial: true);

        using var model = checkpoint is not null ? Checkpoint.LoadModel(checkpoint) : CausalLM.Initialise(modelConfig, config.Seed);
        using var trainer = new Pretrainer(model, tokenizer, train, heldOut, config, request.OutputFolder, sha);
        if (checkpoint is not null) trainer.RestoreFrom(checkpoint);
        return trainer.Run(progress, cancellationToken);
    }

    // ── The training loop ────────────────────────────────────────────────────────────────────

    /// <summary>
    /// Trains until <see cref="PretrainConfig.Steps"/>, evaluating every <c>EvalEvery</c> steps and
    /// checkpointing every <c>CheckpointEvery</c> steps (with an output folder), then evaluates,
    /// checkpoints and writes the final model. Cancellation is honoured between steps.
    /// </summary>
    public PretrainResult Run(IProgress<PretrainProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        double loss = double.NaN;
        while (Step < Config.Steps)
        {
            if (cancellationToken.IsCancellationRequested)
            {
                if (_outputFolder is not null) SaveCheckpoint();
                cancellationToken.ThrowIfCancellationRequested();
            }
            double lr = LearningRateSchedule.At(Step, Config);
            loss = TrainNextStep();
            bool last = Step == Config.Steps;
            double? heldOutLoss = last || (Config.EvalEvery > 0 && Step % Config.EvalEvery == 0) ? HeldOutLoss() : null;
            _log.Add(new PretrainLogEntry(Step, loss, lr, heldOutLoss));
            string? saved = _outputFolder is not null && (last || (Config.CheckpointEvery > 0 && Step % Config.CheckpointEvery == 0))
                ? SaveCheckpoint() : null;
            progress?.Report(new PretrainProgress(Step, Config.Steps, loss, lr, TokensPerSecond, heldOutLoss, saved));
        }
        double finalHeldOut = _log.LastOrDefault(e => e.HeldOutLoss is not null)?.HeldOutLoss ?? HeldOutLoss();
        if (_outputFolder is not null) SaveFinal();
        return new PretrainResult(Step, _log.Count > 0 ? _log[^1].Loss : loss, finalHeldOut, _log, _outputFolder, ParameterCount);
    }

    /// <summary>Training tokens per second so far in this session.</summary>
    public double TokensPerSecond => _trainSeconds > 0 ? _trainTokens / _trainSeconds : 0;

    /// <summary>Parameters of the model, the tied embedding counted once.</summary>
    public long ParameterCount => _optimizer.Parameters;

    /// <summary>Takes the next step on the blocks the data order gives it; returns its loss.</summary>
    public double TrainNextStep()
    {
        var clock = Stopwatch.StartNew();
        var blocks = _order.BlocksOf(Step);
        var ids = new long[blocks.Length * (Config.BlockSize + 1)];
        for (int b = 0; b < blocks.Length; b++)
        {
            var block = _train.Block(blocks[b]);
            for (int t = 0; t < block.Length; t++) ids[b * (Config.BlockSize + 1) + t] = block[t];
        }
        double loss = _optimizer.Step(ids, blocks.Length, Config.BlockSize + 1, LearningRateSchedule.At(Step, Config));
        Step++;
        _trainSeconds += clock.Elapsed.TotalSeconds;
        _trainTokens += (long)blocks.Length * Config.BlockSize;
        return loss;
    }

    /// <summary>Mean cross-entropy per target token on the held-out blocks (the first <c>EvalBlocks</c>, or all).</summary>
    public double HeldOutLoss()
    {
        int count = Config.EvalBlocks == 0 ? _heldOut.Count : Math.Min(Config.EvalBlocks, _heldOut.Count);
        double total = 0;
        long tokens = 0;
        using var noGrad = no_grad();
        _model.eval();
        for (int start = 0; start < count;)
        {
            // Rows of one batch must have the same length: a shorter last block goes alone.
            int length = _heldOut.Length(start);
            int end = start;
            while (end < count && end - start < Config.BatchSize && _heldOut.Length(end) == length) end++;
            using var scope = NewDisposeScope();
            var ids = new long[(end - start) * length];
            for (int b = start; b < end; b++)
            {
                var block = _heldOut.Block(b);
                for (int t = 0; t < length; t++) ids[(b - start) * length + t] = block[t];
            }
            var rows = tensor(ids, [end - start, length], device: _model.Device);
            var logits = _model.forward(rows.narrow(1, 0, length - 1));
            var targets = rows.narrow(1, 1, length - 1).reshape(-1);
            total += F.cross_entropy(logits.view(-1, logits.shape[^1]), targets, reduction: nn.Reduction.Sum).item<float>();
            tokens += targets.shape[0];
            start = end;
        }
        _model.train();
        return total / tokens;
    }

    // ── Checkpoints ──────────────────────────────────────────────────────────────────────────

    /// <summary>The stored state of a checkpoint, as written in its trainer_state.json.</summary>
    sealed record TrainerState(int Step, PretrainConfig Config, string DataSha256, long Epoch, int Offset, long AdamStep, double TrainSeconds, long TrainTokens, List<PretrainLogEntry> Log);

    /// <summary>Writes <c>checkpoints/step-NNNNNN</c> (atomically) and deletes checkpoints beyond <c>KeepCheckpoints</c>; returns its path.</summary>
    public string SaveCheckpoint()
    {
        var root = Path.Combine(_outputFolder ?? throw new InvalidOperationException("this trainer has no output folder"), CheckpointsFolder);
        Directory.CreateDirectory(root);
        var final = Path.Combine(root, $"step-{Step:D6}");
        var temp = Path.Combine(root, $".step-{Step:D6}.tmp-{Guid.NewGuid():N}");
        Directory.CreateDirectory(temp);
        try
        {
            using (var scope = NewDisposeScope())
            {
                Checkpoint.Save(_model, _tokenizer, temp);
                _optimizer.Save(Path.Combine(temp, OptimizerFile));
            }
            var (epoch, offset) = _order.PositionAt(Step);
            var state = new TrainerState(Step, Config, _dataSha256, epoch, offset, _optimizer.AdamStep, _trainSeconds, _trainTokens, _log);
            File.WriteAllText(Path.Combine(temp, StateFile), JsonSerializer.Serialize(state, JsonOptions) + "\n");
            if (Directory.Exists(final)) Directory.Delete(final, recursive: true);
            Directory.Move(temp, final);
        }
        catch
        {
            if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
            throw;
        }
        foreach (var old in CompleteCheckpoints(_outputFolder).SkipLast(Config.KeepCheckpoints))
            Directory.Delete(old, recursive: true);
        return final;
    }

    /// <summary>
    /// Restores the weights, the optimizer's moments and step, the step count and the log of a
    /// checkpoint folder. The model must already have the checkpoint's architecture.
    /// </summary>
    /// <exception cref="InputException">The checkpoint was made with other data or other training settings.</exception>
    public void RestoreFrom(string checkpoint)
    {
        var state = ReadState(checkpoint);
        if (!Equals(state.Config.TrainingIdentity, Config.TrainingIdentity))
            throw InputException.At(Path.Combine(checkpoint, StateFile), "was written with other training settings; resume with the stored ones (only the number of steps may change)");
        if (_dataSha256.Length > 0 && state.DataSha256.Length > 0 && state.DataSha256 != _dataSha256)
            throw InputException.At(Path.Combine(checkpoint, StateFile), $"was trained on data with SHA-256 {state.DataSha256}, but the data file now has {_dataSha256}");
        if (state.Step > Config.Steps)
            throw InputException.At(checkpoint, $"is at step {state.Step}, past the {Config.Steps} steps asked for");
        Checkpoint.LoadWeights(_model, checkpoint);
        _optimizer.Load(Path.Combine(checkpoint, OptimizerFile), state.AdamStep);
        Step = state.Step;
        _log.Clear();
        _log.AddRange(state.Log);
    }

    /// <summary>The newest complete checkpoint under <paramref name="outputFolder"/>, or null.</summary>
    public static string? LatestCheckpoint(string outputFolder) => CompleteCheckpoints(outputFolder).LastOrDefault();

    static IEnumerable<string> CompleteCheckpoints(string outputFolder)
    {
        var root = Path.Combine(outputFolder, CheckpointsFolder);
        if (!Directory.Exists(root)) return [];
        return Directory.GetDirectories(root, "step-*")
            .Where(d => File.Exists(Path.Combine(d, StateFile)))
            .Order(StringComparer.Ordinal);
    }

    static TrainerState ReadState(string checkpoint)
    {
        var path = Path.Combine(checkpoint, StateFile);
        if (!File.Exists(path)) throw InputException.At(path, "not found: not a pre-training checkpoint");
        try
        {
            return JsonSerializer.Deserialize<TrainerState>(File.ReadAllText(path), JsonOptions)
                ?? throw InputException.At(path, "empty trainer state");
        }
        catch (JsonException e)
        {
            throw InputException.At(path, $"not a valid trainer state ({e.Message})");
        }
    }

    /// <summary>The final model and training_log.json in the output folder, each file replaced atomically.</summary>
    void SaveFinal()
    {
        var temp = Path.Combine(_outputFolder!, $".final.tmp-{Guid.NewGuid():N}");
        try
        {
            using (var scope = NewDisposeScope()) Checkpoint.Save(_model, _tokenizer, temp);
            var log = new JsonObject
            {
                ["steps"] = Step,
                ["parameters"] = ParameterCount,
                ["data_sha256"] = _dataSha256,
                ["train_tokens_per_epoch"] = _train.TargetTokens,
                ["held_out_tokens"] = _heldOut.TargetTokens,
                ["config"] = JsonSerializer.SerializeToNode(Config, JsonOptions),
                ["log"] = JsonSerializer.SerializeToNode(_log, JsonOptions),
            };
            File.WriteAllText(Path.Combine(temp, LogFile), log.ToJsonString(JsonOptions) + "\n");
            foreach (var file in Directory.GetFiles(temp))
                File.Move(file, Path.Combine(_outputFolder!, Path.GetFileName(file)), overwrite: true);
        }
        finally
        {
            if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
        }
    }

    public void Dispose() => _optimizer.Dispose();
}
