using System.Reflection;
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
/// <see cref="RunDraft"/>, with every error message keyed by its field's path ("steps",
/// "ppo.miniBatchSize"). The spec's fields merge into <see cref="RunSpec"/>'s defaults, nested
/// objects field by field, so a partial "ppo" object keeps the defaults for the rest.
/// <para>
/// All errors come at once: each field's value is type-checked on its own (a wrong type is
/// reported, and that field keeps its default for the other checks); then every problem the core's
/// own checks find (<see cref="RunSpec.Problems"/>) is filed under the fields it concerns. Only
/// references to registered things (model, prompt set, rewards, queue, evaluations) are checked here.
/// </para>
/// </summary>
public static partial class RunRequest
{
    /// <summary>Fields of the request that are not part of the spec.</summary>
    static readonly string[] RunFields = ["name", "queue", "evaluations"];

    /// <summary>Spec fields whose JSON value is a map replaced whole (not merged field by field).</summary>
    static readonly string[] Maps = ["rewards"];

    /// <summary>The default spec as the request's JSON: what the form shows before the user changes anything.</summary>
    public static JsonObject Defaults() => JsonNode.Parse(new RunSpec().ToJson())!.AsObject();

    public static (RunDraft? Draft, Dictionary<string, string[]> Errors) Read(JsonObject request, RunChoices choices)
    {
        var errors = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        void Add(string field, string message)
        {
            if (!errors.TryGetValue(field, out var list)) errors[field] = list = [];
            if (!list.Contains(message)) list.Add(message);
        }

        // 1. The request's spec fields over the defaults; each value set is a "leaf" with its path.
        var defaults = Defaults();
        var spec = Defaults();
        var leaves = new List<string>();
        foreach (var (key, value) in request)
        {
            if (RunFields.Contains(key)) continue;
            Merge(spec, defaults, key, value, key, leaves, Add);
        }

        // 2. Each leaf's type on its own, so that one wrong value hides nothing else; a wrong one goes back to its default.
        foreach (var leaf in leaves.ToList())
        {
            if (TypeError(leaf, Get(spec, leaf), defaults) is not { } problem) continue;
            Add(leaf, problem);
            Set(spec, leaf, Get(defaults, leaf)?.DeepClone());
            leaves.Remove(leaf);
        }
        var parsed = JsonSerializer.Deserialize<RunSpec>(spec, RunSpec.Json)!;

        // 3. The run's own fields and the references to what this installation has.
        string name = Text(request, "name", Add)?.Trim() ?? "";
        if (name.Length == 0) Add("name", "give the run a name");
        string queue = Text(request, "queue", Add) ?? choices.Queues[0];
        if (!choices.Queues.Contains(queue)) Add("queue", $"unknown queue \"{queue}\"; expected one of {string.Join(", ", choices.Queues)}");
        var evaluations = Evaluations(request, choices, Add);

        int modelId = 0;
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

        // 4. The core's checks, every one of them, with what step 3 reported set aside.
        CoreChecks(spec, defaults, leaves, Add);

        var final = errors.ToDictionary(kv => kv.Key, kv => kv.Value.ToArray());
        return final.Count > 0
            ? (null, final)
            : (new RunDraft(name, queue, evaluations, modelId, parsed), final);
    }

    /// <summary>Copies <paramref name="value"/> over <paramref name="target"/>[<paramref name="key"/>]: objects field by field, unknown fields refused.</summary>
    static void Merge(JsonObject target, JsonObject defaults, string key, JsonNode? value, string path, List<string> leaves, Action<string, string> add)
    {
        if (!defaults.ContainsKey(key))
        {
            add(path, "unknown field");
            return;
        }
        if (!IsSetting(path))
        {
            add(path, "derived from other settings; it cannot be set");
            return;
        }
        if (value is JsonObject fields && defaults[key] is JsonObject nested && !Maps.Contains(path))
        {
            foreach (var (child, childValue) in fields)
                Merge(target[key]!.AsObject(), nested, child, childValue, $"{path}.{child}", leaves, add);
            return;
        }
        target[key] = value?.DeepClone();
        leaves.Add(path);
    }

