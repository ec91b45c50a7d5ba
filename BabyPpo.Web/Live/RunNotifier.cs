using BabyPpo.Web.Data;

namespace BabyPpo.Web.Live;

/// <summary>Something that happened: a run's step landed, a run's status changed, an evaluation ended.</summary>
public abstract record LiveEvent;

/// <summary>One PPO step's metrics (trl's names), and the samples recorded at that step, if any.</summary>
public sealed record StepEvent(int RunId, int Step, int TotalSteps, IReadOnlyDictionary<string, double> Metrics, IReadOnlyList<SampleRecord> Samples) : LiveEvent;

/// <summary>The run's new status (and error message when it failed).</summary>
public sealed record StatusEvent(int RunId, JobStatus Status, string? Error) : LiveEvent;

/// <summary>An evaluation finished (or failed): the results page may have a new row.</summary>
public sealed record EvaluationEvent(int EvaluationId, JobStatus Status) : LiveEvent;

/// <summary>
/// The in-process hub of live updates: the training job publishes each step, and pages and the
/// SignalR forwarder subscribe. Handlers run on the publisher's thread and must not block (Blazor
/// components hop onto their own dispatcher with InvokeAsync). Disposing a subscription ends it.
/// </summary>
public sealed class RunNotifier(ILogger<RunNotifier> logger)
{
    readonly Lock _lock = new();
    volatile Subscription[] _subscribers = [];

    /// <summary>Calls <paramref name="handler"/> for every event.</summary>
    public IDisposable Subscribe(Func<LiveEvent, Task> handler)
    {
        var subscription = new Subscription(this, handler);
        lock (_lock) _subscribers = [.. _subscribers, subscription];
        return subscription;
    }

    /// <summary>Calls <paramref name="handler"/> for the steps and status changes of one run.</summary>
    public IDisposable Subscribe(int runId, Func<LiveEvent, Task> handler) =>
        Subscribe(e => e is StepEvent { RunId: var s } && s == runId || e is StatusEvent { RunId: var t } && t == runId ? handler(e) : Task.CompletedTask);

    /// <summary>Hands the event to every subscriber; a failing subscriber is logged and does not stop the others.</summary>
    public void Publish(LiveEvent liveEvent)
    {
        foreach (var subscription in _subscribers)
        {
            try
            {
                subscription.Handler(liveEvent).ContinueWith(
                    t => logger.LogWarning(t.Exception, "A live-update subscriber failed"), TaskContinuationOptions.OnlyOnFaulted);
            }
            catch (Exception e)
            {
                logger.LogWarning(e, "A live-update subscriber failed");
            }
        }
    }

    void Remove(Subscription subscription)
    {
        lock (_lock) _subscribers = [.. _subscribers.Where(s => s != subscription)];
    }

    sealed class Subscription(RunNotifier owner, Func<LiveEvent, Task> handler) : IDisposable
    {
        public Func<LiveEvent, Task> Handler { get; } = handler;

        public void Dispose() => owner.Remove(this);
    }
}
