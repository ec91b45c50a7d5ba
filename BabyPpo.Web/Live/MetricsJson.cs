using System.Text.Json.Nodes;

namespace BabyPpo.Web.Live;

/// <summary>Metrics as JSON: one object per step, keys in ordinal order, non-finite values as null (JSON has no NaN).</summary>
public static class MetricsJson
{
    /// <summary>The metrics with non-finite values as null.</summary>
    public static Dictionary<string, double?> Finite(IReadOnlyDictionary<string, double> metrics) =>
        metrics.OrderBy(kv => kv.Key, StringComparer.Ordinal).ToDictionary(kv => kv.Key, kv => double.IsFinite(kv.Value) ? kv.Value : (double?)null);

    public static string ToJson(IReadOnlyDictionary<string, double> metrics)
    {
        var json = new JsonObject();
        foreach (var (key, value) in Finite(metrics)) json[key] = value;
        return json.ToJsonString();
    }

    /// <summary>Reads a stored step back; null values come back as NaN.</summary>
    public static Dictionary<string, double> FromJson(string json) =>
        JsonNode.Parse(json)!.AsObject().ToDictionary(kv => kv.Key, kv => kv.Value?.GetValue<double>() ?? double.NaN);

    /// <summary>The API's object for one step: "step" first, then the metrics (null where not finite).</summary>
    public static Dictionary<string, double?> StepObject(int step, string json)
    {
        var result = new Dictionary<string, double?> { ["step"] = step };
        foreach (var (key, value) in JsonNode.Parse(json)!.AsObject()) result[key] = value?.GetValue<double>();
        return result;
    }
}
