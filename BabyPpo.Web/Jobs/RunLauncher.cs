using System.Globalization;
using System.Text.Json.Nodes;
using BabyPpo.Web.Data;
using BabyPpo.Web.Live;
using Microsoft.EntityFrameworkCore;

namespace BabyPpo.Web.Jobs;

/// <summary>Starts, cancels and resumes runs: the database row first (the source of truth), then the Hangfire job.</summary>
public sealed class RunLauncher(IDbContextFactory<BabyPpoDb> dbs, Catalog catalog, JobQueue jobs, RunCancellations cancellations, RunNotifier notifier)
{
    /// <summary>Validates the request; when valid, stores the run (queued), enqueues its training and returns its id. Nothing is stored or enqueued otherwise.</summary>
    public async Task<(int? Id, Dictionary<string, string[]> Errors)> LaunchAsync(JsonObject request, CancellationToken cancellationToken = default)
    {
        var (draft, errors) = RunRequest.Read(request, await catalog.RunChoicesAsync(cancellationToken));
        if (draft is null) return (null, errors);
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var run = new RunRecord
        {
            Name = draft.Name,
            Status = JobStatus.Queued,
            SpecJson = draft.Spec.ToJson(),
            BaseModelId = draft.BaseModelId,
            Reward = string.Join(",", draft.Spec.Rewards.Select(kv => $"{kv.Key}:{kv.Value.ToString(CultureInfo.InvariantCulture)}")),
            PromptSet = draft.Spec.PromptSet,
            Queue = draft.Queue,
            Evaluations = string.Join(",", draft.Evaluations),
            TotalSteps = draft.Spec.Steps ?? 0,
            CreatedAt = DateTime.UtcNow,
        };
        db.Runs.Add(run);
        await db.SaveChangesAsync(cancellationToken);
        run.JobId = jobs.Train(run.Id, run.Queue);
        await db.SaveChangesAsync(cancellationToken);
        return (run.Id, errors);
    }

    /// <summary>
    /// Asks a queued or running run to stop: a queued one is cancelled at once; a running one stops
    /// after its current step with a checkpoint (it can be resumed). False when there is no such run
    /// or it has already ended.
    /// </summary>
    public async Task<bool> CancelAsync(int runId, CancellationToken cancellationToken = default)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var run = await db.Runs.SingleOrDefaultAsync(r => r.Id == runId, cancellationToken);
        if (run is null || run.Status is not (JobStatus.Queued or JobStatus.Running)) return false;
        run.CancelRequested = true;
        bool queued = run.Status == JobStatus.Queued;
        if (queued)
        {
            run.Status = JobStatus.Cancelled;
            run.FinishedAt = DateTime.UtcNow;
        }
        await db.SaveChangesAsync(cancellationToken);
        cancellations.Cancel(runId);
        jobs.Delete(run.JobId);
        if (queued) notifier.Publish(new StatusEvent(runId, JobStatus.Cancelled, null));
        return true;
    }

    /// <summary>Queues a cancelled or failed run again; it continues from its newest checkpoint. False when there is no such run or it has not ended that way.</summary>
    public async Task<bool> ResumeAsync(int runId, CancellationToken cancellationToken = default)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var run = await db.Runs.SingleOrDefaultAsync(r => r.Id == runId, cancellationToken);
        if (run is null || run.Status is not (JobStatus.Cancelled or JobStatus.Failed)) return false;
        run.Status = JobStatus.Queued;
        run.CancelRequested = false;
        run.Error = null;
        run.FinishedAt = null;
        await db.SaveChangesAsync(cancellationToken);
        run.JobId = jobs.Train(run.Id, run.Queue);
        await db.SaveChangesAsync(cancellationToken);
        notifier.Publish(new StatusEvent(runId, JobStatus.Queued, null));
        return true;
    }
}
