using BabyPpo.Web.Jobs;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace BabyPpo.Web.Data;

/// <summary>
/// Runs before the job server and the web server start: applies the database migrations, registers
/// the models found in the models folder, and puts back on the queue every run and evaluation that
/// the database says is queued or running but that has no live job (a restart loses no run): one
/// that was lost with an in-memory storage, or that was processing in a process that has gone.
/// </summary>
public sealed class Startup(
    IDbContextFactory<BabyPpoDb> dbs,
    ModelRegistry models,
    JobQueue jobs,
    IOptions<ModelsOptions> modelsOptions,
    ILogger<Startup> logger) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await using (var db = await dbs.CreateDbContextAsync(cancellationToken))
        {
            await db.Database.MigrateAsync(cancellationToken);
        }
        foreach (var name in await models.RegisterFolderModelsAsync(Path.GetFullPath(modelsOptions.Value.Folder), cancellationToken))
            logger.LogInformation("Registered the model {Name} from {Folder}", name, modelsOptions.Value.Folder);
        await RequeueAsync(cancellationToken);
    }

    async Task RequeueAsync(CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        foreach (var run in await db.Runs.Where(r => r.Status == JobStatus.Queued || r.Status == JobStatus.Running).ToListAsync(cancellationToken))
        {
            if (jobs.IsAlive(run.JobId)) continue;
            jobs.Delete(run.JobId);   // a job left by a crashed process must never run beside its replacement
            run.JobId = jobs.Train(run.Id, run.Queue);
            logger.LogInformation("Run {RunId} ({Status} at step {Step}) had no live job: queued again, it resumes from its last checkpoint", run.Id, run.Status, run.Step);
        }
        foreach (var evaluation in await db.Evaluations.Where(e => e.Status == JobStatus.Queued || e.Status == JobStatus.Running).ToListAsync(cancellationToken))
        {
            if (jobs.IsAlive(evaluation.JobId)) continue;
            jobs.Delete(evaluation.JobId);
            evaluation.JobId = jobs.Evaluate(evaluation.Id, evaluation.Queue);
            logger.LogInformation("Evaluation {EvaluationId} had no live job: queued again", evaluation.Id);
        }
        await db.SaveChangesAsync(cancellationToken);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
