using System.Net;
using System.Text;
using System.Text.Json;
using BabyPpo.Training;
using BabyPpo.Training.Rewards;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace BabyPpo.Cli;

/// <summary>
/// The HTTP host of <c>babyppo serve</c>: Kestrel routes <c>GET /v1/models</c> and
/// <c>POST /v1/completions</c> to an <see cref="OpenAiEndpoint"/>, which holds all the logic.
/// </summary>
public static class Serve
{
    /// <summary>Starts serving on <paramref name="host"/> (an IP address or "localhost") and <paramref name="port"/> (0 = a free port); <c>app.Urls</c> says where.</summary>
    public static async Task<WebApplication> StartAsync(OpenAiEndpoint endpoint, string host, int port, TextWriter? log = null)
    {
        var address = host == "localhost" ? IPAddress.Loopback
            : IPAddress.TryParse(host, out var ip) ? ip
            : throw new InputException($"--host expects an IP address such as 127.0.0.1 or 0.0.0.0 (or localhost), got '{host}'");
        if (port is < 0 or > 65535) throw new InputException($"--port expects 0–65535, got {port}");

        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(address, port));
        var app = builder.Build();

        app.MapGet("/v1/models", () => Json(200, endpoint.Models().ToJsonString(Relaxed)));
        app.MapPost("/v1/completions", async (HttpRequest request, CancellationToken cancellationToken) =>
        {
            using var reader = new StreamReader(request.Body, Encoding.UTF8);
            var body = await reader.ReadToEndAsync(cancellationToken);
            try
            {
                // Model work is synchronous (dispose scopes are thread-static): run it off the request thread.
                var result = await Task.Run(() => endpoint.Complete(body, cancellationToken), cancellationToken);
                log?.WriteLine($"POST /v1/completions {result.Status}");
                return Json(result.Status, result.Body.ToJsonString(Relaxed));
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                log?.WriteLine($"POST /v1/completions 500: {e.Message}");
                return Json(500, new System.Text.Json.Nodes.JsonObject
                {
                    ["error"] = new System.Text.Json.Nodes.JsonObject { ["message"] = e.Message, ["type"] = "server_error", ["code"] = 500 },
                }.ToJsonString(Relaxed));
            }
        });

        await app.StartAsync();
        return app;
    }

    // Relaxed escaping keeps "'" and non-ASCII text readable; the output is still valid JSON.
    static readonly JsonSerializerOptions Relaxed = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    static IResult Json(int status, string body) => Results.Text(body, "application/json", Encoding.UTF8, status);
}
