using System.Text.Json.Nodes;
using Microsoft.Data.Sqlite;

namespace BabyPpo.Tests.Web;

/// <summary>The database, not Hangfire, is the source of truth: a restart loses no run.</summary>
[Collection(WebCollection.Name)]
public sealed class RestartTests
{
    [Fact]
    public async Task ARunInterruptedByARestartResumesFromItsStoredCheckpointAndFinishesWithContinuousSteps()
    {
        // Enough steps that the stop lands mid-run: a tiny-llama step takes well under a second.
        const int steps = 60;
        string folder;
        int id;
        using (var first = new TestApp(TestDatabase.Sqlite))
        {
            folder = first.Folder;
            using var client = first.CreateClient();
            id = await first.StartRunAsync(client, TestApp.TinyRun("restart", steps, checkpointEvery: 1));
            await TestApp.WaitForAsync(client, $"/api/runs/{id}", r => r["step"]!.GetValue<int>() >= 3);
        }
        try
        {
            var (status, stoppedAt) = ReadRun(Path.Combine(folder, "babyppo.db"), id);
            Assert.Equal("Running", status);
            Assert.InRange(stoppedAt, 3, steps - 1);
            // Another machine would have no run folder: the checkpoint must come from the database.
            Directory.Delete(Path.Combine(folder, "work", "runs", id.ToString()), recursive: true);

            using var second = new TestApp(TestDatabase.Sqlite, folder);
            using var client = second.CreateClient();
            var run = await TestApp.WaitForAsync(client, $"/api/runs/{id}", r => r["status"]!.GetValue<string>() is "succeeded" or "failed" or "cancelled");

            Assert.True(run["status"]!.GetValue<string>() == "succeeded", run.ToJsonString());
            Assert.Equal(steps, run["step"]!.GetValue<int>());
            var metrics = JsonNode.Parse(await client.GetStringAsync($"/api/runs/{id}/metrics"))!.AsArray();
            Assert.Equal(Enumerable.Range(1, steps), metrics.Select(m => m!["step"]!.GetValue<int>()));
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            Directory.Delete(folder, recursive: true);
        }
    }

    static (string Status, int Step) ReadRun(string database, int id)
    {
        using var connection = new SqliteConnection($"Data Source={database};Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT Status, Step FROM runs WHERE Id = $id";
        command.Parameters.AddWithValue("$id", id);
        using var reader = command.ExecuteReader();
        Assert.True(reader.Read());
        return (reader.GetString(0), reader.GetInt32(1));
    }
}
