using System.Text.Json;
using System.Text.Json.Serialization;
using BabyPpo.Web.Data;
using BabyPpo.Web.Jobs;
using BabyPpo.Web.Live;
using Hangfire;
using Hangfire.InMemory;
using Hangfire.PostgreSql;
using Hangfire.PostgreSql.Factories;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;

namespace BabyPpo.Web;

/// <summary>The app's registrations, in one place.</summary>
public static class Extensions
{
    public static void AddApplicationServices(this IHostApplicationBuilder builder)
    {
        var services = builder.Services;
        services.AddOptions<DatabaseOptions>().BindConfiguration("Database");
        services.AddOptions<JobsOptions>().BindConfiguration("Jobs");
        services.AddOptions<DataOptions>().BindConfiguration("Data");
        services.AddOptions<ModelsOptions>().BindConfiguration("Models");
        services.AddOptions<WorkOptions>().BindConfiguration("Work");
        services.AddOptions<RewardsOptions>().BindConfiguration("Rewards");

        if (builder.Configuration.GetValue("Work:Threads", 0) is > 0 and var threads) TorchSharp.torch.set_num_threads(threads);
        builder.AddDatabase();
        services.AddSingleton<FolderStore>();
        services.AddSingleton<ModelRegistry>();
        services.AddSingleton<Leaderboard>();
        services.AddSingleton<Catalog>();
        services.AddSingleton<RunNotifier>();
        services.AddSingleton<RunCancellations>();
        services.AddSingleton<JobQueue>();
        services.AddSingleton<RunLauncher>();
        services.AddSingleton<EvaluationLauncher>();
        services.AddTransient<TrainJob>();
        services.AddTransient<EvaluateJob>();
        // Migrations, model registration and re-queueing run before the job server starts.
        services.AddHostedService<Startup>();
        builder.AddJobs();

        services.AddSignalR();
        services.AddHostedService<RunsHubForwarder>();
        // The API writes, reads and documents JSON as RunSpec does: enums by kebab-case name
        // ("chi-tag", "mean-per-token"), numbers as numbers (not strings).
        services.ConfigureHttpJsonOptions(o =>
        {
            o.SerializerOptions.Converters.Add(new JsonStringEnumConverter(JsonNamingPolicy.KebabCaseLower));
            o.SerializerOptions.NumberHandling = JsonNumberHandling.Strict;
        });
        services.AddOpenApi();
        services.AddRazorComponents().AddInteractiveServerComponents();
    }

    /// <summary>EF Core on SQLite (a file; its folder is created) or PostgreSQL, each with its own migrations.</summary>
    static void AddDatabase(this IHostApplicationBuilder builder)
    {
        var provider = builder.Configuration.GetValue("Database:Provider", DatabaseProvider.Sqlite);
        if (provider == DatabaseProvider.Sqlite)
        {
            var sqlite = new SqliteConnectionStringBuilder(Required(builder, "Sqlite"));
            sqlite.DataSource = Path.GetFullPath(sqlite.DataSource);
            Directory.CreateDirectory(Path.GetDirectoryName(sqlite.DataSource)!);
            // SQLite changes a foreign key by rebuilding the table with foreign keys off, which EF Core
            // cannot do inside the migration's transaction and warns about on every new database.
            builder.Services.AddDbContextFactory<SqliteDb>(o => o.UseSqlite(sqlite.ToString())
                .ConfigureWarnings(w => w.Log((RelationalEventId.NonTransactionalMigrationOperationWarning, LogLevel.Information))));
            builder.Services.AddSingleton<IDbContextFactory<BabyPpoDb>, DbFactory<SqliteDb>>();
        }
        else
        {
            var postgres = Required(builder, "Postgres");
            builder.Services.AddDbContextFactory<PostgresDb>(o => o.UseNpgsql(postgres));
            builder.Services.AddSingleton<IDbContextFactory<BabyPpoDb>, DbFactory<PostgresDb>>();
        }
    }

    /// <summary>
    /// Hangfire with in-memory or PostgreSQL storage, registered as this app's own
    /// <see cref="JobStorage"/> (never through the process-global JobStorage.Current), and a job
    /// server for the configured queues and worker count.
    /// </summary>
    static void AddJobs(this IHostApplicationBuilder builder)
    {
        var jobs = builder.Configuration.GetSection("Jobs").Get<JobsOptions>() ?? new JobsOptions();
        // A fetched job stays invisible to other servers while its worker keeps renewing it (sliding),
        // and becomes theirs InvisibilityTimeoutSeconds after its worker stopped renewing (a crash).
        var postgres = new PostgreSqlStorageOptions
        {
            InvisibilityTimeout = TimeSpan.FromSeconds(jobs.InvisibilityTimeoutSeconds),
            UseSlidingInvisibilityTimeout = true,
        };
        builder.Services.AddSingleton<JobStorage>(_ => jobs.Storage == JobStorageKind.InMemory
            ? new InMemoryStorage()
            : new PostgreSqlStorage(new NpgsqlConnectionFactory(Required(builder, "Postgres"), postgres), postgres));
        builder.Services.AddHangfire((provider, config) => config
            .SetDataCompatibilityLevel(CompatibilityLevel.Version_180)
            .UseSimpleAssemblyNameTypeSerializer()
            .UseRecommendedSerializerSettings()
            .UseFilter(new CurrentJob())
            .UseStorage(provider.GetRequiredService<JobStorage>()));
        if (jobs.Server)
        {
            builder.Services.AddHangfireServer((provider, options) =>
            {
                options.WorkerCount = Math.Max(1, jobs.Workers);
                options.Queues = jobs.Queues;
            });
        }
    }

    static string Required(IHostApplicationBuilder builder, string name) =>
        builder.Configuration.GetConnectionString(name) is { Length: > 0 } value
            ? value
            : throw new InvalidOperationException($"ConnectionStrings:{name} is not set (appsettings.json, or the environment variable ConnectionStrings__{name})");

    /// <summary>Hands out the provider's context as the app's <see cref="BabyPpoDb"/>.</summary>
    sealed class DbFactory<T>(IDbContextFactory<T> inner) : IDbContextFactory<BabyPpoDb> where T : BabyPpoDb
    {
        public BabyPpoDb CreateDbContext() => inner.CreateDbContext();
    }
}
