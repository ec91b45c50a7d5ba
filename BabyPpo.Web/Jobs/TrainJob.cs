using BabyPpo.Training;
using BabyPpo.Training.Ppo;
using BabyPpo.Training.Rewards;
using BabyPpo.Web.Data;
using BabyPpo.Web.Live;
using Hangfire;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace BabyPpo.Web.Jobs;

/// <summary>
/// Trains one run: loads its spec from the database, fetches the base model (and the newest
/// checkpoint, when resuming on a machine that lacks it), and calls <see cref="PpoRun.Run"/> as the
/// CLI does. Each step goes to the database and the notifier; each checkpoint into the database.
/// A shutdown leaves the run running, to be resumed from its last checkpoint on the next start.
/// </summary>
public sealed class TrainJob(
    IDbContextFactory<BabyPpoDb> dbs,
    FolderStore folders,
    RunNotifier notifier,
    RunCancellations cancellations,
    EvaluationLauncher evaluations,
    JobQueue jobs,
    IOptions<DataOptions> data,
    IOptions<WorkOptions> work,
    IOptions<RewardsOptions> rewardModels,
    ILogger<TrainJob> logger)
{
    [AutomaticRetry(Attempts = 0)]
    public void Run(int runId, CancellationToken cancellationToken)
    {
        RunRecord run;
        using (var db = dbs.CreateDbContext())
        {
            run = db.Runs.Include(r => r.BaseModel).AsNoTracking().Single(r => r.Id == runId);
        }
        if (run.Status is not (JobStatus.Queued or JobStatus.Running)) return;
        if (!jobs.MayTakeOver(run.JobId))
        {
            logger.LogWarning("Run {RunId} belongs to the live job {Owner}; job {Job} leaves it alone", runId, run.JobId, CurrentJob.Id);
            return;
        }
        if (run.CancelRequested)
        {
            Finish(runId, JobStatus.Cancelled, null);
            return;
        }
        Update(runId, r => r.Status = JobStatus.Running, r => r.StartedAt ??= DateTime.UtcNow, r => r.Worker = JobQueue.Worker, r => r.Error = null,
            r => r.JobId = CurrentJob.Id ?? r.JobId);
        notifier.Publish(new StatusEvent(runId, JobStatus.Running, null));

        using var cancellation = cancellations.Register(runId, cancellationToken);
        try
        {
            var spec = RunSpec.FromJson(run.SpecJson, $"run {runId}");
            var cache = Path.Combine(Path.GetFullPath(work.Value.Folder), "cache");
            var baseModel = folders.FetchAsync(run.BaseModel!.FolderId, cache, cancellationToken).GetAwaiter().GetResult();
            var runFolder = Path.Combine(Path.GetFullPath(work.Value.Folder), "runs", runId.ToString());
            int start = PrepareResume(runId, runFolder, cancellationToken);
            logger.LogInformation("Run {RunId}: training from step {Step} in {Folder}", runId, start, runFolder);

            using var judge = spec.Rewards.ContainsKey("score") && rewardModels.Value.Judge.IsSet ? rewardModels.Value.Judge.Open(work.Value.Device) : null;
            using var teacher = spec.Rewards.ContainsKey("confidence") && rewardModels.Value.Teacher.IsSet ? rewardModels.Value.Teacher.Open(work.Value.Device) : null;
            var reward = RewardFactory.Create(spec.Rewards, spec.RewardSettings with { Judge = judge, Teacher = teacher });
            var environment = new RunEnvironment(runFolder, Path.GetFullPath(data.Value.Root), Path.GetFullPath(data.Value.DemoRoot), work.Value.Device);
            var result = PpoRun.Run(spec with { BaseModel = baseModel }, reward, environment, resume: true,
                new StepWriter(stats => WriteStep(runId, stats)), saved => StoreCheckpoint(runId, saved, spec.KeepCheckpoints), cancellation.Token);

            if (!result.Cancelled)
            {
                Finish(runId, JobStatus.Succeeded, null);
                EvaluateFinal(run);
            }
            else if (CancelRequested(runId)) Finish(runId, JobStatus.Cancelled, null);
            else cancellationToken.ThrowIfCancellationRequested();
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested && !CancelRequested(runId))
        {
            logger.LogInformation("Run {RunId}: stopped by shutdown; it resumes from its last checkpoint on the next start", runId);
            throw;
        }
        catch (OperationCanceledException) when (CancelRequested(runId))
        {
            Finish(runId, JobStatus.Cancelled, null);
        }
        catch (Exception e)
        {
            logger.LogError(e, "Run {RunId} failed", runId);
            Finish(runId, JobStatus.Failed, e is InputException ? e.Message : $"{e.GetType().Name}: {e.Message}");
        }
    }

    /// <summary>
    /// Makes the run folder hold the newest step checkpoint the database has (fetching it when this
    /// machine lacks it), and forgets in the database what came after it: the run redoes those steps.
    /// A final folder left by a crash before the run was marked finished is redone too. Checkpoints
    /// that have evaluations stay in the database (and keep their evaluations).
    /// </summary>
    int PrepareResume(int runId, string runFolder, CancellationToken cancellationToken)
    {
        var checkpoints = Path.Combine(runFolder, "checkpoints");
        var localFinal = Path.Combine(runFolder, PpoRun.FinalFolder);
        if (Directory.Exists(localFinal)) Directory.Delete(localFinal, recursive: true);
        using var db = dbs.CreateDbContext();
        var stored = db.Checkpoints.AsNoTracking().Where(c => c.RunId == runId && !c.Final).OrderByDescending(c => c.Step).FirstOrDefault();
        var local = PpoRun.LatestCheckpoint(runFolder);
        if (stored is not null && (local is null || local.Value.Step < stored.Step))
        {
            var temp = Path.Combine(checkpoints, $".fetch-{Guid.NewGuid():N}.tmp");
            folders.ExtractAsync(stored.FolderId, temp, cancellationToken).GetAwaiter().GetResult();
            Directory.Move(temp, Path.Combine(checkpoints, $"step-{stored.Step:D6}"));
        }
        int start = PpoRun.LatestCheckpoint(runFolder)?.Step ?? 0;
        db.Metrics.Where(m => m.RunId == runId && m.Step > start).ExecuteDelete();
        db.Samples.Where(s => s.RunId == runId && s.Step > start).ExecuteDelete();
        foreach (var later in db.Checkpoints.Where(c => c.RunId == runId && (c.Step > start || c.Final)).ToList())
            DeleteUnevaluatedCheckpoint(db, later);
        db.Runs.Where(r => r.Id == runId).ExecuteUpdate(s => s.SetProperty(r => r.Step, start));
        return start;
    }

    /// <summary>
    /// Stores a checkpoint the run just wrote, then drops the step checkpoints beyond the newest
    /// <paramref name="keep"/> (as the run does on disk), except those that have evaluations. When an
    /// evaluated checkpoint of the same step is already stored (a redone step), that one stays.
    /// </summary>
    void StoreCheckpoint(int runId, CheckpointSaved saved, int keep)
    {
        using var db = dbs.CreateDbContext();
        var same = db.Checkpoints.Where(c => c.RunId == runId && c.Step == saved.Step && c.Final == saved.Final);
        bool stored = false;
        if (!same.Any(c => db.Evaluations.Any(e => e.CheckpointId == c.Id)))
        {
            var folderId = folders.StoreAsync(saved.Folder).GetAwaiter().GetResult();
            foreach (var checkpoint in same.ToList()) DeleteUnevaluatedCheckpoint(db, checkpoint);
            if (stored = !same.Any())
            {
                db.Checkpoints.Add(new CheckpointRecord { RunId = runId, Step = saved.Step, Final = saved.Final, FolderId = folderId, CreatedAt = DateTime.UtcNow });
                db.SaveChanges();
            }
            else db.Folders.Where(f => f.Id == folderId).ExecuteDelete();   // evaluated meanwhile: that one stays
        }
        if (!stored)
            logger.LogInformation("Run {RunId}: the evaluated checkpoint of step {Step} stored before stays; the redone one is not stored", runId, saved.Step);
        foreach (var old in db.Checkpoints.Where(c => c.RunId == runId && !c.Final).OrderByDescending(c => c.Step).Skip(keep).ToList())
            DeleteUnevaluatedCheckpoint(db, old);
    }

    /// <summary>Deletes the checkpoint and its stored folder unless an evaluation (of any status) refers to it; the check and the delete are one statement.</summary>
    static void DeleteUnevaluatedCheckpoint(BabyPpoDb db, CheckpointRecord checkpoint)
    {
        int deleted = db.Checkpoints.Where(c => c.Id == checkpoint.Id && !db.Evaluations.Any(e => e.CheckpointId == c.Id)).ExecuteDelete();
        if (deleted > 0) db.Folders.Where(f => f.Id == checkpoint.FolderId).ExecuteDelete();
    }

    void EvaluateFinal(RunRecord run)
    {
        var tasks = run.Evaluations.Split(',', StringSplitOptions.RemoveEmptyEntries);
        if (tasks.Length == 0) return;
        using var db = dbs.CreateDbContext();
        var final = db.Checkpoints.AsNoTracking().Single(c => c.RunId == run.Id && c.Final);
        evaluations.LaunchForCheckpoint(final.Id, tasks, run.Queue).GetAwaiter().GetResult();
    }

    bool CancelRequested(int runId)
    {
        using var db = dbs.CreateDbContext();
        return db.Runs.Where(r => r.Id == runId).Select(r => r.CancelRequested).Single();
    }

    void Finish(int runId, JobStatus status, string? error)
    {
        Update(runId, r => r.Status = status, r => r.Error = error, r => r.FinishedAt = DateTime.UtcNow);
        notifier.Publish(new StatusEvent(runId, status, error));
    }

    void Update(int runId, params Action<RunRecord>[] changes)
    {
        using var db = dbs.CreateDbContext();
        var run = db.Runs.Single(r => r.Id == runId);
        foreach (var change in changes) change(run);
        db.SaveChanges();
    }

    /// <summary>Writes a step's metrics and samples, updates the run's progress, and tells the notifier; on the training thread.</summary>
    void WriteStep(int runId, PpoStepStats stats)
    {
        using var db = dbs.CreateDbContext();
        var samples = stats.Samples.Select(s => new SampleRecord
        {
            RunId = runId, Step = s.Step, Prompt = s.Prompt, Answer = s.Answer, Reference = s.Reference,
            Reward = double.IsFinite(s.Reward) ? s.Reward : null,
        }).ToList();
        db.Metrics.Add(new MetricRecord { RunId = runId, Step = stats.Step, Values = MetricsJson.ToJson(stats.Metrics) });
        db.Samples.AddRange(samples);
        var run = db.Runs.Single(r => r.Id == runId);
        run.Step = stats.Step;
        run.TotalSteps = stats.TotalSteps;
        run.RewardMean = Finite(stats.Metrics, "env/reward_mean");
        run.StepSeconds = Finite(stats.Metrics, "time/step");
        db.SaveChanges();
        notifier.Publish(new StepEvent(runId, stats.Step, stats.TotalSteps, stats.Metrics, samples));
        foreach (var warning in stats.Warnings) logger.LogWarning("Run {RunId}: {Warning}", runId, warning);
    }

    static double? Finite(IReadOnlyDictionary<string, double> metrics, string key) =>
        metrics.TryGetValue(key, out var v) && double.IsFinite(v) ? v : null;

    /// <summary>Reports synchronously on the training thread (Progress&lt;T&gt; would post to the thread pool).</summary>
    sealed class StepWriter(Action<PpoStepStats> write) : IProgress<PpoStepStats>
    {
        public void Report(PpoStepStats value) => write(value);
    }
}
