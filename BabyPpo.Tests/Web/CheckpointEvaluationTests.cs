extern alias web;

using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using BabyPpoDb = web::BabyPpo.Web.Data.BabyPpoDb;
using EvaluateJob = web::BabyPpo.Web.Jobs.EvaluateJob;
using EvaluationRecord = web::BabyPpo.Web.Data.EvaluationRecord;
using JobStatus = web::BabyPpo.Web.Data.JobStatus;

namespace BabyPpo.Tests.Web;

/// <summary>"Evaluate this checkpoint" results stay: the run's checkpoint rotation and resume clean-up keep evaluated checkpoints.</summary>
[Collection(WebCollection.Name)]
public sealed class CheckpointEvaluationTests : IDisposable
{
    const string Task = "lexical-decision-demo";
    readonly TestApp _app = new(TestDatabase.Sqlite);

    [Fact]
    public async Task RotationKeepsCheckpointsWithFinishedOrWaitingEvaluationsAndAnEvaluationWhoseCheckpointVanishedFailsWithAMessage()
    {
        using var client = _app.CreateClient();
        var request = TestApp.TinyRun("rotated", steps: 10_000, checkpointEvery: 2);
        request["keepCheckpoints"] = 1;
        int runId = await _app.StartRunAsync(client, request);

        // A finished evaluation of the newest checkpoint of a first stretch of training…
        int evaluated = await TrainThenCancelAsync(client, runId, resume: false);
        var created = await client.PostAsJsonAsync("/api/evaluations", new { checkpointId = evaluated, tasks = new[] { Task } });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        int finishedId = (await created.Content.ReadFromJsonAsync<JsonObject>())!["ids"]![0]!.GetValue<int>();
        var finished = await TestApp.WaitForAsync(client, $"/api/evaluations/{finishedId}", e => e["status"]!.GetValue<string>() is "succeeded" or "failed");
        Assert.Equal("succeeded", finished["status"]!.GetValue<string>());

        // … and a waiting one (its job has not started) of the newest checkpoint of a second stretch.
        int waiting = await TrainThenCancelAsync(client, runId, resume: true);
        int waitingId = await AddQueuedEvaluationAsync(waiting);

        int newest = await TrainThenCancelAsync(client, runId, resume: true);
        // keepCheckpoints 1: every other step checkpoint went, but the two evaluated ones stayed.
        Assert.Equal(new[] { evaluated, waiting, newest }.Order(), (await StepCheckpointsAsync(runId)).Order());
        Assert.Equal("succeeded", JsonNode.Parse(await client.GetStringAsync($"/api/evaluations/{finishedId}"))!["status"]!.GetValue<string>());
        var board = JsonNode.Parse(await client.GetStringAsync("/api/leaderboard"))!.AsArray();
        Assert.Contains(board, e => e!["label"]!.GetValue<string>() == finished["label"]!.GetValue<string>());

        // A checkpoint that goes anyway (deleted between the evaluation's request and its job): the evaluation fails and says why.
        await using (var db = await Dbs.CreateDbContextAsync())
        {
            await db.Checkpoints.Where(c => c.Id == waiting).ExecuteDeleteAsync();
        }
        _app.Services.GetRequiredService<EvaluateJob>().Run(waitingId, CancellationToken.None);
        var failed = JsonNode.Parse(await client.GetStringAsync($"/api/evaluations/{waitingId}"))!;
        Assert.Equal("failed", failed["status"]!.GetValue<string>());
        Assert.Contains("no longer exists", failed["error"]!.GetValue<string>());
    }

