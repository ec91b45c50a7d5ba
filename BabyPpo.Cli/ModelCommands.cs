using System.Globalization;
using System.Text.Json.Nodes;
using BabyPpo.Training;
using BabyPpo.Training.Inference;
using BabyPpo.Training.Model;
using BabyPpo.Training.Text;

namespace BabyPpo.Cli;

/// <summary>tokenize, score and generate: the model and tokenizer, directly.</summary>
public static class ModelCommands
{
    public static IEnumerable<Command> All =>
    [
        new("tokenize", "encode text with a tokenizer.json (a file or a checkpoint folder)",
        [
            new("tokenizer", "tokenizer.json or a folder holding it"),
            new("text", "the text to encode"),
            new("no-special", "leave out special tokens (e.g. BOS)", IsFlag: true),
        ], Tokenize),
        new("score", "summed log-probability of texts (tokens 1..T-1, natural log)",
        [
            new("model", "Hugging Face checkpoint folder"),
            new("text", "a text to score (repeatable)", Repeatable: true),
            new("ids", "comma-separated token ids to score instead of text (repeatable)", Repeatable: true),
            new("bow-correction", "apply the beginning-of-word correction", IsFlag: true),
        ], Score),
        new("generate", "continue prompts with the model",
        [
            new("model", "Hugging Face checkpoint folder"),
            new("prompt", "a prompt (repeatable)", Repeatable: true),
            new("greedy", "take the most likely token at every step", IsFlag: true),
            new("top-k", "sample from the k most likely tokens (0 = off)", Default: "0"),
            new("top-p", "nucleus sampling mass (1.0 = off)", Default: "1.0"),
            new("temperature", "sampling temperature", Default: "1.0"),
            new("seed", "seed of the sampling generator", Default: "0"),
            new("max-new-tokens", "tokens to generate at most", Default: "20"),
            new("min-new-tokens", "tokens to generate before EOS is allowed", Default: "0"),
            new("stop", "stop a sequence once its text contains this (repeatable)", Repeatable: true),
            new("truncate", "keep only the last tokens of a prompt too long for the context window (left-truncation) instead of failing", IsFlag: true),
        ], Generate),
    ];

    static int Tokenize(Args args, Output output)
    {
        var tokenizer = Tokenizer.Load(args.Required("tokenizer"));
        string text = args.Required("text");
        bool special = !args.Flag("no-special");
        var ids = tokenizer.Encode(text, special);
        var tokens = tokenizer.EncodeToTokens(text, special);
        output.Result(
            new JsonObject { ["ids"] = Json.Array(ids), ["tokens"] = Json.Array(tokens) },
            () => string.Join("\n", ids.Zip(tokens, (id, token) => $"{id,6}  {token}")));
        return 0;
    }

    static int Score(Args args, Output output)
    {
        var texts = args.All("text");
        var idTexts = args.All("ids").Select(ParseIds).ToList();
        if (texts.Count == 0 && idTexts.Count == 0) throw new InputException("score: give --text TEXT or --ids 1,2,3 (each repeatable)");
        string folder = args.Required("model");
        Checkpoint.RequireFolder(folder);
        // Scoring ids needs no tokenizer; scoring text does.
        var tokenizer = texts.Count > 0 ? Tokenizer.Load(folder) : Checkpoint.TryLoadTokenizer(folder);
        using var model = Checkpoint.LoadModel(folder);
        int vocabulary = model.Config.VocabSize;
        foreach (var id in idTexts.SelectMany(ids => ids))
            if (id < 0 || id >= vocabulary)
                throw new InputException($"score: --ids holds {id}, outside the model's vocabulary (0..{vocabulary - 1})");
        var idLists = idTexts.Select(ids => ids.Select(id => (int)id).ToArray()).ToList();
        var scorer = new Scorer(model, tokenizer, new ScorerOptions { BowCorrection = args.Flag("bow-correction") });
        var sequences = texts.Select(t => tokenizer!.Encode(t)).Concat(idLists).ToList();
        var labels = texts.Concat(idLists.Select(ids => tokenizer?.Decode(ids, skipSpecialTokens: false) ?? string.Join(",", ids))).ToList();
        var scores = scorer.Score(sequences);
        var rows = new JsonArray();
        for (int i = 0; i < sequences.Count; i++)
            rows.Add(new JsonObject { ["text"] = labels[i], ["ids"] = Json.Array(sequences[i]), ["logprob_sum"] = scores[i].Sum });
        output.Result(new JsonObject { ["scores"] = rows },
            () => string.Join("\n", scores.Select((s, i) => $"{s.Sum,12:F4}  {labels[i]}")));
        return 0;
    }

    static int Generate(Args args, Output output)
    {
        var prompts = args.All("prompt");
        if (prompts.Count == 0) throw new InputException("generate: give at least one --prompt TEXT");
        var options = new SamplingOptions
        {
            Greedy = args.Flag("greedy"),
            TopK = args.Int("top-k", 0),
            TopP = args.Double("top-p", 1.0),
            Temperature = args.Double("temperature", 1.0),
            Seed = Seed(args),
            MaxNewTokens = args.Int("max-new-tokens", 20),
            MinNewTokens = args.Int("min-new-tokens", 0),
            StopStrings = args.All("stop"),
            TruncatePrompts = args.Flag("truncate"),
        };
        options.Validate();
        using var pretrained = Checkpoint.Load(args.Required("model"));
        var completions = new Generator(pretrained.Model, pretrained.Tokenizer).Generate(prompts, options);
        var rows = new JsonArray();
        for (int i = 0; i < prompts.Count; i++)
            rows.Add(new JsonObject
            {
                ["prompt"] = prompts[i],
                ["new_ids"] = Json.Array(completions[i].NewIds),
                ["text"] = completions[i].Text,
                ["finish_reason"] = completions[i].FinishReason.ToString().ToLowerInvariant(),
            });
        output.Result(new JsonObject { ["completions"] = rows },
            () => string.Join("\n", completions.Select((c, i) => $"{prompts[i]}{c.Text}")));
        return 0;
    }

    static ulong Seed(Args args)
    {
        long seed = args.Long("seed", 0);
        return seed >= 0 ? (ulong)seed : throw new InputException($"generate: --seed must be a whole number >= 0, got {seed}");
    }

    /// <summary>"1, 2,3" → [1, 2, 3]; the ids are checked against the vocabulary once the model is loaded.</summary>
    static long[] ParseIds(string text)
    {
        var parts = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (parts.Length == 0) throw new InputException($"score: --ids expects comma-separated token ids such as 1,2,3, got '{text}' (no ids)");
        var ids = new long[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!long.TryParse(parts[i], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out ids[i]))
                throw new InputException($"score: --ids expects comma-separated token ids (whole numbers), got '{parts[i]}' in '{text}'");
        return ids;
    }
}

/// <summary>Small helpers to build JSON output.</summary>
static class Json
{
    public static JsonArray Array<T>(IEnumerable<T> values) => new(values.Select(v => JsonValue.Create(v)).ToArray<JsonNode?>());
}
