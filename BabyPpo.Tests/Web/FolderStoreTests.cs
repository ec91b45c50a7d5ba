extern alias web;

using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using FolderStore = web::BabyPpo.Web.Data.FolderStore;

namespace BabyPpo.Tests.Web;

/// <summary>Checkpoint folders go into the database in hashed chunks and come back identical, or not at all.</summary>
[Collection(WebCollection.Name)]
public sealed class FolderStoreTests
{
    [Fact]
    public async Task AStoredFolderComesBackByteForByteAndADamagedChunkIsRefused()
    {
        var app = new TestApp(TestDatabase.Sqlite);
        try
        {
            var store = app.Services.GetRequiredService<FolderStore>();
            var source = SharedData.Fixture("models", "tiny-llama");
            int id = await store.StoreAsync(source);

            var copy = await store.FetchAsync(id, Path.Combine(app.Folder, "cache"));
            var files = Directory.GetFiles(source).Select(Path.GetFileName).Order().ToList();
            Assert.Equal(files, Directory.GetFiles(copy).Select(Path.GetFileName).Order().ToList());
            Assert.All(files, name => Assert.Equal(File.ReadAllBytes(Path.Combine(source, name!)), File.ReadAllBytes(Path.Combine(copy, name!))));
            Assert.Equal(copy, await store.FetchAsync(id, Path.Combine(app.Folder, "cache")));

            using (var connection = new SqliteConnection(app.ConnectionString + ";Pooling=False"))
            {
                connection.Open();
                using var damage = connection.CreateCommand();
                damage.CommandText = "UPDATE file_chunks SET Data = zeroblob(length(Data)) WHERE Id = (SELECT MIN(c.Id) FROM file_chunks c JOIN stored_files f ON f.Id = c.FileId WHERE f.FolderId = $folder)";
                damage.Parameters.AddWithValue("$folder", id);
                Assert.Equal(1, damage.ExecuteNonQuery());
            }
            await Assert.ThrowsAsync<InvalidDataException>(() => store.ExtractAsync(id, Path.Combine(app.Folder, "extracted")));
        }
        finally
        {
            app.Dispose();
            Directory.Delete(app.Folder, recursive: true);
        }
    }
}
