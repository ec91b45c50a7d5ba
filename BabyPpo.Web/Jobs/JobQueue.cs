using Hangfire;
using Hangfire.Common;
using Hangfire.States;

namespace BabyPpo.Web.Jobs;

/// <summary>Enqueues the app's jobs on named queues through the injected Hangfire client, and asks the storage whether a job is still alive.</summary>
public sealed class JobQueue(IBackgroundJobClient client, JobStorage storage)
{
    /// <summary>This machine and process, as runs record their worker.</summary>
    public static string Worker { get; } = $"{Environment.MachineName}:{Environment.ProcessId}";

    static readonly string[] AliveStates = [EnqueuedState.StateName, ProcessingState.StateName, ScheduledState.StateName, AwaitingState.StateName];

    public string Train(int runId, string queue) =>
        client.Create(Job.FromExpression<TrainJob>(job => job.Run(runId, CancellationToken.None)), new EnqueuedState(queue));

    public string Evaluate(int evaluationId, string queue) =>
        client.Create(Job.FromExpression<EvaluateJob>(job => job.Run(evaluationId, CancellationToken.None)), new EnqueuedState(queue));

    /// <summary>Moves the job to the deleted state; a running job sees its cancellation token fire.</summary>
    public void Delete(string? jobId)
    {
        if (jobId is not null) client.Delete(jobId);
    }

    /// <summary>True when the job exists and is waiting or running (not finished, failed, deleted or lost with an in-memory storage).</summary>
    public bool IsAlive(string? jobId)
    {
        if (jobId is null) return false;
        using var connection = storage.GetConnection();
        return connection.GetStateData(jobId)?.Name is { } state && AliveStates.Contains(state);
    }
}
