namespace BabyPpo.Web.Data;

/// <summary>Where a run or an evaluation is in its life.</summary>
public enum JobStatus
{
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

/// <summary>A folder of files (a checkpoint) stored in the database, so that any worker can fetch it. <see cref="Sha256"/> hashes the file list with the files' hashes.</summary>
public sealed class StoredFolder
{
    public int Id { get; set; }
    public string Sha256 { get; set; } = "";
    public long Bytes { get; set; }
    public List<StoredFile> Files { get; set; } = [];
}

/// <summary>One file of a stored folder; its content is in chunks.</summary>
public sealed class StoredFile
{
    public int Id { get; set; }
    public int FolderId { get; set; }
    /// <summary>Path relative to the folder, with '/' separators.</summary>
    public string Path { get; set; } = "";
    public long Length { get; set; }
    public string Sha256 { get; set; } = "";
    public List<FileChunk> Chunks { get; set; } = [];
}

/// <summary>A piece of a stored file (at most <see cref="FolderStore.ChunkSize"/> bytes), with its own hash.</summary>
public sealed class FileChunk
{
    public long Id { get; set; }
    public int FileId { get; set; }
    public int Index { get; set; }
    public byte[] Data { get; set; } = [];
    public string Sha256 { get; set; } = "";
}

/// <summary>A registered model: a Hugging Face checkpoint folder stored in the database.</summary>
public sealed class ModelRecord
{
    public int Id { get; set; }
    /// <summary>Unique; what the form and the API call it ("demo-baby").</summary>
    public string Name { get; set; } = "";
    public string Architecture { get; set; } = "";
    public long Parameters { get; set; }
    /// <summary>Where it was registered from (a folder path or an uploaded file name).</summary>
    public string Source { get; set; } = "";
    public int FolderId { get; set; }
    public StoredFolder? Folder { get; set; }
    public DateTime CreatedAt { get; set; }
}

/// <summary>A PPO experiment: its spec, where it is, and what it last reported.</summary>
public sealed class RunRecord
{
    public int Id { get; set; }
    public string Name { get; set; } = "";
    public JobStatus Status { get; set; }
    /// <summary>The <see cref="BabyPpo.Training.Ppo.RunSpec"/> as JSON, with the base model's name as BaseModel.</summary>
    public string SpecJson { get; set; } = "";
    public int BaseModelId { get; set; }
    public ModelRecord? BaseModel { get; set; }
    /// <summary>The rewards as "bleu:1,semsim:0.5" (for lists and filters).</summary>
    public string Reward { get; set; } = "";
    public string PromptSet { get; set; } = "";
    public string Queue { get; set; } = "";
    /// <summary>Evaluation tasks to run on the final checkpoint, comma-separated.</summary>
    public string Evaluations { get; set; } = "";
    public int Step { get; set; }
    public int TotalSteps { get; set; }
    public double? RewardMean { get; set; }
    public double? StepSeconds { get; set; }
    public DateTime CreatedAt { get; set; }
    public DateTime? StartedAt { get; set; }
    public DateTime? FinishedAt { get; set; }
    public string? Error { get; set; }
    /// <summary>The machine and process that runs (or last ran) it.</summary>
    public string? Worker { get; set; }
    /// <summary>The Hangfire job that owns the run; a job with another id leaves it alone.</summary>
    public string? JobId { get; set; }
    public bool CancelRequested { get; set; }
}

/// <summary>The metrics of one PPO step, as one JSON object (trl's names; non-finite values as null).</summary>
public sealed class MetricRecord
{
    public long Id { get; set; }
    public int RunId { get; set; }
    public int Step { get; set; }
    public string Values { get; set; } = "{}";
}

/// <summary>One row of a step's sample table.</summary>
public sealed class SampleRecord
{
    public long Id { get; set; }
    public int RunId { get; set; }
    public int Step { get; set; }
    public string Prompt { get; set; } = "";
    public string Answer { get; set; } = "";
    public string Reference { get; set; } = "";
    public double? Reward { get; set; }
}

/// <summary>A checkpoint of a run (HF folder + value head + optimizer + trainer state), stored in the database.</summary>
public sealed class CheckpointRecord
{
    public int Id { get; set; }
    public int RunId { get; set; }
    public RunRecord? Run { get; set; }
    public int Step { get; set; }
    public bool Final { get; set; }
    public int FolderId { get; set; }
    public StoredFolder? Folder { get; set; }
    public DateTime CreatedAt { get; set; }
}

/// <summary>One evaluation task on one model or checkpoint: its request, its status and its summary.</summary>
public sealed class EvaluationRecord
{
    public int Id { get; set; }
    public string Task { get; set; } = "";
    /// <summary>The model or checkpoint evaluated, as the leaderboard shows it.</summary>
    public string Label { get; set; } = "";
    public int? ModelId { get; set; }
    public int? CheckpointId { get; set; }
    public CheckpointRecord? Checkpoint { get; set; }
    public JobStatus Status { get; set; }
    public string Queue { get; set; } = "";
    public string? Dataset { get; set; }
    public int N { get; set; }
    public double? Accuracy { get; set; }
    public double? MacroAccuracy { get; set; }
    public double? CiLow { get; set; }
    public double? CiHigh { get; set; }
    public int Unscorable { get; set; }
    /// <summary>The report's options as a JSON object.</summary>
    public string Options { get; set; } = "{}";
    public DateTime CreatedAt { get; set; }
    public DateTime? FinishedAt { get; set; }
    public string? Error { get; set; }
    public string? Worker { get; set; }
    public string? JobId { get; set; }
    public List<ParadigmRecord> Paradigms { get; set; } = [];
}

/// <summary>One paradigm's (group's) share of an evaluation.</summary>
public sealed class ParadigmRecord
{
    public long Id { get; set; }
    public int EvaluationId { get; set; }
    public string Name { get; set; } = "";
    public int N { get; set; }
    public double Accuracy { get; set; }
}

/// <summary>One scored item of an evaluation, for paired comparisons. Non-finite scores are stored as null.</summary>
public sealed class ItemRecord
{
    public long Id { get; set; }
    public int EvaluationId { get; set; }
    public string ItemId { get; set; } = "";
    public bool Correct { get; set; }
    public double? ScoreGood { get; set; }
    public double? ScoreBad { get; set; }
    public string? Group { get; set; }
}
