using System.Text.Json;
using System.Text.Json.Nodes;
using BabyPpo.Training.Ppo;
using BabyPpo.Training.Rewards;
using BabyPpo.Web.Data;
using BabyPpo.Web.Jobs;
using BabyPpo.Web.Live;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace BabyPpo.Web.Api;

/// <summary>A run as the API and the runs page show it. <c>Status</c> is queued, running, succeeded, failed or cancelled; <c>EtaSeconds</c> is the remaining steps × the last step's seconds; <c>Spec</c> is the run spec with every default filled in.</summary>
public sealed record RunView(
    int Id, string Name, string Status, int Step, int TotalSteps, string BaseModel, string Reward, string PromptSet, string Queue,
    double? RewardMean, double? StepSeconds, double? EtaSeconds, DateTime CreatedAt, DateTime? StartedAt, DateTime? FinishedAt,
    string? Error, string? Worker, IReadOnlyList<string> Evaluations, RunSpec Spec)
{
    public static RunView From(RunRecord r) => new(
        r.Id, r.Name, r.Status.ToString().ToLowerInvariant(), r.Step, r.TotalSteps, r.BaseModel?.Name ?? "", r.Reward, r.PromptSet, r.Queue,
        r.RewardMean, r.StepSeconds,
        r.Status == JobStatus.Running && r.StepSeconds is { } s && r.TotalSteps > r.Step ? s * (r.TotalSteps - r.Step) : null,
        r.CreatedAt, r.StartedAt, r.FinishedAt, r.Error, r.Worker, r.Evaluations.Split(',', StringSplitOptions.RemoveEmptyEntries),
        RunSpec.FromJson(r.SpecJson, $"run {r.Id}"));
}

/// <summary>The id of a created run.</summary>
public sealed record RunCreated(int Id);

/// <summary>
/// The body of POST /api/runs as the OpenAPI document describes it: <see cref="RunSpec"/>'s fields
/// (camelCase) and the run's name, queue and evaluations. Every field but name and baseModel may be
/// left out and keeps its default; nested objects may be partial. The endpoint reads the JSON itself
/// (<see cref="RunRequest"/>), so that every field error is reported at once.
/// </summary>
public sealed record RunRequestDto
{
    /// <summary>The run's name, as lists and the leaderboard show it.</summary>
    public required string Name { get; init; }
    /// <summary>A registered model's name (GET /api/models), e.g. "demo-baby".</summary>
    public required string BaseModel { get; init; }
    /// <summary>A registered model's name as the frozen reference of the KL penalty; null = the base model.</summary>
    public string? ReferenceModel { get; init; }
    /// <summary>A catalogue prompt set present here (GET /api/data: kind prompt-set), e.g. "demo-prompts", "dialogue-train".</summary>
    public string? PromptSet { get; init; }
    /// <summary>Keep only mother utterances with more than this many words; 0 = all.</summary>
    public int? MinPromptWords { get; init; }
    /// <summary>chi-tag: the prompt ends with "*CHI:" and the answer follows; free: the baby must write "*CHI:" itself.</summary>
    public PromptFormat? Format { get; init; }
    /// <summary>Reward names with weights, summed: bleu, semsim, and score / confidence where a judge / teacher is configured.</summary>
    public IReadOnlyDictionary<string, double>? Rewards { get; init; }
    /// <summary>How the rewards are computed (the judge and teacher models are the installation's).</summary>
    public RewardOptions? RewardSettings { get; init; }
    /// <summary>PPO hyper-parameters, trl 0.8.6's names in camelCase; default batch 16, mini-batch 4, trl's values for the rest.</summary>
    public PpoConfig? Ppo { get; init; }
    /// <summary>How answers are sampled.</summary>
    public GenerationSettings? Generation { get; init; }
    /// <summary>PPO steps; give this or epochs.</summary>
    public int? Steps { get; init; }
    /// <summary>Passes over the prompt set, when steps is not given.</summary>
    public double? Epochs { get; init; }
    /// <summary>A resumable checkpoint every this many steps (and at the end, and on cancel).</summary>
    public int? CheckpointEvery { get; init; }
    /// <summary>Step checkpoints kept (those with evaluations are kept besides).</summary>
    public int? KeepCheckpoints { get; init; }
    /// <summary>A sample table every this many steps.</summary>
    public int? SampleEvery { get; init; }
    /// <summary>Rows of each sample table.</summary>
    public int? SampleRows { get; init; }
    /// <summary>Seed of the prompt order, the sampling and the value head's initialisation (ppo.seed orders the mini-batches).</summary>
    public int? Seed { get; init; }
    /// <summary>keep: train on empty answers too; drop: leave them out of the step.</summary>
    public EmptyAnswerPolicy? EmptyAnswers { get; init; }
    /// <summary>Reward of a free-format answer in which the baby never wrote "*CHI:".</summary>
    public double? NoAnswerReward { get; init; }
    /// <summary>The queue of the training job (one of Jobs:Queues); default the first.</summary>
    public string? Queue { get; init; }
    /// <summary>Evaluation sets to score the final checkpoint on (GET /api/data: present evaluation sets).</summary>
    public IReadOnlyList<string>? Evaluations { get; init; }
}

