using BabyPpo.Training;
using BabyPpo.Web.Data;
using BabyPpo.Web.Jobs;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace BabyPpo.Web.Api;

/// <summary>A request to evaluate a registered model (by name) or a run's checkpoint (by id) on some tasks.</summary>
public sealed record EvaluationRequest(string? Model, int? CheckpointId, IReadOnlyList<string>? Tasks, string? Queue);

/// <summary>The ids of the created evaluations, one per task.</summary>
public sealed record EvaluationsCreated(IReadOnlyList<int> Ids);

/// <summary>An evaluation's state and summary.</summary>
public sealed record EvaluationView(int Id, string Label, string Task, string Status, int N, double? Accuracy, double? MacroAccuracy, double? CiLow, double? CiHigh, string? Error);

/// <summary>One task of a paired comparison: B − A, its 95% interval, and McNemar's exact p.</summary>
public sealed record ComparisonView(string Task, int N, double AccuracyA, double AccuracyB, double Difference, double CiLow, double CiHigh, int OnlyACorrect, int OnlyBCorrect, double McNemarP);

/// <summary>/api/evaluations and /api/leaderboard: evaluate models and checkpoints, read and compare the results.</summary>
public static class ResultsApi
{
    public static IEndpointRouteBuilder MapResultsApi(this IEndpointRouteBuilder app)
    {
        var evaluations = app.MapGroup("/api/evaluations").WithTags("Evaluations");
        evaluations.MapPost("/", Create).WithSummary("Evaluates a model (\"model\": name) or a checkpoint (\"checkpointId\") on the given tasks (evaluation data set names).");
        evaluations.MapGet("/{id:int}", Get).WithSummary("One evaluation: status and summary.");

        var leaderboard = app.MapGroup("/api/leaderboard").WithTags("Leaderboard");
        leaderboard.MapGet("/", (Leaderboard board, CancellationToken cancellationToken) => board.EntriesAsync(cancellationToken))
            .WithSummary("Models and checkpoints × tasks: accuracy (macro over paradigms when grouped) with the 95% bootstrap interval.");
        leaderboard.MapGet("/compare", Compare).WithSummary("Row b against row a (model or checkpoint labels) on every task both have.");
        leaderboard.MapGet("/export", Export).WithSummary("The leaderboard as CSV (format=csv) or Markdown (format=markdown).");
        return app;
    }

    static async Task<Results<Created<EvaluationsCreated>, ValidationProblem>> Create(EvaluationRequest request, IDbContextFactory<BabyPpoDb> dbs,
        EvaluationLauncher launcher, Catalog catalog, CancellationToken cancellationToken)
    {
        var tasks = request.Tasks ?? [];
        var queue = request.Queue ?? catalog.Queues()[0];
        var errors = launcher.Check(tasks, queue);
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        int? modelId = null;
        if ((request.Model is null) == (request.CheckpointId is null))
            errors["model"] = ["give either a model name or a checkpoint id"];
        else if (request.Model is not null && (modelId = await db.Models.Where(m => m.Name == request.Model).Select(m => (int?)m.Id).SingleOrDefaultAsync(cancellationToken)) is null)
            errors["model"] = [$"no registered model \"{request.Model}\""];
        else if (request.CheckpointId is int c && !await db.Checkpoints.AnyAsync(x => x.Id == c, cancellationToken))
            errors["checkpointId"] = [$"no checkpoint {c}"];
        if (errors.Count > 0) return TypedResults.ValidationProblem(errors);
        try
        {
            var ids = modelId is int m
                ? await launcher.LaunchForModel(m, tasks, queue, cancellationToken)
                : await launcher.LaunchForCheckpoint(request.CheckpointId!.Value, tasks, queue, cancellationToken);
            return TypedResults.Created($"/api/evaluations/{ids[0]}", new EvaluationsCreated(ids));
        }
        catch (InputException e)
        {
            // The checkpoint was rotated away between the check above and the launch.
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["checkpointId"] = [e.Message] });
        }
    }

    static async Task<Results<Ok<EvaluationView>, NotFound>> Get(int id, IDbContextFactory<BabyPpoDb> dbs, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var e = await db.Evaluations.AsNoTracking().SingleOrDefaultAsync(x => x.Id == id, cancellationToken);
        return e is null
            ? TypedResults.NotFound()
            : TypedResults.Ok(new EvaluationView(e.Id, e.Label, e.Task, e.Status.ToString().ToLowerInvariant(), e.N, e.Accuracy, e.MacroAccuracy, e.CiLow, e.CiHigh, e.Error));
    }

    static async Task<Ok<List<ComparisonView>>> Compare(string a, string b, Leaderboard board, CancellationToken cancellationToken) =>
        TypedResults.Ok((await board.CompareAsync(a, b, cancellationToken)).Select(t => new ComparisonView(t.Task, t.Comparison.N,
            t.Comparison.AccuracyA, t.Comparison.AccuracyB, t.Comparison.Difference, t.Comparison.DifferenceCi95.Low, t.Comparison.DifferenceCi95.High,
            t.Comparison.OnlyACorrect, t.Comparison.OnlyBCorrect, t.Comparison.McNemarP)).ToList());

    static async Task<Results<FileContentHttpResult, BadRequest<string>>> Export(string? format, Leaderboard board, CancellationToken cancellationToken)
    {
        var entries = await board.EntriesAsync(cancellationToken);
        return format switch
        {
            null or "csv" => TypedResults.File(System.Text.Encoding.UTF8.GetBytes(Leaderboard.ToCsv(entries)), "text/csv", "leaderboard.csv"),
            "markdown" or "md" => TypedResults.File(System.Text.Encoding.UTF8.GetBytes(Leaderboard.ToMarkdown(entries)), "text/markdown", "leaderboard.md"),
            _ => TypedResults.BadRequest($"unknown format \"{format}\"; expected csv or markdown"),
        };
    }
}
