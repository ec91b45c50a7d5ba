using System.Diagnostics;
using System.Text.Json.Nodes;

namespace BabyPpo.Tests.Web;

/// <summary>
/// With PostgreSQL job storage, a run whose worker process is killed (a crash: no shutdown, its
/// job left "processing") is taken back promptly: by the app restarted on the same machine, or by
/// another live server once the claim of the dead worker has lapsed, never from a live worker.
/// </summary>
[Collection(WebCollection.Name)]
public sealed class CrashRecoveryTests
{
    [Fact]
    public async Task ARunWhoseWorkerWasKilledResumesAtOnceWhenTheAppStartsAgainOnTheSameMachine()
    {
        // An invisibility timeout far longer than the test: only the start-up check can bring the run back in time.
        var settings = new Dictionary<string, string> { ["Jobs:InvisibilityTimeoutSeconds"] = "1800" };
        using var app = new TestApp(TestDatabase.Postgres, settings: settings);   // not started yet: the killed process goes first
        try
        {
            int id;
            using (var crashed = await WebProcess.StartAsync(app))
            {
                id = await app.StartRunAsync(crashed.Client, TestApp.TinyRun("crash", steps: 30, checkpointEvery: 2));
                await TestApp.WaitForAsync(crashed.Client, $"/api/runs/{id}", r => r["step"]!.GetValue<int>() >= 3);
                crashed.Kill();
            }

            using var client = app.CreateClient();
            var run = await TestApp.WaitForAsync(client, $"/api/runs/{id}", r => r["status"]!.GetValue<string>() is "succeeded" or "failed" or "cancelled", seconds: 150);
            Assert.True(run["status"]!.GetValue<string>() == "succeeded", run.ToJsonString());
            Assert.Equal(JobWorker(), run["worker"]!.GetValue<string>());
            var metrics = JsonNode.Parse(await client.GetStringAsync($"/api/runs/{id}/metrics"))!.AsArray();
            Assert.Equal(Enumerable.Range(1, 30), metrics.Select(m => m!["step"]!.GetValue<int>()));
        }
        finally
        {
            app.Dispose();
            Directory.Delete(app.Folder, recursive: true);
        }
    }

    [Fact]
    public async Task AnotherServerTakesARunOnlyAfterItsWorkerDied()
    {
        const int timeout = 15;
        var settings = new Dictionary<string, string> { ["Jobs:InvisibilityTimeoutSeconds"] = timeout.ToString() };
        using var app = new TestApp(TestDatabase.Postgres, settings: settings);
        try
        {
            // One libtorch thread in the first worker, so that training leaves its claim renewals a core on a small machine.
            using var first = await WebProcess.StartAsync(app, new Dictionary<string, string> { ["Work:Threads"] = "1" });
            int id = await app.StartRunAsync(first.Client, TestApp.TinyRun("taken-over", steps: 100_000, checkpointEvery: 2));
            var before = await TestApp.WaitForAsync(first.Client, $"/api/runs/{id}", r => r["step"]!.GetValue<int>() >= 2);
            string firstWorker = before["worker"]!.GetValue<string>();
            Assert.Equal($"{Environment.MachineName}:{first.Pid}", firstWorker);

            // A second server comes up while the first one trains: for well over the timeout, the run stays with the live worker.
            using var client = app.CreateClient();
            await Task.Delay(TimeSpan.FromSeconds(2.5 * timeout));
            var during = JsonNode.Parse(await client.GetStringAsync($"/api/runs/{id}"))!;
            Assert.Equal(firstWorker, during["worker"]!.GetValue<string>());
            Assert.True(during["step"]!.GetValue<int>() > before["step"]!.GetValue<int>(), "the first worker should still be training");

            first.Kill();
            int killedAt = JsonNode.Parse(await client.GetStringAsync($"/api/runs/{id}"))!["step"]!.GetValue<int>();
            var taken = await TestApp.WaitForAsync(client, $"/api/runs/{id}",
                r => r["worker"]!.GetValue<string>() == JobWorker() && r["step"]!.GetValue<int>() > killedAt + 2, seconds: 120);
            Assert.Equal("running", taken["status"]!.GetValue<string>());

            await client.PostAsync($"/api/runs/{id}/cancel", null);
            var run = await TestApp.WaitForAsync(client, $"/api/runs/{id}", r => r["status"]!.GetValue<string>() is not ("queued" or "running"));
            Assert.Equal("cancelled", run["status"]!.GetValue<string>());
            var metrics = JsonNode.Parse(await client.GetStringAsync($"/api/runs/{id}/metrics"))!.AsArray();
            Assert.Equal(Enumerable.Range(1, run["step"]!.GetValue<int>()), metrics.Select(m => m!["step"]!.GetValue<int>()));
        }
        finally
        {
            app.Dispose();
            Directory.Delete(app.Folder, recursive: true);
        }
    }

    /// <summary>How a run records a job running in this (the test's) process.</summary>
    static string JobWorker() => $"{Environment.MachineName}:{Environment.ProcessId}";

    /// <summary>The built web app in a process of its own, on the test app's configuration and a free port; <see cref="Kill"/> ends it without a shutdown.</summary>
    sealed class WebProcess : IDisposable
    {
        readonly Process _process;

        WebProcess(Process process, int port)
        {
            _process = process;
            Client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/") };
        }

        public HttpClient Client { get; }

        public int Pid => _process.Id;

        public static async Task<WebProcess> StartAsync(TestApp app, IReadOnlyDictionary<string, string>? extra = null)
        {
            // The web project's own build (with its runtime config), of this test build's configuration.
            var configuration = Path.GetFileName(Path.GetDirectoryName(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory)))!;
            var project = Path.Combine(SharedData.RepositoryRoot, "BabyPpo.Web");
            var dll = Path.Combine(project, "bin", configuration, "net10.0", "BabyPpo.Web.dll");
            Assert.True(File.Exists(dll), $"{dll} is missing: build the solution first");
            int port = FreePort();
            var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var argument in new[] { dll, "--contentRoot", project, "--urls", $"http://127.0.0.1:{port}" }) start.ArgumentList.Add(argument);
            foreach (var (key, value) in app.Settings.Concat(extra ?? new Dictionary<string, string>())) start.Environment[key.Replace(":", "__")] = value;
            var process = Process.Start(start)!;
            process.OutputDataReceived += (_, e) => { if (e.Data is not null) Console.WriteLine($"web process {process.Id}: {e.Data}"); };
            process.ErrorDataReceived += (_, e) => { if (e.Data is not null) Console.WriteLine($"web process {process.Id}: {e.Data}"); };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            var web = new WebProcess(process, port);
            var deadline = DateTime.UtcNow.AddSeconds(90);
            while (true)
            {
                Assert.False(process.HasExited, $"the web process exited with {(process.HasExited ? process.ExitCode : 0)}");
                try
                {
                    if ((await web.Client.GetAsync("/api/runs")).IsSuccessStatusCode) return web;
                }
                catch (HttpRequestException) when (DateTime.UtcNow < deadline)
                {
                }
                Assert.True(DateTime.UtcNow < deadline, "the web process did not answer within 90 s");
                await Task.Delay(300);
            }
        }

        /// <summary>Kills the process at once, as a crash would: no shutdown, its job stays "processing".</summary>
        public void Kill()
        {
            if (_process.HasExited) return;
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }

        static int FreePort()
        {
            using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
            listener.Start();
            return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        }

        public void Dispose()
        {
            Kill();
            _process.Dispose();
            Client.Dispose();
        }
    }
}
