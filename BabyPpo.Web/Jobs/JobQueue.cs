using System.Diagnostics;
using Hangfire;
using Hangfire.Common;
using Hangfire.Server;
using Hangfire.States;

namespace BabyPpo.Web.Jobs;

/// <summary>
/// Enqueues the app's jobs on named queues through the injected Hangfire client, and asks the
/// storage whether a job is still alive: waiting, or processing on a job server that still exists.
/// </summary>
public sealed class JobQueue(IBackgroundJobClient client, JobStorage storage, ILogger<JobQueue> logger)
{
    /// <summary>This machine and process, as runs record their worker.</summary>
    public static string Worker { get; } = $"{Environment.MachineName}:{Environment.ProcessId}";

    static readonly string[] AliveStates = [EnqueuedState.StateName, ProcessingState.StateName, ScheduledState.StateName, AwaitingState.StateName];

    public string Train(int runId, string queue) =>
        client.Create(Job.FromExpression<TrainJob>(job => job.Run(runId, CancellationToken.None)), new EnqueuedState(queue));

    public string Evaluate(int evaluationId, string queue) =>
        client.Create(Job.FromExpression<EvaluateJob>(job => job.Run(evaluationId, CancellationToken.None)), new EnqueuedState(queue));

    /// <summary>Moves the job to the deleted state; a running job sees its cancellation token fire, and a fetched one is never performed.</summary>
    public void Delete(string? jobId)
    {
        if (jobId is not null) client.Delete(jobId);
    }

    /// <summary>
    /// True when the job exists and is waiting, or is processing on a job server that is still
    /// there: listed among the storage's servers and, when that server is on this machine, with its
    /// process still running. False when it has finished, failed, been deleted, was lost with an
    /// in-memory storage, or was processing in a process that has gone (a crash): its run would
    /// otherwise wait for the storage's invisibility timeout before any server takes it again.
    /// </summary>
    public bool IsAlive(string? jobId)
    {
        if (jobId is null) return false;
        using var connection = storage.GetConnection();
        var state = connection.GetStateData(jobId);
        if (state is null || !AliveStates.Contains(state.Name)) return false;
        if (state.Name != ProcessingState.StateName || !state.Data.TryGetValue("ServerId", out var serverId)) return true;
        if (!storage.GetMonitoringApi().Servers().Any(s => s.Name == serverId))
        {
            logger.LogInformation("Job {JobId} was processing on {Server}, which is no longer among the job servers", jobId, serverId);
            return false;
        }
        if (ProcessOnThisMachine(serverId) is int pid && pid != Environment.ProcessId && !ProcessRuns(pid))
        {
            logger.LogInformation("Job {JobId} was processing on {Server}, whose process {Pid} on this machine has ended", jobId, serverId, pid);
            return false;
        }
        return true;
    }

    /// <summary>
    /// Whether the job being performed on this thread may work on a record that names
    /// <paramref name="recordedJobId"/> as its owner: yes when they are the same job, when either is
    /// unknown, or when the recorded job is no longer alive (it is then taken over).
    /// </summary>
    public bool MayTakeOver(string? recordedJobId) =>
        CurrentJob.Id is not { } current || recordedJobId is null || recordedJobId == current || !IsAlive(recordedJobId);

    /// <summary>The process id in a Hangfire server id ("machine:pid:guid") when the machine is this one.</summary>
    static int? ProcessOnThisMachine(string serverId)
    {
        var parts = serverId.Split(':');
        if (parts.Length < 3 || !int.TryParse(parts[^2], out var pid)) return null;
        return string.Equals(string.Join(':', parts[..^2]), Environment.MachineName, StringComparison.OrdinalIgnoreCase) ? pid : null;
    }

    static bool ProcessRuns(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            return false;
        }
    }
}

/// <summary>The id of the Hangfire job performed on this thread (jobs run synchronously on their worker's thread); set by a server filter.</summary>
public sealed class CurrentJob : IServerFilter
{
    [ThreadStatic] static string? _id;

    public static string? Id => _id;

    public void OnPerforming(PerformingContext context) => _id = context.BackgroundJob.Id;

    public void OnPerformed(PerformedContext context) => _id = null;
}
