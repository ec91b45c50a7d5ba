extern alias web;

using System.IO.Compression;
using System.Net;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using BabyPpoDb = web::BabyPpo.Web.Data.BabyPpoDb;

namespace BabyPpo.Tests.Web;

/// <summary>Models and checkpoints leave the app as complete .zip files, over real HTTP (Kestrel).</summary>
[Collection(WebCollection.Name)]
public sealed class DownloadTests
{
    [Fact]
    public async Task AModelExportAndACheckpointDownloadHoldEveryFileWithItsExactBytes()
    {
        using var app = new TestApp(TestDatabase.Sqlite, kestrel: true);
        try
        {
            app.StartServer();
            using var client = new HttpClient { BaseAddress = new Uri(app.BaseUrl) };

            var models = JsonNode.Parse(await client.GetStringAsync("/api/models"))!.AsArray();
            int modelId = models.Single(m => m!["name"]!.GetValue<string>() == "tiny-llama")!["id"]!.GetValue<int>();
            var modelZip = await DownloadAsync(client, $"/api/models/{modelId}/download");
            var source = SharedData.Fixture("models", "tiny-llama");
            AssertSameFiles(Files(source), modelZip);

            int runId = await app.StartRunAsync(client, TestApp.TinyRun("download", steps: 1));
            var run = await TestApp.WaitForAsync(client, $"/api/runs/{runId}", r => r["status"]!.GetValue<string>() is "succeeded" or "failed" or "cancelled");
            Assert.True(run["status"]!.GetValue<string>() == "succeeded", run.ToJsonString());
            int checkpointId;
            await using (var db = await app.Services.GetRequiredService<IDbContextFactory<BabyPpoDb>>().CreateDbContextAsync())
            {
                checkpointId = await db.Checkpoints.Where(c => c.RunId == runId && c.Final).Select(c => c.Id).SingleAsync();
            }
            var checkpointZip = await DownloadAsync(client, $"/api/checkpoints/{checkpointId}/download");
            // The run's final folder on this machine, less the optimizer and trainer state that a Hugging Face folder does not hold.
            var final = Path.Combine(app.Folder, "work", "runs", runId.ToString(), "final");
            var expected = Files(final).Where(kv => kv.Key is not ("optimizer.bin" or "trainer_state.json")).ToDictionary();
            Assert.Contains("model.safetensors", expected.Keys);
            Assert.Contains("value_head.safetensors", expected.Keys);
            AssertSameFiles(expected, checkpointZip);
        }
        finally
        {
            app.Dispose();
            Directory.Delete(app.Folder, recursive: true);
        }
    }

    /// <summary>GETs a .zip and returns its entries' SHA-256 by path; the response must be a complete, readable archive.</summary>
    static async Task<Dictionary<string, string>> DownloadAsync(HttpClient client, string url)
    {
        using var response = await client.GetAsync(url);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("application/zip", response.Content.Headers.ContentType?.MediaType);
        var bytes = await response.Content.ReadAsByteArrayAsync();
        using var archive = new ZipArchive(new MemoryStream(bytes), ZipArchiveMode.Read);
        var entries = new Dictionary<string, string>();
        foreach (var entry in archive.Entries)
        {
            using var stream = entry.Open();
            entries[entry.FullName] = Convert.ToHexStringLower(SHA256.HashData(stream));
        }
        return entries;
    }

    static Dictionary<string, string> Files(string folder) =>
        Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories).ToDictionary(
            path => Path.GetRelativePath(folder, path).Replace('\\', '/'),
            path => Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path))));

    static void AssertSameFiles(Dictionary<string, string> expected, Dictionary<string, string> zip)
    {
        Assert.Equal(expected.Keys.Order(), zip.Keys.Order());
        foreach (var (path, hash) in expected) Assert.True(hash == zip[path], $"{path}: the .zip holds other bytes than the source");
    }
}
