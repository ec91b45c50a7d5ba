using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using BabyPpo.Training.Ppo;
using BabyPpo.Training.Rewards;
using BabyPpo.Web.Jobs;

namespace BabyPpo.Web.Components;

/// <summary>
/// The new-experiment form's state: the request's fields as the user edits them, pre-filled with
/// <see cref="BabyPpo.Training.Ppo.RunSpec"/>'s defaults (for PPO: the seed system's batch 16 and
/// mini-batch 4, trl 0.8.6's values for the rest), turned into the same JSON body that POST
/// /api/runs takes. Nested settings keep their default JSON value's kind.
/// </summary>
public sealed class RunForm
{
    readonly JsonObject _defaults = RunRequest.Defaults();

    public RunForm(RunChoices choices)
    {
        BaseModel = choices.Models.ContainsKey("demo-baby") ? "demo-baby" : choices.Models.Keys.FirstOrDefault() ?? "";
        PromptSet = choices.PromptSets.Contains("demo-prompts") ? "demo-prompts" : choices.PromptSets.FirstOrDefault() ?? "";
        Queue = choices.Queues[0];
        Format = _defaults["format"]!.GetValue<string>();
        foreach (var reward in choices.Rewards) Rewards[reward] = new RewardChoice { Weight = 1 };
        foreach (var (name, weight) in _defaults["rewards"]!.AsObject())
            if (Rewards.TryGetValue(name, out var choice)) (choice.Selected, choice.Weight) = (true, weight!.GetValue<double>());
        Steps = 100;
        CheckpointEvery = _defaults["checkpointEvery"]!.GetValue<int>();
        SampleEvery = _defaults["sampleEvery"]!.GetValue<int>();
        Seed = _defaults["seed"]!.GetValue<int>();
        foreach (var (key, value) in _defaults["ppo"]!.AsObject().Where(kv => Settable<PpoConfig>(kv.Key))) Ppo[key] = Text(value);
        foreach (var (key, value) in _defaults["generation"]!.AsObject().Where(kv => Settable<GenerationSettings>(kv.Key))) Generation[key] = Text(value);
        foreach (var (key, value) in _defaults["rewardSettings"]!.AsObject().Where(kv => Settable<RewardOptions>(kv.Key))) RewardSettings[key] = Text(value);
    }

    public string Name { get; set; } = "";
    public string BaseModel { get; set; }
    public string PromptSet { get; set; }
    public string Format { get; set; }
    public Dictionary<string, RewardChoice> Rewards { get; } = [];
    /// <summary>"steps" or "epochs": which of the two decides the run's length.</summary>
    public string Length { get; set; } = "steps";
    public int? Steps { get; set; }
    public double? Epochs { get; set; } = 1;
    public int CheckpointEvery { get; set; }
    public int SampleEvery { get; set; }
    public int Seed { get; set; }
    public string Queue { get; set; }
    public HashSet<string> Evaluations { get; } = [];
    /// <summary>PPO settings by their JSON name, as text (booleans "true"/"false", enums by name, "" for an unset optional number).</summary>
    public Dictionary<string, string> Ppo { get; } = [];
    public Dictionary<string, string> Generation { get; } = [];
    /// <summary>How the rewards are computed (<see cref="RewardOptions"/> without its back-ends, which are the installation's).</summary>
    public Dictionary<string, string> RewardSettings { get; } = [];

    /// <summary>trl 0.8.6's default of each PPO setting (<see cref="PpoConfig"/>'s own defaults), as the form writes values.</summary>
    public static IReadOnlyDictionary<string, string> TrlDefaults { get; } =
        JsonSerializer.SerializeToNode(new PpoConfig(), RunSpec.Json)!.AsObject()
            .Where(kv => Settable<PpoConfig>(kv.Key)).ToDictionary(kv => kv.Key, kv => Text(kv.Value));

