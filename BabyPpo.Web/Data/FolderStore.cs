using System.Security.Cryptography;
using System.Text;
using Microsoft.EntityFrameworkCore;

namespace BabyPpo.Web.Data;

/// <summary>
/// Puts checkpoint folders into the database in chunks with SHA-256 hashes, and brings them back
/// onto a machine: into a cache folder named by the folder's hash, verified chunk by chunk, written
/// under a temporary name and renamed when complete.
/// </summary>
public sealed class FolderStore(IDbContextFactory<BabyPpoDb> dbs)
{
    /// <summary>Bytes per chunk: small enough for any database's row, large enough to be few.</summary>
    public const int ChunkSize = 4 * 1024 * 1024;

    /// <summary>Stores every file under <paramref name="folder"/> (recursively) and returns the new folder's id.</summary>
    public async Task<int> StoreAsync(string folder, Func<string, bool>? include = null, CancellationToken cancellationToken = default)
    {
        var stored = new StoredFolder();
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        db.Folders.Add(stored);
        await db.SaveChangesAsync(cancellationToken);
        var manifest = new StringBuilder();
        var buffer = new byte[ChunkSize];
        foreach (var path in Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            var relative = Path.GetRelativePath(folder, path).Replace('\\', '/');
            if (include is not null && !include(relative)) continue;
            var file = new StoredFile { FolderId = stored.Id, Path = relative };
            db.Files.Add(file);
            await db.SaveChangesAsync(cancellationToken);
            using var whole = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            await using var stream = File.OpenRead(path);
            int index = 0, read;
            while ((read = await stream.ReadAtLeastAsync(buffer, ChunkSize, throwOnEndOfStream: false, cancellationToken)) > 0)
            {
                var data = buffer[..read];
                whole.AppendData(data);
                db.Chunks.Add(new FileChunk { FileId = file.Id, Index = index++, Data = data, Sha256 = Hex(SHA256.HashData(data)) });
                await db.SaveChangesAsync(cancellationToken);
                db.ChangeTracker.Clear();
                file.Length += read;
            }
            file.Sha256 = Hex(whole.GetHashAndReset());
            db.Files.Update(file);
            await db.SaveChangesAsync(cancellationToken);
            db.ChangeTracker.Clear();
            stored.Bytes += file.Length;
            manifest.Append(file.Path).Append('\t').Append(file.Length).Append('\t').Append(file.Sha256).Append('\n');
        }
        stored.Sha256 = Hex(SHA256.HashData(Encoding.UTF8.GetBytes(manifest.ToString())));
        db.Folders.Update(stored);
        await db.SaveChangesAsync(cancellationToken);
        return stored.Id;
    }

    /// <summary>
    /// The stored folder on this machine, under <paramref name="cacheRoot"/>/&lt;sha256&gt;: taken from the
    /// cache when there, else fetched from the database with every chunk and file hash checked.
    /// </summary>
    public async Task<string> FetchAsync(int folderId, string cacheRoot, CancellationToken cancellationToken = default)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var stored = await db.Folders.AsNoTracking().Include(f => f.Files).SingleAsync(f => f.Id == folderId, cancellationToken);
        var target = Path.GetFullPath(Path.Combine(cacheRoot, stored.Sha256));
        if (Directory.Exists(target)) return target;
        Directory.CreateDirectory(cacheRoot);
        var temp = Path.Combine(cacheRoot, $".{stored.Sha256}.{Guid.NewGuid():N}.tmp");
        try
        {
            await WriteFilesAsync(stored, temp, cancellationToken);
            try
            {
                Directory.Move(temp, target);
            }
            catch (IOException) when (Directory.Exists(target))
            {
                // another job fetched the same folder meanwhile
            }
        }
        finally
        {
            if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
        }
        return target;
    }

    /// <summary>Writes the stored folder's files into <paramref name="destination"/> (created), checking hashes.</summary>
    public async Task ExtractAsync(int folderId, string destination, CancellationToken cancellationToken = default)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var stored = await db.Folders.AsNoTracking().Include(f => f.Files).SingleAsync(f => f.Id == folderId, cancellationToken);
        await WriteFilesAsync(stored, destination, cancellationToken);
    }

    /// <summary>Streams one stored file's content, chunk by chunk, checking hashes.</summary>
    public async Task CopyFileAsync(int fileId, Stream destination, CancellationToken cancellationToken = default)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var file = await db.Files.AsNoTracking().SingleAsync(f => f.Id == fileId, cancellationToken);
        using var whole = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var indexes = await db.Chunks.Where(c => c.FileId == fileId).OrderBy(c => c.Index).Select(c => c.Id).ToListAsync(cancellationToken);
        foreach (var chunkId in indexes)
        {
            var chunk = await db.Chunks.AsNoTracking().SingleAsync(c => c.Id == chunkId, cancellationToken);
            if (Hex(SHA256.HashData(chunk.Data)) != chunk.Sha256)
                throw new InvalidDataException($"stored file {file.Path} (id {file.Id}): chunk {chunk.Index} does not match its SHA-256");
            whole.AppendData(chunk.Data);
            await destination.WriteAsync(chunk.Data, cancellationToken);
        }
        if (Hex(whole.GetHashAndReset()) != file.Sha256)
            throw new InvalidDataException($"stored file {file.Path} (id {file.Id}) does not match its SHA-256");
    }

    async Task WriteFilesAsync(StoredFolder stored, string destination, CancellationToken cancellationToken)
    {
        foreach (var file in stored.Files)
        {
            var path = Path.GetFullPath(Path.Combine(destination, file.Path));
            if (!path.StartsWith(Path.GetFullPath(destination) + Path.DirectorySeparatorChar, StringComparison.Ordinal))
                throw new InvalidDataException($"stored file path {file.Path} leaves its folder");
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            await using var output = File.Create(path);
            await CopyFileAsync(file.Id, output, cancellationToken);
        }
    }

    static string Hex(byte[] hash) => Convert.ToHexStringLower(hash);
}
