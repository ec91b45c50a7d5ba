using System.Net;
using System.Text.Json.Nodes;
using Microsoft.Playwright;

namespace BabyPpo.Tests.Web;

/// <summary>
/// A person's path through the app in Debian's Chromium: fill the form, watch the reward chart grow
/// while the run trains, see the run succeed and its evaluation on the results page. The browser
/// may reach 127.0.0.1 only, and any console error fails the test.
/// </summary>
[Collection(WebCollection.Name)]
public sealed class BrowserTests
{
    const string Chromium = "/usr/bin/chromium";

    [Fact]
    public async Task AFormRunShowsLiveRewardPointsSucceedsAndItsEvaluationReachesTheResultsPage()
    {
        using var app = new TestApp(TestDatabase.Sqlite, kestrel: true);
        app.StartServer();
        var userData = Directory.CreateTempSubdirectory("babyppo-chromium-").FullName;
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchPersistentContextAsync(userData, new BrowserTypeLaunchPersistentContextOptions
        {
            ExecutablePath = Chromium,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"],
            ViewportSize = new ViewportSize { Width = 1400, Height = 1000 },
        });
        var blocked = new List<string>();
        await browser.RouteAsync("**/*", route =>
        {
            if (new Uri(route.Request.Url).Host == "127.0.0.1") return route.ContinueAsync();
            lock (blocked) blocked.Add(route.Request.Url);
            return route.AbortAsync();
        });
        var consoleErrors = new List<string>();
        var page = browser.Pages.Count > 0 ? browser.Pages[0] : await browser.NewPageAsync();
        page.Console += (_, message) => { if (message.Type == "error") lock (consoleErrors) consoleErrors.Add(message.Text); };
        page.PageError += (_, error) => { lock (consoleErrors) consoleErrors.Add(error); };
        try
        {
            // A long run holds the only worker, so that the form's run waits in the queue until its
            // page (and plotly.js, which loads lazily) is up; cancelling it lets the form's run train.
            using var api = new HttpClient { BaseAddress = new Uri(app.BaseUrl) };
            int blocker = await app.StartRunAsync(api, TestApp.TinyRun("blocker", steps: 10_000, checkpointEvery: 10_000));
            await TestApp.WaitForAsync(api, $"/api/runs/{blocker}", r => r["step"]!.GetValue<int>() >= 1);

            await page.GotoAsync(app.BaseUrl + "new");
            // Prerendered HTML comes first; fill the form once the circuit has made it interactive.
            await page.WaitForSelectorAsync("form#new-run[data-interactive=true]");
            await Setting(page, "name", "browser-run");
            await page.SelectOptionAsync("#baseModel", "tiny-llama");
            await page.SelectOptionAsync("#promptSet", "demo-prompts");
            await Setting(page, "steps", "3");
            await Setting(page, "checkpointEvery", "1");
            await Setting(page, "ppo-batchSize", "4");
            // A wrong field: its message appears beside it and nothing is queued.
            await Setting(page, "ppo-miniBatchSize", "3");
            await page.ClickAsync("#submit");
            await page.WaitForSelectorAsync(".field-error[data-field='ppo.miniBatchSize']");
            Assert.EndsWith("/new", page.Url);
            Assert.Single(JsonNode.Parse(await api.GetStringAsync("/api/runs"))!.AsArray());
            await Setting(page, "ppo-miniBatchSize", "2");
            await Setting(page, "ppo-ppoEpochs", "2");
            await Setting(page, "generation-batchSize", "4");
            await Setting(page, "generation-maxNewTokens", "16");
            await page.CheckAsync("#eval-lexical-decision-demo");
            await page.ClickAsync("#submit");

            // Blazor navigates in the page (no load event).
            await page.WaitForFunctionAsync("() => /\\/runs\\/\\d+$/.test(location.pathname)");
            int id = int.Parse(page.Url.Split('/')[^1]);
            // plotly.js loads lazily: wait for the chart element's data, then record every point count it shows.
            await page.WaitForFunctionAsync("() => document.getElementById('reward-chart')?.data !== undefined", null, new() { Timeout = 60_000 });
            await page.EvaluateAsync("""
                () => {
                    window.rewardPoints = [];
                    setInterval(() => {
                        const n = document.getElementById('reward-chart')?.data?.at(-1)?.x?.length ?? -1;
                        if (window.rewardPoints.at(-1) !== n) window.rewardPoints.push(n);
                    }, 5);
                }
                """);
            Assert.Equal(HttpStatusCode.Accepted, (await api.PostAsync($"/api/runs/{blocker}/cancel", null)).StatusCode);
            await page.WaitForSelectorAsync(".run-summary [data-status=succeeded]", new() { Timeout = 120_000 });
            await page.WaitForFunctionAsync("() => window.rewardPoints.at(-1) === 3");
            var points = await page.EvaluateAsync<int[]>("() => window.rewardPoints");
            Assert.True(points[0] == 0 && points.Any(n => n is 1 or 2), $"the reward chart should gain points while the run trains; it showed {string.Join(" → ", points)}");
            await page.ScreenshotAsync(new() { Path = Artifact("web-run.png"), FullPage = true });

            await page.ClickAsync("header nav >> text=Results");
            // The prerendered page is replaced when the circuit takes over: wait for the live one.
            await page.WaitForSelectorAsync("#results[data-ready=true]");
            var cellSelector = $"#leaderboard tr[data-label^='browser-run #{id} '] td[data-task='lexical-decision-demo'] span";
            await page.WaitForSelectorAsync($"{cellSelector}, #pending [data-status=failed]", new() { Timeout = 180_000 });
            if (await page.QuerySelectorAsync(cellSelector) is null)
                Assert.Fail($"the evaluation failed: {await page.TextContentAsync("#pending")}");
            var cell = await page.TextContentAsync($"#leaderboard tr[data-label^='browser-run #{id} '] td[data-task='lexical-decision-demo']");
            Assert.Matches(@"\d+\.\d \[\d+\.\d, \d+\.\d\]", cell);
            await page.ScreenshotAsync(new() { Path = Artifact("web-results.png"), FullPage = true });

            // Upload a checkpoint folder as a .zip on the models page.
            var zip = Path.Combine(app.Folder, "uploaded.zip");
            System.IO.Compression.ZipFile.CreateFromDirectory(SharedData.Fixture("models", "tiny-llama"), zip);
            await page.ClickAsync("header nav >> text=Models");
            await page.WaitForSelectorAsync("#models-page[data-ready=true]");
            await Setting(page, "upload-name", "uploaded-baby");
            await page.SetInputFilesAsync("#upload input[type=file]", zip);
            await page.ClickAsync("#upload button[type=submit]");
            await page.WaitForSelectorAsync("#models tr[data-model='uploaded-baby']");
            Assert.Equal(await page.TextContentAsync("#models tr[data-model='tiny-llama'] td:nth-child(3)"),
                await page.TextContentAsync("#models tr[data-model='uploaded-baby'] td:nth-child(3)"));
        }
        catch
        {
            await page.ScreenshotAsync(new() { Path = Artifact("web-failure.png"), FullPage = true });
            throw;
        }
        finally
        {
            await browser.CloseAsync();
            Directory.Delete(userData, recursive: true);
        }
        Assert.Empty(blocked);
        Assert.Empty(consoleErrors);
        Directory.Delete(app.Folder, recursive: true);
    }

    /// <summary>A path under the repository's TestResults folder (created).</summary>
    static string Artifact(string name) =>
        Path.Combine(Directory.CreateDirectory(Path.Combine(SharedData.RepositoryRoot, "TestResults")).FullName, name);

    /// <summary>Fills an input and commits it (Blazor's bindings listen to change events).</summary>
    static async Task Setting(IPage page, string id, string value)
    {
        await page.FillAsync($"#{id}", value);
        await page.DispatchEventAsync($"#{id}", "change");
    }
}
