using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using BabyPpo.Training;
using BabyPpo.Training.Ppo;

namespace BabyPpo.Web.Jobs;

/// <summary>A valid request for a run: the spec (BaseModel is the registered model's name) and what the app adds around it.</summary>
public sealed record RunDraft(string Name, string Queue, IReadOnlyList<string> Evaluations, int BaseModelId, RunSpec Spec);

/// <summary>What a request may refer to: the registered models, the prompt sets present, the queues, rewards and evaluation tasks offered.</summary>
public sealed record RunChoices(
    IReadOnlyDictionary<string, int> Models,
    IReadOnlyCollection<string> PromptSets,
    IReadOnlyList<string> Queues,
    IReadOnlyCollection<string> Rewards,
    IReadOnlyCollection<string> Evaluations);

/// <summary>
/// Reads a run request (the API's JSON body, or the form turned into the same JSON) into a
/// <see cref="RunDraft"/>, with error messages keyed by field path ("steps", "ppo.miniBatchSize").
/// The spec's fields merge into <see cref="RunSpec"/>'s defaults, nested objects field by field, so
/// a partial "ppo" object keeps trl's defaults for the rest. The checks are the core's own
/// (<see cref="RunSpec.Validate"/>, <see cref="PpoConfig.Validate"/>); only the references to
/// registered things are checked here.
/// </summary>
public static partial class RunRequest
{
    /// <summary>Fields of the request that are not part of the spec.</summary>
    static readonly string[] RunFields = ["name", "queue", "evaluations"];

    /// <summary>The default spec as the request's JSON: what the form shows before the user changes anything.</summary>
    public static JsonObject Defaults() => JsonNode.Parse(new RunSpec().ToJson())!.AsObject();

    public static (RunDraft? Draft, Dictionary<string, string[]> Errors) Read(JsonObject request, RunChoices choices)
    {
        var errors = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        void Add(string field, string message)
        {
            if (!errors.TryGetValue(field, out var list)) errors[field] = list = [];
            list.Add(message);
        }

        var spec = Defaults();
        foreach (var (key, value) in request)
        {
            if (RunFields.Contains(key)) continue;
            Merge(spec, key, value, key, Add);
        }
        RunSpec? parsed = null;
        try
        {
            parsed = JsonSerializer.Deserialize<RunSpec>(spec, RunSpec.Json);
        }
        catch (JsonException e)
        {
            Add(FieldOf(e.Path), $"wrong type of value ({e.Message.Split(". Path:")[0]})");
        }

        string name = Text(request, "name", Add)?.Trim() ?? "";
        if (name.Length == 0) Add("name", "give the run a name");
        string queue = Text(request, "queue", Add) ?? choices.Queues[0];
        if (!choices.Queues.Contains(queue)) Add("queue", $"unknown queue \"{queue}\"; expected one of {string.Join(", ", choices.Queues)}");
        var evaluations = Evaluations(request, choices, Add);

        int modelId = 0;
        if (parsed is not null)
        {
            if (string.IsNullOrWhiteSpace(parsed.BaseModel)) Add("baseModel", "choose a base model");
            else if (!choices.Models.TryGetValue(parsed.BaseModel, out modelId))
                Add("baseModel", $"no registered model \"{parsed.BaseModel}\"; register it on the Models page, or choose one of {string.Join(", ", choices.Models.Keys)}");
            if (!choices.PromptSets.Contains(parsed.PromptSet))
                Add("promptSet", $"prompt set \"{parsed.PromptSet}\" is not available here; expected one of {string.Join(", ", choices.PromptSets)}");
            if (parsed.Rewards.Count == 0) Add("rewards", "choose at least one reward");
            foreach (var (reward, weight) in parsed.Rewards)
            {
                if (!choices.Rewards.Contains(reward))
                    Add("rewards", $"reward \"{reward}\" is not offered here; expected one of {string.Join(", ", choices.Rewards)}");
                if (!double.IsFinite(weight)) Add("rewards", $"the weight of {reward} must be a finite number");
            }
            if (parsed.Steps is null && parsed.Epochs is null) Add("steps", "give the number of steps or of epochs");
            if (parsed.Steps is <= 0) Add("steps", $"steps must be at least 1, got {parsed.Steps}");
            if (parsed.Epochs is <= 0) Add("epochs", $"epochs must be > 0, got {parsed.Epochs}");
            Check(parsed.Ppo.Validate, "ppo", Add);
            Check(() => parsed.Validate(), "", Add, skipIfAny: errors.Count > 0);
        }
        var final = errors.ToDictionary(kv => kv.Key, kv => kv.Value.Distinct().ToArray());
        return final.Count > 0 || parsed is null
            ? (null, final)
            : (new RunDraft(name, queue, evaluations, modelId, parsed), final);
    }

