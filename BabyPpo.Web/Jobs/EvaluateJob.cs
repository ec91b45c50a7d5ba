using System.Text.Json;
using BabyPpo.Evaluation;
using BabyPpo.Training;
using BabyPpo.Training.Inference;
using BabyPpo.Training.Model;
using BabyPpo.Web.Data;
using BabyPpo.Web.Live;
using Hangfire;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace BabyPpo.Web.Jobs;

/// <summary>
/// Evaluates one model or checkpoint on one task: loads the request from the database, fetches the
/// checkpoint, calls <see cref="Tasks.Run"/> as the CLI does, and stores the report (summary, per
/// paradigm, per item).
/// </summary>
public sealed class EvaluateJob(
    IDbContextFactory<BabyPpoDb> dbs,
    FolderStore folders,
    Catalog catalog,
    RunNotifier notifier,
    JobQueue jobs,
    IOptions<WorkOptions> work,
    ILogger<EvaluateJob> logger)
{
    const int ItemBatch = 5000;

    [AutomaticRetry(Attempts = 0)]
    public void Run(int evaluationId, CancellationToken cancellationToken)
    {
        EvaluationRecord? evaluation;
        int? folderId;
        using (var db = dbs.CreateDbContext())
        {
            evaluation = db.Evaluations.Include(e => e.Checkpoint).SingleOrDefault(e => e.Id == evaluationId);
            if (evaluation is null)
            {
                logger.LogWarning("Evaluation {EvaluationId} is not in the database: nothing to do", evaluationId);
                return;
            }
            if (evaluation.Status is not (JobStatus.Queued or JobStatus.Running)) return;
            if (!jobs.MayTakeOver(evaluation.JobId))
            {
                logger.LogWarning("Evaluation {EvaluationId} belongs to the live job {Owner}; job {Job} leaves it alone", evaluationId, evaluation.JobId, CurrentJob.Id);
                return;
            }
            folderId = evaluation.Checkpoint?.FolderId ?? db.Models.Where(m => m.Id == evaluation.ModelId).Select(m => (int?)m.FolderId).SingleOrDefault();
            if (folderId is not null)
            {
                evaluation.Status = JobStatus.Running;
                evaluation.Worker = JobQueue.Worker;
                evaluation.JobId = CurrentJob.Id ?? evaluation.JobId;
                db.SaveChanges();
            }
        }
        if (folderId is null)
        {
            // The checkpoint (or model) was deleted after the evaluation was asked for: say so rather than lose it.
            Finish(evaluationId, JobStatus.Failed, $"{evaluation.Label} no longer exists (its checkpoint was deleted before it could be evaluated)");
            return;
        }
        try
        {
            var choice = catalog.Evaluations().FirstOrDefault(e => e.Name == evaluation.Task)
                ?? throw new InputException($"the evaluation set \"{evaluation.Task}\" is not on this machine (see the data catalogue)");
            var folder = folders.FetchAsync(folderId.Value, Path.Combine(Path.GetFullPath(work.Value.Folder), "cache"), cancellationToken).GetAwaiter().GetResult();
            EvalReport report;
            using (var pretrained = Checkpoint.Load(folder, new TorchSharp.torch.Device(work.Value.Device)))
            {
                var scorer = new Scorer(pretrained.Model, pretrained.Tokenizer);
                report = Tasks.Run(choice.Task, scorer, choice.Path, new EvalOptions { ModelName = evaluation.Label }, null, cancellationToken);
            }
            Store(evaluationId, report);
            Finish(evaluationId, JobStatus.Succeeded, null);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;   // shutdown: the evaluation is queued again on the next start
        }
        catch (Exception e)
        {
            logger.LogError(e, "Evaluation {EvaluationId} failed", evaluationId);
            Finish(evaluationId, JobStatus.Failed, e is InputException ? e.Message : $"{e.GetType().Name}: {e.Message}");
        }
    }

    void Store(int evaluationId, EvalReport report)
    {
        using var db = dbs.CreateDbContext();
        db.Items.Where(i => i.EvaluationId == evaluationId).ExecuteDelete();
        db.Paradigms.Where(p => p.EvaluationId == evaluationId).ExecuteDelete();
        var evaluation = db.Evaluations.Single(e => e.Id == evaluationId);
        evaluation.Dataset = report.Dataset;
        evaluation.N = report.N;
        evaluation.Accuracy = report.Accuracy;
        evaluation.MacroAccuracy = report.MacroAccuracy;
        evaluation.CiLow = report.HeadlineCi95.Low;      // shown beside the headline (macro average where there are groups)
        evaluation.CiHigh = report.HeadlineCi95.High;
        evaluation.Unscorable = report.Unscorable;
        evaluation.Options = JsonSerializer.Serialize(report.Options);
        db.Paradigms.AddRange(report.PerParadigm.Select(p => new ParadigmRecord { EvaluationId = evaluationId, Name = p.Key, N = p.Value.N, Accuracy = p.Value.Accuracy }));
        db.SaveChanges();
        foreach (var batch in report.Items.Chunk(ItemBatch))
        {
            db.ChangeTracker.Clear();
            db.Items.AddRange(batch.Select(i => new ItemRecord
            {
                EvaluationId = evaluationId, ItemId = i.Id, Correct = i.Correct, Group = i.Group,
                ScoreGood = double.IsFinite(i.ScoreGood) ? i.ScoreGood : null,
                ScoreBad = double.IsFinite(i.ScoreBad) ? i.ScoreBad : null,
            }));
            db.SaveChanges();
        }
    }

    void Finish(int evaluationId, JobStatus status, string? error)
    {
        using (var db = dbs.CreateDbContext())
        {
            db.Evaluations.Where(e => e.Id == evaluationId).ExecuteUpdate(s => s
                .SetProperty(e => e.Status, status).SetProperty(e => e.Error, error).SetProperty(e => e.FinishedAt, DateTime.UtcNow));
        }
        notifier.Publish(new EvaluationEvent(evaluationId, status));
    }
}
