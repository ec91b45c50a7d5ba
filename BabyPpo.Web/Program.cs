using BabyPpo.Web.Components;

var builder = WebApplication.CreateBuilder(args);
// Serve the static web assets of packages (Plotly.Blazor's plotly.js, …) outside Development too.
builder.WebHost.UseStaticWebAssets();
builder.Services.AddRazorComponents().AddInteractiveServerComponents();

var app = builder.Build();
if (!app.Environment.IsDevelopment()) app.UseExceptionHandler("/Error", createScopeForErrors: true);
app.UseStatusCodePagesWithReExecute("/not-found", createScopeForStatusCodePages: true);
app.UseAntiforgery();
app.MapStaticAssets();
app.MapRazorComponents<App>().AddInteractiveServerRenderMode();
app.Lifetime.ApplicationStarted.Register(() =>
    Console.WriteLine($"BabyPpo is running at {string.Join(", ", app.Urls)}"));
app.Run();

/// <summary>Entry point; public so that integration tests can host the app with WebApplicationFactory.</summary>
public partial class Program;