    /// <summary>Copies <paramref name="value"/> over <paramref name="target"/>[<paramref name="key"/>]: objects field by field, unknown fields refused.</summary>
    static void Merge(JsonObject target, string key, JsonNode? value, string path, Action<string, string> add)
    {
        if (!target.ContainsKey(key))
        {
            add(path, "unknown field");
            return;
        }
        // Known dictionaries (rewards) are replaced whole; records are merged field by field.
        if (value is JsonObject fields && target[key] is JsonObject defaults && key != "rewards")
        {
            foreach (var (child, childValue) in fields) Merge(defaults, child, childValue, $"{path}.{child}", add);
            return;
        }
        target[key] = value?.DeepClone();
    }

    static string? Text(JsonObject request, string key, Action<string, string> add)
    {
        if (!request.TryGetPropertyValue(key, out var node) || node is null) return null;
        if (node is JsonValue v && v.TryGetValue<string>(out var text)) return text;
        add(key, "must be a string");
        return null;
    }

    static List<string> Evaluations(JsonObject request, RunChoices choices, Action<string, string> add)
    {
        var result = new List<string>();
        if (!request.TryGetPropertyValue("evaluations", out var node) || node is null) return result;
        if (node is not JsonArray array)
        {
            add("evaluations", "must be a list of task names");
            return result;
        }
        foreach (var item in array)
        {
            var task = item is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
            if (task is null || !choices.Evaluations.Contains(task))
                add("evaluations", $"unknown or unavailable task \"{item}\"; expected some of {string.Join(", ", choices.Evaluations)}");
            else if (!result.Contains(task)) result.Add(task);
        }
        return result;
    }

    /// <summary>Runs one of the core's checks and files its message under the field it names (trl's snake_case names).</summary>
    static void Check(Action validate, string prefix, Action<string, string> add, bool skipIfAny = false)
    {
        if (skipIfAny) return;
        try
        {
            validate();
        }
        catch (InputException e)
        {
            var message = Regex.Replace(e.Message, "^(run spec|ppo config): ", "");
            var first = FirstName().Match(message).Value;
            add(FieldKey(prefix, CamelCase(first)), message);
        }
    }

    static readonly string[] KnownTopLevel = ["baseModel", "steps", "epochs", "rewards", "checkpointEvery", "sampleEvery"];

    /// <summary>The form's field for a message about <paramref name="field"/> (camelCase), or the group's key when none matches.</summary>
    static string FieldKey(string prefix, string field)
    {
        static bool Has(Type type, string name) => type.GetProperty(char.ToUpperInvariant(name[0]) + name[1..]) is not null;
        if (prefix.Length > 0) return Has(typeof(PpoConfig), field) ? $"{prefix}.{field}" : prefix;
        if (KnownTopLevel.Contains(field)) return field;
        return Has(typeof(GenerationSettings), field) ? $"generation.{field}" : "";
    }

    static string CamelCase(string snake)
    {
        var parts = snake.Split('_', StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 0) return "x";
        return parts[0] + string.Concat(parts.Skip(1).Select(p => char.ToUpperInvariant(p[0]) + p[1..]));
    }

    /// <summary>"$.ppo.batchSize" → "ppo.batchSize".</summary>
    static string FieldOf(string? jsonPath) => jsonPath is null ? "" : jsonPath.TrimStart('$', '.');

    [GeneratedRegex("^[a-z_]+")]
    private static partial Regex FirstName();
}