/// <summary>/api/runs: start runs from scripts with the form's fields, follow them, read their metrics, cancel or resume them.</summary>
public static class RunsApi
{
    public static RouteGroupBuilder MapRunsApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/runs").WithTags("Runs");
        api.MapPost("/", Create).Accepts<RunRequestDto>("application/json")
            .WithSummary("Starts a run: the body is a run spec (RunSpec's fields, camelCase; what is left out keeps its default) plus name, queue and evaluations.")
            .WithDescription("201 with the new run's id; 400 with every field error at once, keyed by the field's path (\"ppo.miniBatchSize\"), or under \"body\" for a malformed body (with its line and byte).");
        api.MapGet("/", List).WithSummary("Every run, newest first; filter by status.");
        api.MapGet("/{id:int}", Get).WithSummary("One run: status, step, progress, latest mean reward, error.");
        api.MapGet("/{id:int}/metrics", Metrics)
            .WithSummary("The run's metrics, one object per step (step, env/reward_mean, objective/kl, …).")
            .WithDescription("Each object holds \"step\" and every metric of that step by trl's names (objective/kl, ppo/loss/policy, …) plus env/*, reward/* and time/*; a metric that was not finite is null.");
        api.MapPost("/{id:int}/cancel", Cancel).WithSummary("Stops a queued or running run (a running one after its current step, with a checkpoint).");
        api.MapPost("/{id:int}/resume", Resume).WithSummary("Queues a cancelled or failed run again; it continues from its newest checkpoint.");
        return api;
    }

    /// <summary>
    /// Reads the body itself (not through model binding), so that a malformed body is a 400 that
    /// says where it breaks, and every field error of a well-formed one is reported at once.
    /// </summary>
    static async Task<Results<Created<RunCreated>, ValidationProblem>> Create(HttpRequest http, RunLauncher launcher, CancellationToken cancellationToken)
    {
        JsonObject body;
        try
        {
            var node = await JsonNode.ParseAsync(http.Body, cancellationToken: cancellationToken);
            if (node is not JsonObject o) return BodyProblem($"expected a JSON object with the run's fields, got {(node is null ? "null" : node.GetValueKind().ToString().ToLowerInvariant())}");
            body = o;
            _ = body.Count;   // a repeated field name shows up when the object is first read
        }
        catch (JsonException e)
        {
            var where = e.LineNumber is long line ? $" at line {line + 1}, byte {e.BytePositionInLine + 1}" : "";
            return BodyProblem($"malformed JSON{where}: {e.Message.Split(" LineNumber:")[0].Split(" Path:")[0]}");
        }
        catch (ArgumentException e)
        {
            return BodyProblem($"malformed JSON: a field name appears twice ({e.Message})");
        }
        var (id, errors) = await launcher.LaunchAsync(body, cancellationToken);
        return id is int runId ? TypedResults.Created($"/api/runs/{runId}", new RunCreated(runId)) : TypedResults.ValidationProblem(errors);
    }

    static ValidationProblem BodyProblem(string message) =>
        TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["body"] = [message] });

    static async Task<Ok<List<RunView>>> List(IDbContextFactory<BabyPpoDb> dbs, string? status, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var runs = await db.Runs.AsNoTracking().Include(r => r.BaseModel).OrderByDescending(r => r.Id).ToListAsync(cancellationToken);
        return TypedResults.Ok(runs.Select(RunView.From).Where(r => status is null || r.Status == status).ToList());
    }

    static async Task<Results<Ok<RunView>, NotFound>> Get(int id, IDbContextFactory<BabyPpoDb> dbs, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var run = await db.Runs.AsNoTracking().Include(r => r.BaseModel).SingleOrDefaultAsync(r => r.Id == id, cancellationToken);
        return run is null ? TypedResults.NotFound() : TypedResults.Ok(RunView.From(run));
    }

    static async Task<Results<Ok<List<Dictionary<string, double?>>>, NotFound>> Metrics(int id, IDbContextFactory<BabyPpoDb> dbs, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        if (!await db.Runs.AnyAsync(r => r.Id == id, cancellationToken)) return TypedResults.NotFound();
        var steps = await db.Metrics.AsNoTracking().Where(m => m.RunId == id).OrderBy(m => m.Step).ToListAsync(cancellationToken);
        return TypedResults.Ok(steps.Select(m => MetricsJson.StepObject(m.Step, m.Values)).ToList());
    }

    static async Task<Results<Accepted, NotFound, Conflict<string>>> Cancel(int id, IDbContextFactory<BabyPpoDb> dbs, RunLauncher launcher, CancellationToken cancellationToken)
    {
        if (await launcher.CancelAsync(id, cancellationToken)) return TypedResults.Accepted($"/api/runs/{id}");
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        return await db.Runs.AnyAsync(r => r.Id == id, cancellationToken) ? TypedResults.Conflict("the run has already ended") : TypedResults.NotFound();
    }

    static async Task<Results<Accepted, NotFound, Conflict<string>>> Resume(int id, IDbContextFactory<BabyPpoDb> dbs, RunLauncher launcher, CancellationToken cancellationToken)
    {
        if (await launcher.ResumeAsync(id, cancellationToken)) return TypedResults.Accepted($"/api/runs/{id}");
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        return await db.Runs.AnyAsync(r => r.Id == id, cancellationToken) ? TypedResults.Conflict("only a cancelled or failed run can be resumed") : TypedResults.NotFound();
    }
}
