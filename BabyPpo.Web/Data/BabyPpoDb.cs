using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage.ValueConversion;

namespace BabyPpo.Web.Data;

/// <summary>
/// The app's database: the source of truth for models, runs, metrics, samples, checkpoints and
/// evaluations. One subclass per provider (<see cref="SqliteDb"/>, <see cref="PostgresDb"/>) carries
/// that provider's migrations; the app works with this base type.
/// </summary>
public abstract class BabyPpoDb(DbContextOptions options) : DbContext(options)
{
    public DbSet<ModelRecord> Models => Set<ModelRecord>();
    public DbSet<RunRecord> Runs => Set<RunRecord>();
    public DbSet<MetricRecord> Metrics => Set<MetricRecord>();
    public DbSet<SampleRecord> Samples => Set<SampleRecord>();
    public DbSet<CheckpointRecord> Checkpoints => Set<CheckpointRecord>();
    public DbSet<StoredFolder> Folders => Set<StoredFolder>();
    public DbSet<StoredFile> Files => Set<StoredFile>();
    public DbSet<FileChunk> Chunks => Set<FileChunk>();
    public DbSet<EvaluationRecord> Evaluations => Set<EvaluationRecord>();
    public DbSet<ParadigmRecord> Paradigms => Set<ParadigmRecord>();
    public DbSet<ItemRecord> Items => Set<ItemRecord>();

    protected override void ConfigureConventions(ModelConfigurationBuilder conventions)
    {
        // Every time is UTC; SQLite hands them back without a kind.
        conventions.Properties<DateTime>().HaveConversion<UtcConverter>();
        // PostgreSQL's text holds no NUL character, which a baby's answer may contain; it is stored as U+FFFD.
        conventions.Properties<string>().HaveConversion<NulFreeConverter>();
        conventions.Properties<JobStatus>().HaveConversion<string>().HaveMaxLength(16);
    }

    protected override void OnModelCreating(ModelBuilder model)
    {
        model.Entity<StoredFolder>(e =>
        {
            e.ToTable("stored_folders");
            e.HasMany(f => f.Files).WithOne().HasForeignKey(f => f.FolderId).OnDelete(DeleteBehavior.Cascade);
            e.Property(f => f.Sha256).HasMaxLength(64);
        });
        model.Entity<StoredFile>(e =>
        {
            e.ToTable("stored_files");
            e.HasIndex(f => new { f.FolderId, f.Path }).IsUnique();
            e.HasMany(f => f.Chunks).WithOne().HasForeignKey(c => c.FileId).OnDelete(DeleteBehavior.Cascade);
            e.Property(f => f.Sha256).HasMaxLength(64);
        });
        model.Entity<FileChunk>(e =>
        {
            e.ToTable("file_chunks");
            e.HasIndex(c => new { c.FileId, c.Index }).IsUnique();
            e.Property(c => c.Sha256).HasMaxLength(64);
        });
        model.Entity<ModelRecord>(e =>
        {
            e.ToTable("models");
            e.HasIndex(m => m.Name).IsUnique();
            e.HasOne(m => m.Folder).WithMany().HasForeignKey(m => m.FolderId).OnDelete(DeleteBehavior.Restrict);
        });
        model.Entity<RunRecord>(e =>
        {
            e.ToTable("runs");
            e.HasOne(r => r.BaseModel).WithMany().HasForeignKey(r => r.BaseModelId).OnDelete(DeleteBehavior.Restrict);
            e.HasIndex(r => r.Status);
        });
        model.Entity<MetricRecord>(e =>
        {
            e.ToTable("run_metrics");
            e.HasIndex(m => new { m.RunId, m.Step }).IsUnique();
            e.HasOne<RunRecord>().WithMany().HasForeignKey(m => m.RunId).OnDelete(DeleteBehavior.Cascade);
        });
        model.Entity<SampleRecord>(e =>
        {
            e.ToTable("run_samples");
            e.HasIndex(s => new { s.RunId, s.Step });
            e.HasOne<RunRecord>().WithMany().HasForeignKey(s => s.RunId).OnDelete(DeleteBehavior.Cascade);
        });
        model.Entity<CheckpointRecord>(e =>
        {
            e.ToTable("checkpoints");
            e.HasIndex(c => new { c.RunId, c.Step, c.Final }).IsUnique();
            e.HasOne(c => c.Run).WithMany().HasForeignKey(c => c.RunId).OnDelete(DeleteBehavior.Cascade);
            e.HasOne(c => c.Folder).WithMany().HasForeignKey(c => c.FolderId).OnDelete(DeleteBehavior.Restrict);
        });
        model.Entity<EvaluationRecord>(e =>
        {
            e.ToTable("evaluations");
            e.HasIndex(v => v.Status);
            e.HasOne<ModelRecord>().WithMany().HasForeignKey(v => v.ModelId).OnDelete(DeleteBehavior.Cascade);
            // A checkpoint's evaluations outlive it: a finished one keeps its label and results, and
            // a waiting one fails with a message when its job finds the checkpoint gone.
            e.HasOne(v => v.Checkpoint).WithMany().HasForeignKey(v => v.CheckpointId).OnDelete(DeleteBehavior.SetNull);
            e.HasMany(v => v.Paradigms).WithOne().HasForeignKey(p => p.EvaluationId).OnDelete(DeleteBehavior.Cascade);
        });
        model.Entity<ParadigmRecord>(e => e.ToTable("evaluation_paradigms"));
        model.Entity<ItemRecord>(e =>
        {
            e.ToTable("evaluation_items");
            e.HasIndex(i => i.EvaluationId);
            e.HasOne<EvaluationRecord>().WithMany().HasForeignKey(i => i.EvaluationId).OnDelete(DeleteBehavior.Cascade);
        });
    }

    sealed class NulFreeConverter() : ValueConverter<string, string>(value => value.Replace('\0', '\uFFFD'), value => value);

    sealed class UtcConverter() : ValueConverter<DateTime, DateTime>(
        value => value.Kind == DateTimeKind.Utc ? value : value.ToUniversalTime(), value => DateTime.SpecifyKind(value, DateTimeKind.Utc));
}

/// <summary>The SQLite flavour of <see cref="BabyPpoDb"/>, with migrations under Data/Migrations/Sqlite.</summary>
public sealed class SqliteDb(DbContextOptions<SqliteDb> options) : BabyPpoDb(options);

/// <summary>The PostgreSQL flavour of <see cref="BabyPpoDb"/>, with migrations under Data/Migrations/Postgres.</summary>
public sealed class PostgresDb(DbContextOptions<PostgresDb> options) : BabyPpoDb(options);
