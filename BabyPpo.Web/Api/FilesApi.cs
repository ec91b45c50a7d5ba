using BabyPpo.Training.Ppo;
using BabyPpo.Web.Data;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace BabyPpo.Web.Api;

/// <summary>A registered model as the models page and the API list it.</summary>
public sealed record ModelView(int Id, string Name, string Architecture, long Parameters, long Bytes, string Source, DateTime CreatedAt);

/// <summary>/api/models and /api/checkpoints: list models, download models and checkpoints as Hugging Face folders in a .zip.</summary>
public static class FilesApi
{
    public static IEndpointRouteBuilder MapFilesApi(this IEndpointRouteBuilder app)
    {
        var models = app.MapGroup("/api/models").WithTags("Models");
        models.MapGet("/", ListModels).WithSummary("Registered models with size, parameters and architecture.");
        models.MapGet("/{id:int}/download", DownloadModel).WithSummary("The model's checkpoint folder as a .zip.");
        app.MapGet("/api/checkpoints/{id:int}/download", DownloadCheckpoint).WithTags("Checkpoints")
            .WithSummary("A run checkpoint as a Hugging Face folder in a .zip (config, weights, tokenizer, value head; without optimizer state).");
        return app;
    }

    public static async Task<List<ModelView>> ModelViewsAsync(BabyPpoDb db, CancellationToken cancellationToken) =>
        await db.Models.AsNoTracking().OrderBy(m => m.Name)
            .Select(m => new ModelView(m.Id, m.Name, m.Architecture, m.Parameters, m.Folder!.Bytes, m.Source, m.CreatedAt))
            .ToListAsync(cancellationToken);

    static async Task<Ok<List<ModelView>>> ListModels(IDbContextFactory<BabyPpoDb> dbs, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        return TypedResults.Ok(await ModelViewsAsync(db, cancellationToken));
    }

    static async Task<Results<FileStreamHttpResult, NotFound>> DownloadModel(int id, IDbContextFactory<BabyPpoDb> dbs, ModelRegistry registry, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var model = await db.Models.AsNoTracking().SingleOrDefaultAsync(m => m.Id == id, cancellationToken);
        if (model is null) return TypedResults.NotFound();
        // The file result sends the temporary .zip with its length and closes (deletes) it afterwards.
        return TypedResults.File(await registry.ZipAsync(model.FolderId, cancellationToken: cancellationToken), "application/zip", $"{model.Name}.zip");
    }

    static async Task<Results<FileStreamHttpResult, NotFound>> DownloadCheckpoint(int id, IDbContextFactory<BabyPpoDb> dbs, ModelRegistry registry, CancellationToken cancellationToken)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var checkpoint = await db.Checkpoints.AsNoTracking().Include(c => c.Run).SingleOrDefaultAsync(c => c.Id == id, cancellationToken);
        if (checkpoint is null) return TypedResults.NotFound();
        var name = $"{checkpoint.Run!.Name}-run{checkpoint.RunId}-{(checkpoint.Final ? "final" : $"step{checkpoint.Step}")}";
        return TypedResults.File(await registry.ZipAsync(checkpoint.FolderId, IsHfFile, cancellationToken), "application/zip", $"{name}.zip");
    }

    /// <summary>The files of a Hugging Face folder: everything but the optimizer state and the trainer state.</summary>
    static bool IsHfFile(string path) => path is not (PpoRun.OptimizerFile or PpoRun.StateFile);
}
