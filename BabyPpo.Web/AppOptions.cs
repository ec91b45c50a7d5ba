using BabyPpo.Training.Rewards;

namespace BabyPpo.Web;

/// <summary>Which database holds models, runs, metrics, checkpoints and evaluations.</summary>
public enum DatabaseProvider
{
    /// <summary>An embedded SQLite file (connection string "Sqlite").</summary>
    Sqlite,
    /// <summary>A PostgreSQL server (connection string "Postgres").</summary>
    Postgres,
}

/// <summary>Where Hangfire keeps its queues.</summary>
public enum JobStorageKind
{
    /// <summary>In this process's memory: jobs run in the web process and are lost on exit (the database re-enqueues them).</summary>
    InMemory,
    /// <summary>PostgreSQL (connection string "Postgres"): workers on other machines can take jobs.</summary>
    Postgres,
}

/// <summary>Section "Database".</summary>
public sealed class DatabaseOptions
{
    public DatabaseProvider Provider { get; set; } = DatabaseProvider.Sqlite;
}

/// <summary>Section "Jobs": Hangfire's storage, and the job server of this process.</summary>
public sealed class JobsOptions
{
    public JobStorageKind Storage { get; set; } = JobStorageKind.InMemory;
    /// <summary>Run a job server in this process (false: a web front end only, workers elsewhere).</summary>
    public bool Server { get; set; } = true;
    /// <summary>Jobs this process runs at once; 1 means one training job at a time.</summary>
    public int Workers { get; set; } = 1;
    /// <summary>Queues this process's server takes jobs from; the form offers them. The first is the default.</summary>
    public string[] Queues { get; set; } = ["default"];
    /// <summary>
    /// PostgreSQL storage: seconds after which a job whose worker stopped renewing its claim (a
    /// crashed process) is taken by another server. The claim is renewed every fifth of this while
    /// the job runs, so a long run is never taken from a live worker.
    /// </summary>
    public int InvisibilityTimeoutSeconds { get; set; } = 120;
}

/// <summary>Section "Data": where the data sets are.</summary>
public sealed class DataOptions
{
    /// <summary>The data root of <see cref="BabyPpo.Training.Data.DataCatalog"/> (CHILDES sets, Zorro, …).</summary>
    public string Root { get; set; } = "data";
    /// <summary>The team's demo sets (the repository's data/demo).</summary>
    public string DemoRoot { get; set; } = "data/demo";
}

/// <summary>Section "Models".</summary>
public sealed class ModelsOptions
{
    /// <summary>Every checkpoint folder directly under this folder is registered on first start (models/demo-baby → "demo-baby").</summary>
    public string Folder { get; set; } = "models";
}

/// <summary>Section "Work": this machine's scratch space for runs.</summary>
public sealed class WorkOptions
{
    /// <summary>Run folders and the cache of checkpoints fetched from the database.</summary>
    public string Folder { get; set; } = "data/work";
    /// <summary>Torch device of training and evaluation ("cpu", "cuda").</summary>
    public string Device { get; set; } = "cpu";
    /// <summary>
    /// libtorch's CPU threads for training and evaluation; 0 = one per core. On a small machine
    /// shared with other work, 1 avoids libtorch's threads stalling on each other.
    /// </summary>
    public int Threads { get; set; }
}

/// <summary>Section "Rewards": the language models behind the LLM-based rewards.</summary>
public sealed class RewardsOptions
{
    /// <summary>The judge of the "score" reward; the reward is offered when its <see cref="RewardModelOptions.Source"/> is set.</summary>
    public RewardModelOptions Judge { get; set; } = new();
    /// <summary>The teacher of the "confidence" reward; the reward is offered when its <see cref="RewardModelOptions.Source"/> is set.</summary>
    public RewardModelOptions Teacher { get; set; } = new();
}

/// <summary>
/// One reward model: a checkpoint folder run in the worker's process, or an OpenAI-compatible
/// server (<c>/v1/completions</c>) with its key and limits. Opened by <see cref="LlmBackend.Open"/>,
/// as the CLI's --judge / --teacher.
/// </summary>
public sealed class RewardModelOptions
{
    static readonly OpenAiOptions ServerDefaults = new() { BaseUrl = "" };

    /// <summary>A checkpoint folder or a server URL (http:// or https://); empty = the reward is not offered.</summary>
    public string Source { get; set; } = "";
    /// <summary>Folder only: a tokenizer.json (or its folder) for a checkpoint that has none; empty = the folder's own.</summary>
    public string Tokenizer { get; set; } = "";
    /// <summary>Server only: the model to ask for; empty = the first one the server lists.</summary>
    public string Model { get; set; } = "";
    /// <summary>Server only: sent as "Authorization: Bearer …"; empty = no key.</summary>
    public string ApiKey { get; set; } = "";
    /// <summary>Server only: seconds allowed for one attempt of one request.</summary>
    public double TimeoutSeconds { get; set; } = ServerDefaults.Timeout.TotalSeconds;
    /// <summary>Server only: further attempts after a timeout, a lost connection, 408, 429 or a 5xx.</summary>
    public int MaxRetries { get; set; } = ServerDefaults.MaxRetries;
    /// <summary>Server only: seconds before the first retry, doubled at each further one (a Retry-After header wins).</summary>
    public double InitialBackoffSeconds { get; set; } = ServerDefaults.InitialBackoff.TotalSeconds;
    /// <summary>Server only: requests in flight at once.</summary>
    public int MaxConcurrency { get; set; } = ServerDefaults.MaxConcurrency;
    /// <summary>Server only: prompts sent in one request.</summary>
    public int PromptsPerRequest { get; set; } = ServerDefaults.PromptsPerRequest;

    public bool IsSet => Source.Length > 0;

    /// <summary>Opens the back-end (a server URL's options, or a folder on <paramref name="device"/>); the caller disposes it.</summary>
    public ILlmBackend Open(string device)
    {
        bool server = LlmBackend.IsUrl(Source);
        return LlmBackend.Open(Source, NullIfEmpty(Tokenizer), NullIfEmpty(Model), NullIfEmpty(ApiKey), server ? null : new TorchSharp.torch.Device(device),
            new OpenAiOptions
            {
                BaseUrl = Source,
                Timeout = TimeSpan.FromSeconds(TimeoutSeconds),
                MaxRetries = MaxRetries,
                InitialBackoff = TimeSpan.FromSeconds(InitialBackoffSeconds),
                MaxConcurrency = MaxConcurrency,
                PromptsPerRequest = PromptsPerRequest,
            });
    }

    static string? NullIfEmpty(string value) => value.Length == 0 ? null : value;
}