    /// <summary>
    /// The core's checks, every one of them (<see cref="RunSpec.Problems"/>, which include
    /// <see cref="PpoConfig.Problems"/> and the sampling checks). A problem is filed under the
    /// settings it reads that the request set; where it reads several of those, under the ones
    /// whose default alone clears it ("batch_size (4) must be a multiple of mini_batch_size … (3)"
    /// lands on miniBatchSize when the request set both), else under all of them. A problem of
    /// defaults alone is filed under the first setting it reads.
    /// </summary>
    static void CoreChecks(JsonObject spec, JsonObject defaults, List<string> leaves, Action<string, string> add)
    {
        static bool Persists(SettingProblem problem, JsonObject spec) =>
            CoreProblems(spec).Any(p => p.Fields.SequenceEqual(problem.Fields));
        foreach (var problem in CoreProblems(spec))
        {
            var text = Prefix().Replace(problem.Message, "");
            var set = problem.Fields.Where(leaves.Contains).ToList();
            if (set.Count > 1)
            {
                var alone = set.Where(leaf =>
                {
                    var probe = spec.DeepClone().AsObject();
                    Set(probe, leaf, Get(defaults, leaf)?.DeepClone());
                    return !Persists(problem, probe);
                }).ToList();
                if (alone.Count > 0) set = alone;
            }
            foreach (var field in set.Count > 0 ? set : [problem.Fields[0]]) add(field, text);
        }
    }

    /// <summary>
    /// The core's problems with <paramref name="spec"/>. What the request checks itself (base model,
    /// steps or epochs, rewards) is filled in, so that it is not reported twice.
    /// </summary>
    static List<SettingProblem> CoreProblems(JsonObject spec)
    {
        var parsed = JsonSerializer.Deserialize<RunSpec>(spec, RunSpec.Json)!;
        parsed = parsed with
        {
            BaseModel = string.IsNullOrWhiteSpace(parsed.BaseModel) ? "base" : parsed.BaseModel,
            Steps = parsed.Steps is null && parsed.Epochs is null ? 1 : parsed.Steps,
            Rewards = parsed.Rewards.Count == 0 ? new RunSpec().Rewards : parsed.Rewards,
        };
        return parsed.Problems().ToList();
    }

    /// <summary>Whether <paramref name="path"/> ("ppo.batchSize") names a settable property of <see cref="RunSpec"/>.</summary>
    static bool IsSetting(string path) => PropertyAt(path) is { CanWrite: true };

    static PropertyInfo? PropertyAt(string path)
    {
        PropertyInfo? property = null;
        var type = typeof(RunSpec);
        foreach (var part in path.Split('.'))
        {
            if (part.Length == 0) return null;
            property = type.GetProperty(char.ToUpperInvariant(part[0]) + part[1..], BindingFlags.Public | BindingFlags.Instance);
            if (property is null) return null;
            type = property.PropertyType;
        }
        return property;
    }

    /// <summary>Why <paramref name="value"/> cannot be the value of <paramref name="path"/>, or null when it can.</summary>
    static string? TypeError(string path, JsonNode? value, JsonObject defaults)
    {
        var type = PropertyAt(path)!.PropertyType;
        if (value is null)
            return Get(defaults, path) is null ? null : $"expected {Expected(type)}, got null";
        var probe = defaults.DeepClone().AsObject();
        Set(probe, path, value.DeepClone());
        try
        {
            JsonSerializer.Deserialize<RunSpec>(probe, RunSpec.Json);
            return null;
        }
        catch (JsonException)
        {
            return $"expected {Expected(type)}, got {value.ToJsonString()}";
        }
    }

    /// <summary>What a property of this type takes, in words ("a whole number", "one of kl, abs, mse, full").</summary>
    static string Expected(Type type)
    {
        if (Nullable.GetUnderlyingType(type) is { } inner) return $"{Expected(inner)} or null";
        if (type == typeof(int) || type == typeof(long)) return "a whole number";
        if (type == typeof(double) || type == typeof(float)) return "a number";
        if (type == typeof(bool)) return "true or false";
        if (type == typeof(string)) return "a string";
        if (type.IsEnum) return $"one of {string.Join(", ", Enum.GetNames(type).Select(n => JsonNamingPolicy.KebabCaseLower.ConvertName(n)))}";
        if (type == typeof(IReadOnlyDictionary<string, double>)) return "an object of names with numbers, e.g. {\"bleu\": 1.0}";
        return "an object with the fields of " + type.Name;
    }

    static JsonNode? Get(JsonObject root, string path)
    {
        JsonNode? node = root;
        foreach (var part in path.Split('.')) node = node?[part];
        return node;
    }

    static void Set(JsonObject root, string path, JsonNode? value)
    {
        var parts = path.Split('.');
        var parent = root;
        foreach (var part in parts[..^1]) parent = parent[part]!.AsObject();
        parent[parts[^1]] = value;
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

    /// <summary>The source a core message starts with, which a field's error leaves out.</summary>
    [GeneratedRegex("^(run spec|ppo config|reward settings): ")]
    private static partial Regex Prefix();
}
