using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using BabyPpo.Training.Rewards;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace BabyPpo.Tests.Web;

/// <summary>
/// A judge served over HTTP (the core's OpenAI-compatible endpoint over tiny-olmo2, behind an API
/// key) and configured in the app's Rewards section: the score reward is offered, a run calls the
/// server with the key, the run's reward settings (template, default score) reach the judge.
/// </summary>
[Collection(WebCollection.Name)]
public sealed class RewardModelTests : IAsyncLifetime
{
    const string Key = "test-key-7";
    readonly LocalLlmBackend _judge = new(SharedData.Fixture("models", "tiny-olmo2"), SharedData.Fixture("tokenizers", "bytelevel-bpe"));
    readonly ConcurrentQueue<(string? Authorization, JsonObject Request, JsonObject Response)> _calls = new();
    WebApplication? _server;
    string _url = "";

    public async Task InitializeAsync()
    {
        var endpoint = new OpenAiEndpoint(_judge, "judge");
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        _server = builder.Build();
        _server.Use(async (context, next) =>
        {
            if (context.Request.Headers.Authorization != $"Bearer {Key}")
            {
                context.Response.StatusCode = 401;
                await context.Response.WriteAsync("""{"error": {"message": "wrong API key"}}""");
                return;
            }
            await next(context);
        });
        _server.MapGet("/v1/models", () => Results.Text(endpoint.Models().ToJsonString(), "application/json"));
        _server.MapPost("/v1/completions", async (HttpRequest request) =>
        {
            var body = await new StreamReader(request.Body, Encoding.UTF8).ReadToEndAsync();
            var result = await Task.Run(() => endpoint.Complete(body));
            _calls.Enqueue((request.Headers.Authorization, JsonNode.Parse(body)!.AsObject(), result.Body));
            return Results.Text(result.Body.ToJsonString(), "application/json", statusCode: result.Status);
        });
        await _server.StartAsync();
        _url = _server.Urls.First();
    }

    [Fact]
    public async Task AServedJudgeWithItsKeyRatesTheRunsAnswersWithTheRunsTemplateAndDefaultScore()
    {
        using var app = Judged(Key);
        try
        {
            using var client = app.CreateClient();
            var request = TestApp.TinyRun("judged", steps: 1);
            request["rewards"] = new JsonObject { ["score"] = 1.0 };
            request["rewardSettings"] = new JsonObject { ["judgeTemplate"] = "RATE 0-5 :: {mot} => {chi} ::", ["defaultScore"] = 2.5, ["judgeMaxTokens"] = 3 };
            int id = await app.StartRunAsync(client, request);
            var run = await TestApp.WaitForAsync(client, $"/api/runs/{id}", r => r["status"]!.GetValue<string>() is not ("queued" or "running"));
            Assert.True(run["status"]!.GetValue<string>() == "succeeded", run.ToJsonString());

            var completions = _calls.Where(c => c.Request["max_tokens"]!.GetValue<int>() == 3).ToList();
            Assert.NotEmpty(completions);
            Assert.All(completions, c => Assert.Equal($"Bearer {Key}", c.Authorization));
            Assert.All(completions, c => Assert.Equal("judge", c.Request["model"]!.GetValue<string>()));
            var prompts = completions.SelectMany(c => c.Request["prompt"]!.AsArray().Select(p => p!.GetValue<string>())).ToList();
            Assert.Equal(4, prompts.Count);
            Assert.All(prompts, p => Assert.Matches("^RATE 0-5 :: .+ => .* ::$", p));
            // The reward is the judge's rating, or the run's default score where its output has no number in 0–5.
            var outputs = completions.SelectMany(c => c.Response["choices"]!.AsArray().Select(x => x!["text"]!.GetValue<string>())).ToList();
            var metrics = JsonNode.Parse(await client.GetStringAsync($"/api/runs/{id}/metrics"))!.AsArray()[0]!;
            Assert.Equal(outputs.Average(o => JudgeParser.Parse(o) ?? 2.5), metrics["reward/score/mean"]!.GetValue<double>(), 1e-9);
            Assert.Equal(outputs.Count(o => JudgeParser.Parse(o) is null), metrics["reward/score/unparseable"]!.GetValue<double>());
        }
        finally
        {
            Remove(app);
        }
    }

    [Fact]
    public async Task AWrongKeyFailsTheRunWithTheServersAnswer()
    {
        using var app = Judged("not-the-key");
        try
        {
            using var client = app.CreateClient();
            var request = TestApp.TinyRun("wrong-key", steps: 1);
            request["rewards"] = new JsonObject { ["score"] = 1.0 };
            int id = await app.StartRunAsync(client, request);
            var run = await TestApp.WaitForAsync(client, $"/api/runs/{id}", r => r["status"]!.GetValue<string>() is not ("queued" or "running"));
            Assert.Equal("failed", run["status"]!.GetValue<string>());
            Assert.Contains("401", run["error"]!.GetValue<string>());
        }
        finally
        {
            Remove(app);
        }
    }

    [Fact]
    public async Task WithoutAJudgeTheScoreRewardIsNotOffered()
    {
        using var app = new TestApp(TestDatabase.Sqlite);
        try
        {
            using var client = app.CreateClient();
            var request = TestApp.TinyRun("no-judge", steps: 1);
            request["rewards"] = new JsonObject { ["score"] = 1.0 };
            var response = await client.PostAsJsonAsync("/api/runs", request);
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            var errors = (await response.Content.ReadFromJsonAsync<JsonObject>())!["errors"]!.AsObject();
            Assert.Contains("\"score\" is not offered", errors["rewards"]![0]!.GetValue<string>());
        }
        finally
        {
            Remove(app);
        }
    }

    TestApp Judged(string key) => new(TestDatabase.Sqlite, settings: new Dictionary<string, string>
    {
        ["Rewards:Judge:Source"] = _url,
        ["Rewards:Judge:Model"] = "judge",
        ["Rewards:Judge:ApiKey"] = key,
        ["Rewards:Judge:TimeoutSeconds"] = "60",
        ["Rewards:Judge:MaxRetries"] = "0",
        ["Rewards:Judge:MaxConcurrency"] = "1",
    });

    static void Remove(TestApp app)
    {
        app.Dispose();
        Directory.Delete(app.Folder, recursive: true);
    }

    public async Task DisposeAsync()
    {
        if (_server is not null) await _server.DisposeAsync();
        _judge.Dispose();
    }
}
