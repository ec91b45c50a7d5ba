using System.Collections.Concurrent;

namespace BabyPpo.Web.Jobs;

/// <summary>The runs training in this process, so that a cancel request stops them at once (jobs elsewhere stop through Hangfire's job deletion).</summary>
public sealed class RunCancellations
{
    readonly ConcurrentDictionary<int, CancellationTokenSource> _running = new();

    /// <summary>A token that fires when the job's own token fires or the run is cancelled here; dispose it when the run ends.</summary>
    public Registration Register(int runId, CancellationToken jobToken)
    {
        var source = CancellationTokenSource.CreateLinkedTokenSource(jobToken);
        _running[runId] = source;
        return new Registration(this, runId, source);
    }

    /// <summary>Cancels the run if it trains in this process.</summary>
    public void Cancel(int runId)
    {
        if (_running.TryGetValue(runId, out var source)) source.Cancel();
    }

    public sealed class Registration(RunCancellations owner, int runId, CancellationTokenSource source) : IDisposable
    {
        public CancellationToken Token => source.Token;

        public void Dispose()
        {
            owner._running.TryRemove(new KeyValuePair<int, CancellationTokenSource>(runId, source));
            source.Dispose();
        }
    }
}
