extern alias web;

using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using BabyPpoDb = web::BabyPpo.Web.Data.BabyPpoDb;
using SampleRecord = web::BabyPpo.Web.Data.SampleRecord;

namespace BabyPpo.Tests.Web;

/// <summary>One app per provider, shared by the API tests of that provider.</summary>
public abstract class AppFixture(TestDatabase database) : IDisposable
{
    public TestApp App { get; } = new(database);

    public void Dispose()
    {
        App.Dispose();
        Directory.Delete(App.Folder, recursive: true);
    }
}

public sealed class SqliteAppFixture() : AppFixture(TestDatabase.Sqlite);

public sealed class PostgresAppFixture() : AppFixture(TestDatabase.Postgres);

/// <summary>The JSON API, as a script uses it, against one database provider.</summary>
public abstract class ApiTests(AppFixture fixture)
{
    readonly TestApp _app = fixture.App;

    [Fact]
    public async Task TheSmokeRequestAsWrittenRunsThreeStepsWithOneMetricsObjectPerStep()
    {
        using var client = _app.CreateClient();
        var body = """{"name": "smoke", "baseModel": "demo-baby", "rewards": {"bleu": 1.0}, "promptSet": "dialogue-train", "steps": 3, "ppo": {"batchSize": 4, "miniBatchSize": 2, "ppoEpochs": 1}}""";
        var response = await client.PostAsync("/api/runs", new StringContent(body, System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        int id = (await response.Content.ReadFromJsonAsync<JsonObject>())!["id"]!.GetValue<int>();

        var run = await TestApp.WaitForAsync(client, $"/api/runs/{id}", r => r["status"]!.GetValue<string>() is "succeeded" or "failed" or "cancelled");
        Assert.True(run["status"]!.GetValue<string>() == "succeeded", run.ToJsonString());
        Assert.Equal(3, run["step"]!.GetValue<int>());
        var metrics = JsonNode.Parse(await client.GetStringAsync($"/api/runs/{id}/metrics"))!.AsArray();
        Assert.Equal([1, 2, 3], metrics.Select(m => m!["step"]!.GetValue<int>()));
        Assert.All(metrics, m =>
        {
            Assert.True(double.IsFinite(m!["env/reward_mean"]!.GetValue<double>()));
            Assert.True(double.IsFinite(m["objective/kl"]!.GetValue<double>()));
        });
    }

    [Fact]
    public async Task APartialPpoObjectKeepsTrlsDefaultsForTheOtherFields()
    {
        using var client = _app.CreateClient();
        var request = TestApp.TinyRun("defaults", steps: 1);
        int id = await _app.StartRunAsync(client, request);
        var spec = JsonNode.Parse(await client.GetStringAsync($"/api/runs/{id}"))!["spec"]!;
        Assert.Equal(4, spec["ppo"]!["batchSize"]!.GetValue<int>());
        Assert.Equal(1, spec["ppo"]!["ppoEpochs"]!.GetValue<int>());
        Assert.Equal(1.41e-5, spec["ppo"]!["learningRate"]!.GetValue<double>());
        Assert.Equal(0.2, spec["ppo"]!["initKlCoef"]!.GetValue<double>());
        Assert.Equal(6, spec["ppo"]!["target"]!.GetValue<double>());
        Assert.Equal(0.95, spec["ppo"]!["lam"]!.GetValue<double>());
        Assert.Equal(0.9, spec["generation"]!["topP"]!.GetValue<double>());
        await TestApp.WaitForAsync(client, $"/api/runs/{id}", r => r["status"]!.GetValue<string>() is not ("queued" or "running"));
    }

    [Theory]
    [InlineData("ppo", "miniBatchSize", 3, "ppo.miniBatchSize")]
    [InlineData(null, "steps", 0, "steps")]
    [InlineData(null, "baseModel", "no-such-model", "baseModel")]
    [InlineData(null, "promptSet", "no-such-set", "promptSet")]
    [InlineData("ppo", "learningRate", -1, "ppo.learningRate")]
    [InlineData("ppo", "noSuchField", 1, "ppo.noSuchField")]
    public async Task AWrongFieldIsA400NamingThatFieldAndEnqueuesNothing(string? group, string field, object value, string errorKey)
    {
        using var client = _app.CreateClient();
        int before = JsonNode.Parse(await client.GetStringAsync("/api/runs"))!.AsArray().Count;
        var request = TestApp.TinyRun("bad", steps: 2);
        var target = group is null ? request : request[group]!.AsObject();
        target[field] = JsonValue.Create(value);

        var response = await client.PostAsJsonAsync("/api/runs", request);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var errors = (await response.Content.ReadFromJsonAsync<JsonObject>())!["errors"]!.AsObject();
        Assert.True(errors.ContainsKey(errorKey), errors.ToJsonString());
        Assert.Equal(before, JsonNode.Parse(await client.GetStringAsync("/api/runs"))!.AsArray().Count);
    }

    [Fact]
    public async Task ARequestWithSeveralBadFieldsGetsEveryFieldsErrorAtOnce()
    {
        using var client = _app.CreateClient();
        int before = JsonNode.Parse(await client.GetStringAsync("/api/runs"))!.AsArray().Count;
        var request = TestApp.TinyRun("many-errors", steps: 2);
        request["seed"] = "not a number";                   // a wrong type …
        request["checkpointEvery"] = 0;                     // … hides neither the run spec's checks,
        request["baseModel"] = "no-such-model";             // nor the references,
        request["generation"]!["topP"] = 2;                 // nor the sampling checks,
        request["ppo"]!["batchSize"] = "four";              // nor, in the same group,
        request["ppo"]!["learningRate"] = -1;               // every PPO check: one …
        request["ppo"]!["gamma"] = 2;                       // … after another …
        request["ppo"]!["clipRangeValue"] = 0;              // … after another.

        var response = await client.PostAsJsonAsync("/api/runs", request);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var errors = (await response.Content.ReadFromJsonAsync<JsonObject>())!["errors"]!.AsObject();
        Assert.Equal(
            ["baseModel", "checkpointEvery", "generation.topP", "ppo.batchSize", "ppo.clipRangeValue", "ppo.gamma", "ppo.learningRate", "seed"],
            errors.Select(e => e.Key).Order(StringComparer.Ordinal));
        Assert.Contains("whole number", errors["seed"]![0]!.GetValue<string>());
        Assert.Contains("whole number", errors["ppo.batchSize"]![0]!.GetValue<string>());
        Assert.Contains("gamma must be in [0, 1], got 2", errors["ppo.gamma"]![0]!.GetValue<string>());
        Assert.Contains("top_p", errors["generation.topP"]![0]!.GetValue<string>());
        Assert.Equal(before, JsonNode.Parse(await client.GetStringAsync("/api/runs"))!.AsArray().Count);
    }

    [Fact]
    public async Task RewardSettingsAreTakenIntoTheSpecAndWrongOnesAreReportedByField()
    {
        using var client = _app.CreateClient();
        var request = TestApp.TinyRun("reward-settings", steps: 1);
        request["rewardSettings"] = new JsonObject { ["referenceAggregation"] = "max", ["runningNormalisation"] = true, ["defaultScore"] = 1.5 };
        int id = await _app.StartRunAsync(client, request);
        var settings = JsonNode.Parse(await client.GetStringAsync($"/api/runs/{id}"))!["spec"]!["rewardSettings"]!;
        Assert.Equal("max", settings["referenceAggregation"]!.GetValue<string>());
        Assert.True(settings["runningNormalisation"]!.GetValue<bool>());
        Assert.Equal(1.5, settings["defaultScore"]!.GetValue<double>());
        Assert.Equal("sum", settings["confidenceVariant"]!.GetValue<string>());
        await TestApp.WaitForAsync(client, $"/api/runs/{id}", r => r["status"]!.GetValue<string>() is not ("queued" or "running"));

        var bad = TestApp.TinyRun("bad-reward-settings", steps: 1);
        bad["rewardSettings"] = new JsonObject { ["confidenceVariant"] = "median", ["judgeMaxTokens"] = "ten", ["judge"] = "http://elsewhere", ["judgeTemplate"] = "MOT: {mot}" };
        var response = await client.PostAsJsonAsync("/api/runs", bad);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var errors = (await response.Content.ReadFromJsonAsync<JsonObject>())!["errors"]!.AsObject();
        Assert.Contains("one of sum, mean-per-token", errors["rewardSettings.confidenceVariant"]![0]!.GetValue<string>());
        Assert.Contains("whole number", errors["rewardSettings.judgeMaxTokens"]![0]!.GetValue<string>());
        Assert.Equal("the judge template has no {chi} placeholder for the child's answer", errors["rewardSettings.judgeTemplate"]![0]!.GetValue<string>());
        // The judge and teacher back-ends are the installation's, not the request's.
        Assert.Equal("unknown field", errors["rewardSettings.judge"]![0]!.GetValue<string>());
    }

    [Theory]
    [InlineData("""{"name": "broken", "steps": }""", "line 1, byte 29")]
    [InlineData("{\n  \"name\": \"broken\",\n  \"steps\": 3,,\n}", "line 3, byte 14")]
    [InlineData("""[1, 2]""", "expected a JSON object")]
    public async Task AMalformedBodyIsA400ThatSaysWhereItBreaks(string body, string expected)
    {
        using var client = _app.CreateClient();
        var response = await client.PostAsync("/api/runs", new StringContent(body, System.Text.Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var errors = (await response.Content.ReadFromJsonAsync<JsonObject>())!["errors"]!.AsObject();
        Assert.Contains(expected, errors["body"]![0]!.GetValue<string>());
    }

    [Fact]
    public async Task AGeneratedAnswerWithANulCharacterIsStoredWithAReplacementCharacter()
    {
        // A tiny baby can sample a token that decodes to U+0000, which PostgreSQL's text cannot hold.
        var dbs = _app.Services.GetRequiredService<IDbContextFactory<BabyPpoDb>>();
        using var client = _app.CreateClient();
        int runId = await _app.StartRunAsync(client, TestApp.TinyRun("nul", steps: 1));
        await TestApp.WaitForAsync(client, $"/api/runs/{runId}", r => r["status"]!.GetValue<string>() is not ("queued" or "running"));
        long id;
        await using (var db = await dbs.CreateDbContextAsync())
        {
            var sample = new SampleRecord { RunId = runId, Step = 99, Prompt = "*MOT: hi", Answer = "a\0b", Reference = "ab" };
            db.Samples.Add(sample);
            await db.SaveChangesAsync();
            id = sample.Id;
        }
        await using (var db = await dbs.CreateDbContextAsync())
        {
            Assert.Equal("a\uFFFDb", (await db.Samples.SingleAsync(s => s.Id == id)).Answer);
        }
    }

    [Fact]
    public async Task CancelStopsARunningRunAfterAStepAndAnEndedRunCannotBeCancelledAgain()
    {
        using var client = _app.CreateClient();
        int id = await _app.StartRunAsync(client, TestApp.TinyRun("to-cancel", steps: 200, checkpointEvery: 1000));
        await TestApp.WaitForAsync(client, $"/api/runs/{id}", r => r["step"]!.GetValue<int>() >= 1);

        Assert.Equal(HttpStatusCode.Accepted, (await client.PostAsync($"/api/runs/{id}/cancel", null)).StatusCode);
        var run = await TestApp.WaitForAsync(client, $"/api/runs/{id}", r => r["status"]!.GetValue<string>() is not ("queued" or "running"), seconds: 60);

        Assert.Equal("cancelled", run["status"]!.GetValue<string>());
        Assert.True(run["step"]!.GetValue<int>() < 200);
        Assert.Equal(HttpStatusCode.Conflict, (await client.PostAsync($"/api/runs/{id}/cancel", null)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await client.PostAsync("/api/runs/999999/cancel", null)).StatusCode);
    }

    [Fact]
    public async Task TheLeaderboardShowsEvaluationsWithIntervalsAndComparesTwoRowsItemByItem()
    {
        using var client = _app.CreateClient();
        var request = TestApp.TinyRun("evaluated", steps: 2);
        request["evaluations"] = new JsonArray("lexical-decision-demo");
        int runId = await _app.StartRunAsync(client, request);
        var created = await client.PostAsJsonAsync("/api/evaluations", new { model = "tiny-llama", tasks = new[] { "lexical-decision-demo" } });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        int evaluationId = (await created.Content.ReadFromJsonAsync<JsonObject>())!["ids"]![0]!.GetValue<int>();

        var evaluation = await TestApp.WaitForAsync(client, $"/api/evaluations/{evaluationId}", e => e["status"]!.GetValue<string>() is "succeeded" or "failed");
        Assert.True(evaluation["status"]!.GetValue<string>() == "succeeded", evaluation.ToJsonString());
        await TestApp.WaitForAsync(client, "/api/leaderboard", b => b.AsArray().Any(e => e!["label"]!.GetValue<string>().StartsWith($"evaluated #{runId}")));

        var board = JsonNode.Parse(await client.GetStringAsync("/api/leaderboard"))!.AsArray();
        var baseRow = board.Single(e => e!["label"]!.GetValue<string>() == "tiny-llama" && e["task"]!.GetValue<string>() == "lexical-decision-demo")!;
        Assert.Equal(125, baseRow["n"]!.GetValue<int>());
        double accuracy = baseRow["accuracy"]!.GetValue<double>();
        Assert.InRange(accuracy, baseRow["ciLow"]!.GetValue<double>(), baseRow["ciHigh"]!.GetValue<double>());

        var finalLabel = $"evaluated #{runId} final";
        var comparison = JsonNode.Parse(await client.GetStringAsync($"/api/leaderboard/compare?a=tiny-llama&b={Uri.EscapeDataString(finalLabel)}"))!.AsArray();
        var row = Assert.Single(comparison)!;
        Assert.Equal(125, row["n"]!.GetValue<int>());
        Assert.InRange(row["mcNemarP"]!.GetValue<double>(), 0, 1);

        var csv = await client.GetStringAsync("/api/leaderboard/export?format=csv");
        Assert.StartsWith("model,task,dataset,n,accuracy", csv);
        Assert.Contains(finalLabel, csv);
        Assert.Contains("| Model |", await client.GetStringAsync("/api/leaderboard/export?format=markdown"));
    }

    [Fact]
    public async Task TheRunsHubStreamsEachStepToTheClientsWatchingTheRun()
    {
        using var client = _app.CreateClient();
        var steps = new List<int>();
        var done = new TaskCompletionSource();
        await using var hub = new HubConnectionBuilder()
            .WithUrl(new Uri(_app.Server.BaseAddress, "hubs/runs"), o =>
            {
                o.HttpMessageHandlerFactory = _ => _app.Server.CreateHandler();
                o.Transports = HttpTransportType.LongPolling;
            })
            .Build();
        hub.On<JsonElement>("step", message =>
        {
            lock (steps) steps.Add(message.GetProperty("step").GetInt32());
            Assert.True(message.GetProperty("metrics").TryGetProperty("env/reward_mean", out _));
        });
        hub.On<JsonElement>("status", message =>
        {
            if (message.GetProperty("status").GetString() is "succeeded" or "failed") done.TrySetResult();
        });
        await hub.StartAsync();

        int id = await _app.StartRunAsync(client, TestApp.TinyRun("watched", steps: 3));
        await hub.InvokeAsync("Watch", id);
        await done.Task.WaitAsync(TimeSpan.FromMinutes(3));

        lock (steps)
        {
            Assert.NotEmpty(steps);
            Assert.Equal(3, steps[^1]);
            Assert.Equal(steps.Order(), steps);
        }
    }

    [Fact]
    public async Task TheOpenApiDocumentDescribesTheRunsApi()
    {
        using var client = _app.CreateClient();
        var document = JsonNode.Parse(await client.GetStringAsync("/openapi/v1.json"))!;
        var paths = document["paths"]!.AsObject();
        Assert.Contains("/api/runs", paths.Select(p => p.Key));
        Assert.Contains("/api/runs/{id}/metrics", paths.Select(p => p.Key));
        Assert.Contains("/api/leaderboard", paths.Select(p => p.Key));
        Assert.Contains("/api/data", paths.Select(p => p.Key));
        var schemas = document["components"]!["schemas"]!;
        JsonNode Resolve(JsonNode schema) => schema["$ref"] is { } reference ? schemas[reference.GetValue<string>().Split('/')[^1]]! : schema;

        // POST /api/runs: the body's fields are RunSpec's (every one of them) plus the run's name, queue and evaluations.
        var body = Resolve(paths["/api/runs"]!["post"]!["requestBody"]!["content"]!["application/json"]!["schema"]!);
        var fields = body["properties"]!.AsObject().Select(p => p.Key).ToList();
        Assert.Contains("baseModel", fields);
        Assert.Contains("rewards", fields);
        Assert.Contains("ppo", fields);
        var specFields = JsonNode.Parse(new BabyPpo.Training.Ppo.RunSpec().ToJson())!.AsObject().Select(p => p.Key);
        Assert.Equal(specFields.Concat(["name", "queue", "evaluations"]).Order(StringComparer.Ordinal), fields.Order(StringComparer.Ordinal));
        Assert.Equal(["name", "baseModel"], body["required"]!.AsArray().Select(r => r!.GetValue<string>()));
        var ppo = Resolve(body["properties"]!["ppo"]!["oneOf"]!.AsArray().Single(o => o!["$ref"] is not null)!);
        Assert.Equal("integer", ppo["properties"]!["miniBatchSize"]!["type"]!.AsValue().GetValue<string>());
        var responses = paths["/api/runs"]!["post"]!["responses"]!.AsObject().Select(r => r.Key);
        Assert.Equal(["201", "400"], responses.Order());

        // GET /api/runs/{id} and its metrics: typed responses.
        var run = Resolve(paths["/api/runs/{id}"]!["get"]!["responses"]!["200"]!["content"]!["application/json"]!["schema"]!);
        Assert.Contains("status", run["properties"]!.AsObject().Select(p => p.Key));
        Assert.Contains("step", run["properties"]!.AsObject().Select(p => p.Key));
        Assert.Equal("RunSpec", run["properties"]!["spec"]!["$ref"]!.GetValue<string>().Split('/')[^1]);
        var metrics = paths["/api/runs/{id}/metrics"]!["get"]!["responses"]!["200"]!["content"]!["application/json"]!["schema"]!;
        Assert.Equal("array", metrics["type"]!.GetValue<string>());
        Assert.Equal("object", metrics["items"]!["type"]!.GetValue<string>());
    }
}

[Collection(WebCollection.Name)]
public sealed class SqliteApiTests(SqliteAppFixture fixture) : ApiTests(fixture), IClassFixture<SqliteAppFixture>;

[Collection(WebCollection.Name)]
public sealed class PostgresApiTests(PostgresAppFixture fixture) : ApiTests(fixture), IClassFixture<PostgresAppFixture>;