    [Fact]
    public async Task AResumedRunKeepsItsEvaluatedFinalCheckpointAndItsEvaluation()
    {
        using var client = _app.CreateClient();
        var request = TestApp.TinyRun("final-evaluated", steps: 3, checkpointEvery: 1);
        request["keepCheckpoints"] = 1;
        int runId = await _app.StartRunAsync(client, request);
        await WaitForEndAsync(client, runId, "succeeded");
        int final = await FinalCheckpointAsync(runId);
        var created = await client.PostAsJsonAsync("/api/evaluations", new { checkpointId = final, tasks = new[] { Task } });
        int evaluationId = (await created.Content.ReadFromJsonAsync<JsonObject>())!["ids"]![0]!.GetValue<int>();
        await TestApp.WaitForAsync(client, $"/api/evaluations/{evaluationId}", e => e["status"]!.GetValue<string>() == "succeeded");

        // As after a crash between storing the final checkpoint and marking the run done: the run is resumed and redoes its last steps.
        await using (var db = await Dbs.CreateDbContextAsync())
        {
            await db.Runs.Where(r => r.Id == runId).ExecuteUpdateAsync(s => s.SetProperty(r => r.Status, JobStatus.Failed));
        }
        Assert.Equal(HttpStatusCode.Accepted, (await client.PostAsync($"/api/runs/{runId}/resume", null)).StatusCode);
        await WaitForEndAsync(client, runId, "succeeded");

        Assert.Equal(final, await FinalCheckpointAsync(runId));
        var evaluation = JsonNode.Parse(await client.GetStringAsync($"/api/evaluations/{evaluationId}"))!;
        Assert.Equal("succeeded", evaluation["status"]!.GetValue<string>());
        var metrics = JsonNode.Parse(await client.GetStringAsync($"/api/runs/{runId}/metrics"))!.AsArray();
        Assert.Equal([1, 2, 3], metrics.Select(m => m!["step"]!.GetValue<int>()));
    }

    IDbContextFactory<BabyPpoDb> Dbs => _app.Services.GetRequiredService<IDbContextFactory<BabyPpoDb>>();

    /// <summary>(Resumes and) trains the run a few steps past its newest checkpoint, cancels it, and returns the checkpoint the cancel stored.</summary>
    async Task<int> TrainThenCancelAsync(HttpClient client, int runId, bool resume)
    {
        int from = JsonNode.Parse(await client.GetStringAsync($"/api/runs/{runId}"))!["step"]!.GetValue<int>();
        if (resume) Assert.Equal(HttpStatusCode.Accepted, (await client.PostAsync($"/api/runs/{runId}/resume", null)).StatusCode);
        await TestApp.WaitForAsync(client, $"/api/runs/{runId}", r => r["status"]!.GetValue<string>() == "running" && r["step"]!.GetValue<int>() >= from + 3);
        Assert.Equal(HttpStatusCode.Accepted, (await client.PostAsync($"/api/runs/{runId}/cancel", null)).StatusCode);
        var run = await WaitForEndAsync(client, runId, "cancelled");
        int step = run["step"]!.GetValue<int>();
        await using var db = await Dbs.CreateDbContextAsync();
        return await db.Checkpoints.Where(c => c.RunId == runId && !c.Final && c.Step == step).Select(c => c.Id).SingleAsync();
    }

    static async Task<JsonNode> WaitForEndAsync(HttpClient client, int runId, string expected)
    {
        var run = await TestApp.WaitForAsync(client, $"/api/runs/{runId}", r => r["status"]!.GetValue<string>() is not ("queued" or "running"));
        Assert.True(run["status"]!.GetValue<string>() == expected, run.ToJsonString());
        return run;
    }

    async Task<List<int>> StepCheckpointsAsync(int runId)
    {
        await using var db = await Dbs.CreateDbContextAsync();
        return await db.Checkpoints.Where(c => c.RunId == runId && !c.Final).Select(c => c.Id).ToListAsync();
    }

    async Task<int> FinalCheckpointAsync(int runId)
    {
        await using var db = await Dbs.CreateDbContextAsync();
        return await db.Checkpoints.Where(c => c.RunId == runId && c.Final).Select(c => c.Id).SingleAsync();
    }

    /// <summary>An evaluation as the launcher records it, whose job has not run yet.</summary>
    async Task<int> AddQueuedEvaluationAsync(int checkpointId)
    {
        await using var db = await Dbs.CreateDbContextAsync();
        var record = new EvaluationRecord { Task = Task, Label = $"checkpoint {checkpointId}", CheckpointId = checkpointId, Queue = "default", Status = JobStatus.Queued, CreatedAt = DateTime.UtcNow };
        db.Evaluations.Add(record);
        await db.SaveChangesAsync();
        return record.Id;
    }

    public void Dispose()
    {
        _app.Dispose();
        Directory.Delete(_app.Folder, recursive: true);
    }
}
