using System.Net;

namespace BabyPpo.Tests.Web;

/// <summary>An address with no page gets the app's not-found page (with its navigation) and status 404; the API answers 404 without a page.</summary>
[Collection(WebCollection.Name)]
public sealed class NotFoundTests : IDisposable
{
    readonly TestApp _app = new(TestDatabase.Sqlite);

    [Theory]
    [InlineData("/no-such-page")]
    [InlineData("/runs/1/no-such-tab")]
    public async Task AnUnknownPageIs404WithTheNotFoundPage(string path)
    {
        using var client = _app.CreateClient();
        var response = await client.GetAsync(path);

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("text/html", response.Content.Headers.ContentType?.MediaType);
        var html = await response.Content.ReadAsStringAsync();
        Assert.Contains("""<h1 id="not-found">Not found</h1>""", html);
        Assert.Contains("""<a href="new">""", html);
    }

    [Fact]
    public async Task AnUnknownApiPathIs404WithoutAPage()
    {
        using var client = _app.CreateClient();
        var response = await client.GetAsync("/api/no-such-thing");

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.DoesNotContain("not-found", await response.Content.ReadAsStringAsync());
    }

    public void Dispose()
    {
        _app.Dispose();
        Directory.Delete(_app.Folder, recursive: true);
    }
}
