using System.Text.RegularExpressions;

namespace BabyPpo.Training.Ppo;

/// <summary>How a mother utterance becomes the query, and how the answer is read from what the baby generates.</summary>
public enum PromptFormat
{
    /// <summary>Query "*MOT: {utterance} *CHI:"; the answer is the text up to the next speaker tag, trimmed and lower-cased (the seed's BLEU/semsim runs).</summary>
    ChiTag,
    /// <summary>Query "*MOT: {utterance}"; the baby must write "*CHI:" itself; the answer is what follows it up to the next tag (the seed's score/confidence runs).</summary>
    Free,
}

/// <summary>
/// The answer read from a generation: its text, how many characters of the generated text the
/// response keeps (through the first character of the tag or marker that ended the answer), and
/// whether the answer was found at all (free format: whether the baby wrote "*CHI:").
/// </summary>
public sealed record AnswerCut(string Answer, int KeepChars, bool Found);

public static partial class PromptFormats
{
    /// <summary>A CHILDES speaker tag such as "*MOT:", "*CHI:", "*FAT:".</summary>
    [GeneratedRegex(@"\*[A-Z][A-Z0-9]{1,3}:")]
    private static partial Regex SpeakerTag();

    const string ChildTag = "*CHI:";

    public static string Query(PromptFormat format, string utterance) => format switch
    {
        PromptFormat.ChiTag => $"*MOT: {utterance} {ChildTag}",
        PromptFormat.Free => $"*MOT: {utterance}",
        _ => throw new ArgumentOutOfRangeException(nameof(format)),
    };

    /// <summary>Reads the answer from the generated continuation (the decoded new tokens).</summary>
    public static AnswerCut Cut(PromptFormat format, string generated)
    {
        if (format == PromptFormat.ChiTag)
        {
            var next = SpeakerTag().Match(generated);
            int end = next.Success ? next.Index : generated.Length;
            return new AnswerCut(generated[..end].Trim().ToLowerInvariant(), next.Success ? end + 1 : generated.Length, true);
        }
        int start = generated.IndexOf(ChildTag, StringComparison.Ordinal);
        if (start < 0) return new AnswerCut("", generated.Length, false);
        int from = start + ChildTag.Length;
        var after = SpeakerTag().Match(generated, from);
        int stop = after.Success ? after.Index : generated.Length;
        return new AnswerCut(generated[from..stop].Trim(), after.Success ? stop + 1 : generated.Length, true);
    }

    /// <summary>
    /// How many of the generated tokens cover the first <paramref name="keepChars"/> characters of
    /// their decoded text: PPO trains on exactly these sampled tokens (never a re-encoding). When
    /// the cut keeps the whole text, every token is kept, the EOS that ended it included (decoding
    /// drops it from the text, but the policy must learn when to stop).
    /// </summary>
    public static int TokensCovering(IReadOnlyList<int> newIds, int keepChars, Func<IReadOnlyList<int>, string> decode)
    {
        if (keepChars >= decode(newIds).Length) return newIds.Count;
        if (keepChars <= 0) return Math.Min(1, newIds.Count);
        for (int k = 1; k <= newIds.Count; k++)
            if (decode(newIds.Take(k).ToList()).Length >= keepChars) return k;
        return newIds.Count;
    }
}
