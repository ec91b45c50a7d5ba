using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace BabyPpo.Training.Rewards;

/// <summary>How far a teacher run is: prompts answered out of those to answer, and those skipped as done before.</summary>
public sealed record TeacherProgress(int Answered, int ToAnswer, int AlreadyAnswered);

/// <summary>
/// Teacher answers: N child-like answers per caregiver utterance from a teacher LLM, with the seed's
/// prompt and sampling (temperature 0.8, top-p 0.8, 20 new tokens, stop at a newline, "Mother:" or
/// "Child:", the first utterance kept), written as JSON lines <c>{"prompt": …, "references": […]}</c>
/// — the prompt-set format <see cref="Data.Datasets.ReadPromptSet"/> reads.
/// </summary>
public static class TeacherAnswers
{
    /// <summary>The seed's system text.</summary>
    public const string SystemText =
        "You are a young child having a conversation with your mother. When your mother says something, you should answer as a typical and natural-sounding child. Do NOT repeat her words. Instead, give a new, relevant answer that shows understanding. Keep it short and child-like.";

    /// <summary>The seed's stop strings.</summary>
    public static readonly IReadOnlyList<string> StopStrings = ["\n", "Mother:", "Child:"];

    /// <summary>The seed's sampling for <paramref name="n"/> answers per prompt.</summary>
    public static LlmSampling Sampling(int n, ulong? seed = null) =>
        new() { Temperature = 0.8, TopP = 0.8, MaxTokens = 20, N = n, Stop = StopStrings, Seed = seed };

    /// <summary>The seed's teacher prompt: <c>"{system}\nMother says:{mot}\n Child answers:"</c>.</summary>
    public static string Prompt(string mot) => $"{SystemText}\nMother says:{mot}\n Child answers:";

    /// <summary>The first utterance of a completion: the text before any stop string, trimmed.</summary>
    public static string FirstUtterance(string completion) => LlmSampling.CutAtStop(completion, StopStrings).Text.Trim();

    /// <summary>
    /// Answers every utterance not yet in <paramref name="outPath"/>, appending one line per prompt
    /// (flushed to disk at once, so a crash loses nothing written). Lines already there are kept and
    /// their prompts skipped; a last line cut short by a crash is dropped first. Blank answers are
    /// asked again (up to <paramref name="rounds"/> rounds); a prompt that still has none is left
    /// out, to be tried on the next run. Returns the number of lines written.
    /// </summary>
    public static int Write(ILlmBackend teacher, IReadOnlyList<string> utterances, int n, string outPath,
        IProgress<TeacherProgress>? progress = null, int promptsPerCall = 16, ulong? seed = null, int rounds = 3,
        CancellationToken cancellationToken = default)
    {
        if (n < 1) throw new InputException($"--n must be at least 1, got {n}");
        var answered = ReadAnswered(outPath);
        var pending = utterances.Distinct(StringComparer.Ordinal).Where(u => !answered.Contains(u)).ToList();
        int skipped = utterances.Distinct(StringComparer.Ordinal).Count() - pending.Count, done = 0, written = 0;
        progress?.Report(new TeacherProgress(0, pending.Count, skipped));

        if (Path.GetDirectoryName(Path.GetFullPath(outPath)) is { } folder) Directory.CreateDirectory(folder);
        using var stream = new FileStream(outPath, FileMode.Append, FileAccess.Write, FileShare.Read);
        using var writer = new StreamWriter(stream, new UTF8Encoding(false));
        foreach (var (chunk, call) in pending.Chunk(promptsPerCall).Select((chunk, call) => (chunk, call)))
        {
            var answers = chunk.ToDictionary(u => u, _ => new List<string>(), StringComparer.Ordinal);
            for (int round = 0; round < rounds; round++)
            {
                var needed = chunk.Where(u => answers[u].Count < n).ToList();
                if (needed.Count == 0) break;
                // Ask for n again in later rounds too: the prompt's n samples share one request.
                var completions = teacher.Complete(needed.Select(Prompt).ToList(), Sampling(n, seed + (ulong)(call * rounds + round)), cancellationToken);
                for (int i = 0; i < needed.Count; i++)
                    answers[needed[i]].AddRange(completions[i].Select(c => FirstUtterance(c.Text)).Where(a => a.Length > 0).Take(n - answers[needed[i]].Count));
            }
            foreach (var utterance in chunk)
            {
                if (answers[utterance].Count > 0)
                {
                    var line = new JsonObject { ["prompt"] = utterance, ["references"] = new JsonArray(answers[utterance].Select(a => (JsonNode)JsonValue.Create(a)).ToArray()) };
                    writer.Write(line.ToJsonString(JsonLine) + "\n");
                    writer.Flush();
                    stream.Flush(flushToDisk: true);
                    written++;
                }
                done++;
            }
            progress?.Report(new TeacherProgress(done, pending.Count, skipped));
        }
        return written;
    }

    static readonly JsonSerializerOptions JsonLine = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>The prompts of an existing output file; drops a last line without its line break (a crash mid-write).</summary>
    static HashSet<string> ReadAnswered(string path)
    {
        var answered = new HashSet<string>(StringComparer.Ordinal);
        if (!File.Exists(path)) return answered;
        var bytes = File.ReadAllBytes(path);
        int complete = Array.LastIndexOf(bytes, (byte)'\n') + 1;
        if (complete < bytes.Length)
            using (var stream = new FileStream(path, FileMode.Open, FileAccess.Write)) stream.SetLength(complete);
        var lines = Encoding.UTF8.GetString(bytes, 0, complete).Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            if (string.IsNullOrWhiteSpace(lines[i])) continue;
            try
            {
                var prompt = JsonNode.Parse(lines[i])?["prompt"]?.GetValue<string>();
                if (prompt is null) throw new JsonException();
                answered.Add(prompt);
            }
            catch (Exception e) when (e is JsonException or InvalidOperationException)
            {
                throw InputException.At(path, "expected {\"prompt\": …, \"references\": […]} on this line (is this a teacher output file?)", i + 1);
            }
        }
        return answered;
    }
}
