using System.IO.Compression;
using BabyPpo.Training;
using BabyPpo.Training.Model;
using Microsoft.EntityFrameworkCore;

namespace BabyPpo.Web.Data;

/// <summary>Registers Hugging Face checkpoint folders as models: checked, described and stored in the database.</summary>
public sealed class ModelRegistry(IDbContextFactory<BabyPpoDb> dbs, FolderStore folders)
{
    /// <summary>
    /// Stores the folder under <paramref name="name"/>. The folder must load (config.json, safetensors
    /// weights) and have a tokenizer.json; a taken name or a bad folder is an <see cref="InputException"/>.
    /// </summary>
    public async Task<ModelRecord> RegisterFolderAsync(string name, string folder, string source, CancellationToken cancellationToken = default)
    {
        name = name.Trim();
        if (name.Length == 0) throw new InputException("give the model a name");
        folder = Path.GetFullPath(folder);
        var config = LlamaConfig.Load(folder);
        var weights = Checkpoint.WeightFiles(folder);
        if (!File.Exists(Path.Combine(folder, "tokenizer.json")))
            throw InputException.At(folder, "no tokenizer.json: a base model needs its tokenizer");
        long parameters = weights.Sum(file => SafeTensors.ReadHeader(file, out _).Sum(e => e.Shape.Aggregate(1L, (a, b) => a * b)));

        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        if (await db.Models.AnyAsync(m => m.Name == name, cancellationToken))
            throw new InputException($"a model named \"{name}\" is already registered");
        var folderId = await folders.StoreAsync(folder, relative => !relative.StartsWith('.'), cancellationToken);
        var model = new ModelRecord
        {
            Name = name,
            Architecture = $"{(config.IsOlmo2 ? "Olmo2ForCausalLM" : "LlamaForCausalLM")}, {config.NumHiddenLayers} layers × {config.HiddenSize}, vocabulary {config.VocabSize}",
            Parameters = parameters,
            Source = source,
            FolderId = folderId,
            CreatedAt = DateTime.UtcNow,
        };
        db.Models.Add(model);
        await db.SaveChangesAsync(cancellationToken);
        return model;
    }

    /// <summary>Registers a checkpoint folder packed as a .zip (the files at its top, or in one folder).</summary>
    public async Task<ModelRecord> RegisterZipAsync(string name, Stream zip, string fileName, CancellationToken cancellationToken = default)
    {
        var temp = Directory.CreateTempSubdirectory("babyppo-upload-").FullName;
        try
        {
            try
            {
                await ZipFile.ExtractToDirectoryAsync(zip, temp, cancellationToken);
            }
            catch (InvalidDataException e)
            {
                throw InputException.At(fileName, $"not a readable .zip file ({e.Message})");
            }
            var root = File.Exists(Path.Combine(temp, Checkpoint.ConfigFile))
                ? temp
                : Directory.GetDirectories(temp) is [var single] && File.Exists(Path.Combine(single, Checkpoint.ConfigFile))
                    ? single
                    : throw InputException.At(fileName, "expected config.json at the top of the .zip or in its one folder");
            return await RegisterFolderAsync(name, root, fileName, cancellationToken);
        }
        finally
        {
            Directory.Delete(temp, recursive: true);
        }
    }

    /// <summary>Registers every checkpoint folder directly under <paramref name="modelsFolder"/> that has no model of its name yet.</summary>
    public async Task<List<string>> RegisterFolderModelsAsync(string modelsFolder, CancellationToken cancellationToken = default)
    {
        var registered = new List<string>();
        if (!Directory.Exists(modelsFolder)) return registered;
        foreach (var folder in Directory.GetDirectories(modelsFolder).Order(StringComparer.Ordinal))
        {
            var name = Path.GetFileName(folder);
            if (!File.Exists(Path.Combine(folder, Checkpoint.ConfigFile))) continue;
            await using (var db = await dbs.CreateDbContextAsync(cancellationToken))
            {
                if (await db.Models.AnyAsync(m => m.Name == name, cancellationToken)) continue;
            }
            await RegisterFolderAsync(name, folder, folder, cancellationToken);
            registered.Add(name);
        }
        return registered;
    }

    /// <summary>
    /// The stored folder as a .zip (the files at its top) in a temporary file, positioned at its
    /// start and deleted when the stream is closed. The archive is built in a file, not on the
    /// response: ZipArchive writes synchronously when it closes entries, which a response body refuses.
    /// </summary>
    public async Task<FileStream> ZipAsync(int folderId, Func<string, bool>? include = null, CancellationToken cancellationToken = default)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var files = await db.Files.AsNoTracking().Where(f => f.FolderId == folderId).OrderBy(f => f.Path).ToListAsync(cancellationToken);
        var zip = new FileStream(Path.GetTempFileName(), FileMode.Create, FileAccess.ReadWrite, FileShare.None, 1 << 16,
            FileOptions.Asynchronous | FileOptions.DeleteOnClose);
        try
        {
            await using (var archive = new ZipArchive(zip, ZipArchiveMode.Create, leaveOpen: true))
            {
                foreach (var file in files.Where(f => include is null || include(f.Path)))
                {
                    var entry = archive.CreateEntry(file.Path, CompressionLevel.Fastest);
                    await using var stream = await entry.OpenAsync(cancellationToken);
                    await folders.CopyFileAsync(file.Id, stream, cancellationToken);
                }
            }
            zip.Position = 0;
            return zip;
        }
        catch
        {
            await zip.DisposeAsync();
            throw;
        }
    }
}
