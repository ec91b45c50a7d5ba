using BabyPpo.Web;
using BabyPpo.Web.Api;
using BabyPpo.Web.Components;
using BabyPpo.Web.Live;

var builder = WebApplication.CreateBuilder(args);
// Serve the static web assets of packages (Plotly.Blazor's plotly.js, …) outside Development too.
builder.WebHost.UseStaticWebAssets();
builder.AddApplicationServices();

var app = builder.Build();
if (!app.Environment.IsDevelopment()) app.UseExceptionHandler("/Error", createScopeForErrors: true);
app.UseWhen(context => !context.Request.Path.StartsWithSegments("/api"),
    pages => pages.UseStatusCodePagesWithReExecute("/not-found", createScopeForStatusCodePages: true));
// Routing after the status code pages, so that a re-executed request finds the not-found page
// (with the implicit routing at the start of the pipeline it would find no endpoint again).
app.UseRouting();
app.UseAntiforgery();
app.MapStaticAssets();
app.MapOpenApi();
app.MapRunsApi();
app.MapResultsApi();
app.MapFilesApi();
app.MapDataApi();
app.MapHub<RunsHub>("/hubs/runs");
app.MapRazorComponents<App>().AddInteractiveServerRenderMode();
app.Lifetime.ApplicationStarted.Register(() => Console.WriteLine($"BabyPpo is running at {string.Join(", ", app.Urls)}"));
app.Run();

/// <summary>Entry point; public so that integration tests can host the app with WebApplicationFactory.</summary>
public partial class Program;
