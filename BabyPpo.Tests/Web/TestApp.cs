extern alias web;

using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Npgsql;

namespace BabyPpo.Tests.Web;

/// <summary>The database a test app uses.</summary>
public enum TestDatabase
{
    Sqlite,
    Postgres,
}

/// <summary>
/// The web app hosted for a test, with its own database (a SQLite file, or a fresh database on the
/// PostgreSQL cluster that test.sh starts), its own work folder, the shared data root and a models
/// folder holding tiny-llama (and demo-baby: the repository's when it has one, else tiny-llama).
/// With <c>kestrel</c> it listens on a real port on 127.0.0.1 (for the browser), else in memory.
/// <c>settings</c> are further configuration values ("Rewards:Judge:Source" → …).
/// The folder survives a restart: build a second TestApp on the same <see cref="Folder"/> to restart.
/// </summary>
public sealed class TestApp : WebApplicationFactory<web::Program>
{
    /// <summary>The environment variable with the PostgreSQL connection string test.sh exports (without a database name).</summary>
    public const string PostgresVariable = "BABYPPO_TEST_POSTGRES";

    readonly Dictionary<string, string> _settings;

    public TestApp(TestDatabase database, string? folder = null, bool kestrel = false, string? connectionString = null,
        IReadOnlyDictionary<string, string>? settings = null)
    {
        Folder = folder ?? Directory.CreateTempSubdirectory("babyppo-web-").FullName;
        var models = Path.Combine(Folder, "models");
        if (!Directory.Exists(models))
        {
            Directory.CreateDirectory(models);
            var tiny = SharedData.Fixture("models", "tiny-llama");
            var demo = Path.Combine(SharedData.RepositoryRoot, "models", "demo-baby");
            Directory.CreateSymbolicLink(Path.Combine(models, "tiny-llama"), tiny);
            Directory.CreateSymbolicLink(Path.Combine(models, "demo-baby"), File.Exists(Path.Combine(demo, "config.json")) ? demo : tiny);
        }
        ConnectionString = connectionString ?? (database == TestDatabase.Sqlite ? $"Data Source={Path.Combine(Folder, "babyppo.db")}" : CreatePostgresDatabase());
        _settings = new()
        {
            ["Database:Provider"] = database.ToString(),
            [$"ConnectionStrings:{database}"] = ConnectionString,
            ["Jobs:Storage"] = database == TestDatabase.Postgres ? "Postgres" : "InMemory",
            ["Data:Root"] = SharedData.Data(),
            ["Data:DemoRoot"] = SharedData.DemoData,
            ["Models:Folder"] = models,
            ["Work:Folder"] = Path.Combine(Folder, "work"),
            ["Logging:LogLevel:Default"] = "Warning",
            // EF Core logs the migrations-history probe of a new database as a failed command.
            ["Logging:LogLevel:Microsoft.EntityFrameworkCore.Database.Command"] = "None",
        };
        if (database == TestDatabase.Postgres) _settings["ConnectionStrings:Postgres"] = ConnectionString;
        foreach (var (key, value) in settings ?? new Dictionary<string, string>()) _settings[key] = value;
        if (kestrel)
        {
            Port = FreePort();
            UseKestrel(Port);
        }
    }

    /// <summary>The test's folder: database file, work folder, models folder.</summary>
    public string Folder { get; }

    public string ConnectionString { get; }

    /// <summary>The Kestrel port, when listening on one.</summary>
    public int Port { get; }

    public string BaseUrl => $"http://127.0.0.1:{Port}/";

    /// <summary>The configuration this app runs with (test folder, database, data root, …), for another process to share.</summary>
    public IReadOnlyDictionary<string, string> Settings => _settings;

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        foreach (var (key, value) in _settings) builder.UseSetting(key, value);
    }

    /// <summary>Posts a run request and returns the new run's id.</summary>
    public async Task<int> StartRunAsync(HttpClient client, JsonObject request)
    {
        var response = await client.PostAsJsonAsync("/api/runs", request);
        Assert.True(response.StatusCode == HttpStatusCode.Created, $"POST /api/runs: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        return (await response.Content.ReadFromJsonAsync<JsonObject>())!["id"]!.GetValue<int>();
    }

    /// <summary>Polls GET <paramref name="url"/> until <paramref name="done"/> holds for its JSON, or fails after <paramref name="seconds"/>.</summary>
    public static async Task<JsonNode> WaitForAsync(HttpClient client, string url, Func<JsonNode, bool> done, int seconds = 180)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        JsonNode? last = null;
        while (DateTime.UtcNow < deadline)
        {
            last = JsonNode.Parse(await client.GetStringAsync(url))!;
            if (done(last)) return last;
            await Task.Delay(200);
        }
        throw new TimeoutException($"{url} did not get there in {seconds} s; last: {last?.ToJsonString()}");
    }

    /// <summary>A run request of a few small steps on tiny-llama with the demo prompts.</summary>
    public static JsonObject TinyRun(string name, int steps, int checkpointEvery = 50) => new()
    {
        ["name"] = name,
        ["baseModel"] = "tiny-llama",
        ["rewards"] = new JsonObject { ["bleu"] = 1.0 },
        ["promptSet"] = "demo-prompts",
        ["steps"] = steps,
        ["checkpointEvery"] = checkpointEvery,
        ["ppo"] = new JsonObject { ["batchSize"] = 4, ["miniBatchSize"] = 2, ["ppoEpochs"] = 1 },
        ["generation"] = new JsonObject { ["maxNewTokens"] = 8, ["batchSize"] = 4 },
    };

    static string CreatePostgresDatabase()
    {
        var server = Environment.GetEnvironmentVariable(PostgresVariable);
        if (string.IsNullOrEmpty(server))
            throw new InvalidOperationException($"{PostgresVariable} is not set: run the tests with ./test.sh, which starts a throwaway PostgreSQL cluster");
        var name = $"babyppo_test_{Guid.NewGuid():N}";
        using (var connection = new NpgsqlConnection(server))
        {
            connection.Open();
            using var command = new NpgsqlCommand($"CREATE DATABASE {name}", connection);
            command.ExecuteNonQuery();
        }
        return new NpgsqlConnectionStringBuilder(server) { Database = name }.ConnectionString;
    }

    static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (disposing) SqliteCleanup();
    }

    /// <summary>SQLite keeps the file open in its pool; clear it so that the folder can go.</summary>
    static void SqliteCleanup() => Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
}

/// <summary>The web tests run one at a time: each hosts the app with a job server that uses the CPU.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class WebCollection
{
    public const string Name = "Web";
}
