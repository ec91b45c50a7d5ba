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
    /// <summary>The judge of the "score" reward: a checkpoint folder or an OpenAI-compatible server URL; empty = not offered.</summary>
    public string Judge { get; set; } = "";
    /// <summary>The teacher of the "confidence" reward: a checkpoint folder or a server URL; empty = not offered.</summary>
    public string Teacher { get; set; } = "";
}
