using System.Text.Json;
using System.Text.Json.Nodes;
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
    string? Error, string? Worker, IReadOnlyList<string> Evaluations, JsonObject Spec)
{
    public static RunView From(RunRecord r) => new(
        r.Id, r.Name, r.Status.ToString().ToLowerInvariant(), r.Step, r.TotalSteps, r.BaseModel?.Name ?? "", r.Reward, r.PromptSet, r.Queue,
        r.RewardMean, r.StepSeconds,
        r.Status == JobStatus.Running && r.StepSeconds is { } s && r.TotalSteps > r.Step ? s * (r.TotalSteps - r.Step) : null,
        r.CreatedAt, r.StartedAt, r.FinishedAt, r.Error, r.Worker, r.Evaluations.Split(',', StringSplitOptions.RemoveEmptyEntries),
        JsonNode.Parse(r.SpecJson)!.AsObject());
}

/// <summary>The id of a created run.</summary>
public sealed record RunCreated(int Id);

/// <summary>/api/runs: start runs from scripts with the form's fields, follow them, read their metrics, cancel or resume them.</summary>
public static class RunsApi
{
    public static RouteGroupBuilder MapRunsApi(this IEndpointRouteBuilder app)
    {
        var api = app.MapGroup("/api/runs").WithTags("Runs");
        api.MapPost("/", Create).WithSummary("Starts a run: the body is a run spec (RunSpec's fields, camelCase; what is left out keeps its default) plus name, queue and evaluations.");
        api.MapGet("/", List).WithSummary("Every run, newest first; filter by status.");
        api.MapGet("/{id:int}", Get).WithSummary("One run: status, step, progress, latest mean reward, error.");
        api.MapGet("/{id:int}/metrics", Metrics).WithSummary("The run's metrics, one object per step (step, env/reward_mean, objective/kl, …).");
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

    static async Task<Results<Ok<JsonArray>, NotFound>> Metrics(int id, IDbContextFactory<BabyPpoDb> dbs, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        if (!await db.Runs.AnyAsync(r => r.Id == id, cancellationToken)) return TypedResults.NotFound();
        var steps = await db.Metrics.AsNoTracking().Where(m => m.RunId == id).OrderBy(m => m.Step).ToListAsync(cancellationToken);
        return TypedResults.Ok(new JsonArray([.. steps.Select(m => MetricsJson.StepObject(m.Step, m.Values))]));
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