    /// <summary>
    /// The kind of a nested setting: "number", "bool", "choice" (an enum: see <see cref="ChoicesOf"/>),
    /// "text", "longtext" (a default with line breaks) or "optional" (a number that may stay empty).
    /// </summary>
    public string KindOf(string group, string key) => _defaults[group]![key] switch
    {
        null => "optional",
        JsonValue v when v.TryGetValue<bool>(out _) => "bool",
        JsonValue v when v.TryGetValue<string>(out var text) => ChoicesOf(group, key).Count > 0 ? "choice" : text.Contains('\n') ? "longtext" : "text",
        _ => "number",
    };

    /// <summary>The values an enum setting takes, as the request writes them ("kl", "mean-per-token"); empty for other settings.</summary>
    public static IReadOnlyList<string> ChoicesOf(string group, string key)
    {
        var type = group switch
        {
            "ppo" => typeof(PpoConfig),
            "generation" => typeof(GenerationSettings),
            "rewardSettings" => typeof(RewardOptions),
            _ => null,
        };
        var property = type?.GetProperty(char.ToUpperInvariant(key[0]) + key[1..]);
        return property?.PropertyType is { IsEnum: true } e
            ? Enum.GetNames(e).Select(JsonNamingPolicy.KebabCaseLower.ConvertName).ToList()
            : [];
    }

    /// <summary>
    /// The request body. A nested number that does not parse goes as the text typed, so that the
    /// request's checks report it beside its field together with every other error.
    /// </summary>
    public JsonObject ToRequest() => new()
    {
        ["name"] = Name,
        ["baseModel"] = BaseModel,
        ["promptSet"] = PromptSet,
        ["format"] = Format,
        ["rewards"] = new JsonObject(Rewards.Where(r => r.Value.Selected).Select(r => KeyValuePair.Create(r.Key, (JsonNode?)r.Value.Weight))),
        ["checkpointEvery"] = CheckpointEvery,
        ["sampleEvery"] = SampleEvery,
        ["seed"] = Seed,
        ["queue"] = Queue,
        ["evaluations"] = new JsonArray([.. Evaluations.Order().Select(e => (JsonNode?)e)]),
        ["steps"] = Length == "steps" ? Steps : null,
        ["epochs"] = Length == "epochs" ? Epochs : null,
        ["ppo"] = Group("ppo", Ppo),
        ["generation"] = Group("generation", Generation),
        ["rewardSettings"] = Group("rewardSettings", RewardSettings),
    };

    /// <summary>The request paths this form shows a message slot for; messages for any other path are shown at the top.</summary>
    public IEnumerable<string> Fields =>
        ["", "name", "baseModel", "promptSet", "format", "rewards", "steps", "epochs", "checkpointEvery", "sampleEvery", "seed", "queue", "evaluations",
            "ppo", "generation", "rewardSettings", .. Ppo.Keys.Select(k => $"ppo.{k}"), .. Generation.Keys.Select(k => $"generation.{k}"),
            .. RewardSettings.Keys.Select(k => $"rewardSettings.{k}")];

    JsonObject Group(string group, Dictionary<string, string> values)
    {
        var result = new JsonObject();
        foreach (var (key, text) in values)
        {
            result[key] = KindOf(group, key) switch
            {
                "bool" => text == "true",
                "text" or "longtext" or "choice" => text,
                "optional" when string.IsNullOrWhiteSpace(text) => null,
                _ => double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var number) && double.IsFinite(number)
                    ? number
                    : text,
            };
        }
        return result;
    }

    /// <summary>Whether the JSON field is a setting (PpoConfig also writes a derived value, backwardBatchSize).</summary>
    static bool Settable<T>(string key) => typeof(T).GetProperty(char.ToUpperInvariant(key[0]) + key[1..])?.CanWrite == true;

    static string Text(JsonNode? value) => value switch
    {
        null => "",
        JsonValue v when v.TryGetValue<bool>(out var b) => b ? "true" : "false",
        JsonValue v when v.TryGetValue<string>(out var s) => s,
        _ => value.ToJsonString(),
    };

    /// <summary>One reward of the form: ticked or not, and its weight.</summary>
    public sealed class RewardChoice
    {
        public bool Selected { get; set; }
        public double Weight { get; set; }
    }
}
