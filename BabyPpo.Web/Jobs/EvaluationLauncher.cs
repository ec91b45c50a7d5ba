using BabyPpo.Training;
using BabyPpo.Web.Data;
using Microsoft.EntityFrameworkCore;

namespace BabyPpo.Web.Jobs;

/// <summary>Creates evaluation rows (status queued) for a model or a checkpoint and enqueues their jobs.</summary>
public sealed class EvaluationLauncher(IDbContextFactory<BabyPpoDb> dbs, Catalog catalog, JobQueue jobs)
{
    /// <summary>Field errors of a request to evaluate: unknown tasks or queue.</summary>
    public Dictionary<string, string[]> Check(IReadOnlyCollection<string> tasks, string queue)
    {
        var errors = new Dictionary<string, string[]>();
        var offered = catalog.Evaluations().Select(e => e.Name).ToList();
        var unknown = tasks.Where(t => !offered.Contains(t)).ToList();
        if (tasks.Count == 0) errors["tasks"] = ["choose at least one evaluation"];
        else if (unknown.Count > 0) errors["tasks"] = [$"not available here: {string.Join(", ", unknown)}; expected some of {string.Join(", ", offered)}"];
        if (!catalog.Queues().Contains(queue)) errors["queue"] = [$"unknown queue \"{queue}\"; expected one of {string.Join(", ", catalog.Queues())}"];
        return errors;
    }

    public async Task<List<int>> LaunchForModel(int modelId, IReadOnlyCollection<string> tasks, string queue, CancellationToken cancellationToken = default)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var model = await db.Models.SingleAsync(m => m.Id == modelId, cancellationToken);
        return await Launch(db, tasks, queue, model.Name, modelId, null, cancellationToken);
    }

    public async Task<List<int>> LaunchForCheckpoint(int checkpointId, IReadOnlyCollection<string> tasks, string queue, CancellationToken cancellationToken = default)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var checkpoint = await db.Checkpoints.Include(c => c.Run).SingleOrDefaultAsync(c => c.Id == checkpointId, cancellationToken)
            ?? throw new InputException($"checkpoint {checkpointId} no longer exists (the run keeps only its newest step checkpoints and those with evaluations)");
        return await Launch(db, tasks, queue, Label(checkpoint), null, checkpointId, cancellationToken);
    }

    /// <summary>How the leaderboard names a checkpoint: "run-name #id final" or "run-name #id step 40".</summary>
    public static string Label(CheckpointRecord checkpoint) =>
        $"{checkpoint.Run!.Name} #{checkpoint.RunId} {(checkpoint.Final ? "final" : $"step {checkpoint.Step}")}";

    async Task<List<int>> Launch(BabyPpoDb db, IReadOnlyCollection<string> tasks, string queue, string label, int? modelId, int? checkpointId, CancellationToken cancellationToken)
    {
        var records = tasks.Select(task => new EvaluationRecord
        {
            Task = task, Label = label, ModelId = modelId, CheckpointId = checkpointId, Queue = queue,
            Status = JobStatus.Queued, CreatedAt = DateTime.UtcNow,
        }).ToList();
        db.Evaluations.AddRange(records);
        await db.SaveChangesAsync(cancellationToken);
        foreach (var record in records) record.JobId = jobs.Evaluate(record.Id, queue);
        await db.SaveChangesAsync(cancellationToken);
        return records.Select(r => r.Id).ToList();
    }
}
