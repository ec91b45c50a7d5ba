using Microsoft.AspNetCore.SignalR;

namespace BabyPpo.Web.Live;

/// <summary>
/// The SignalR hub at /hubs/runs for external clients: call <c>Watch(runId)</c> to receive that
/// run's "step" messages (step, totalSteps, metrics) and "status" messages (status, error).
/// </summary>
public sealed class RunsHub : Hub
{
    public static string Group(int runId) => $"run-{runId}";

    public Task Watch(int runId) => Groups.AddToGroupAsync(Context.ConnectionId, Group(runId));

    public Task Unwatch(int runId) => Groups.RemoveFromGroupAsync(Context.ConnectionId, Group(runId));
}

/// <summary>Forwards the notifier's events to the hub's groups, for as long as the app runs.</summary>
public sealed class RunsHubForwarder(RunNotifier notifier, IHubContext<RunsHub> hub) : IHostedService
{
    IDisposable? _subscription;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _subscription = notifier.Subscribe(e => e switch
        {
            StepEvent s => hub.Clients.Group(RunsHub.Group(s.RunId)).SendAsync("step",
                new { runId = s.RunId, step = s.Step, totalSteps = s.TotalSteps, metrics = MetricsJson.Finite(s.Metrics) }),
            StatusEvent s => hub.Clients.Group(RunsHub.Group(s.RunId)).SendAsync("status",
                new { runId = s.RunId, status = s.Status.ToString().ToLowerInvariant(), error = s.Error }),
            _ => Task.CompletedTask,
        });
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        _subscription?.Dispose();
        return Task.CompletedTask;
    }
}
