using BabyPpo.Training.Ppo;

namespace BabyPpo.Tests.Ppo;

/// <summary>The seed's prompt formats: how the query is written, how the answer is read, and which sampled tokens PPO keeps.</summary>
public sealed class PromptFormatTests
{
    [Fact]
    public void QueriesAreWrittenAsTheSeedWroteThem()
    {
        Assert.Equal("*MOT: where is the dog ? *CHI:", PromptFormats.Query(PromptFormat.ChiTag, "where is the dog ?"));
        Assert.Equal("*MOT: where is the dog ?", PromptFormats.Query(PromptFormat.Free, "where is the dog ?"));
    }

    [Theory]
    [InlineData(" The Dog is there . *MOT: yes", "the dog is there .", 21, true)]     // up to the next tag, lower-cased; keeps the tag's "*"
    [InlineData(" doggy !", "doggy !", 8, true)]                                          // no tag: the whole text
    [InlineData("*MOT: no", "", 1, true)]                                                  // a tag first: empty answer
    public void ChiTagAnswersEndAtTheNextSpeakerTag(string generated, string answer, int keepChars, bool found) =>
        Assert.Equal(new AnswerCut(answer, keepChars, found), PromptFormats.Cut(PromptFormat.ChiTag, generated));

    [Theory]
    [InlineData(" ok . *CHI: Doggy ! *MOT: yes", "Doggy !", 21, true)]                    // after the child's tag, up to the next
    [InlineData(" ok . *CHI: more", "more", 16, true)]
    [InlineData(" and the cat .", "", 14, false)]                                         // the baby never wrote *CHI:
    public void FreeAnswersFollowTheChildTagTheBabyWrote(string generated, string answer, int keepChars, bool found) =>
        Assert.Equal(new AnswerCut(answer, keepChars, found), PromptFormats.Cut(PromptFormat.Free, generated));

    // A toy vocabulary: id → text; 0 is EOS, which decoding leaves out (as skip_special_tokens does).
    static readonly string[] Pieces = ["", " the", " dog", " *", "MOT", ":", " yes"];
    static string Decode(IReadOnlyList<int> ids) => string.Concat(ids.Select(i => Pieces[i]));

    [Fact]
    public void TheTokensUpToTheTagsFirstCharacterAreKept()
    {
        int[] ids = [1, 2, 3, 4, 5, 6];                       // " the dog *MOT: yes"
        var cut = PromptFormats.Cut(PromptFormat.ChiTag, Decode(ids));
        Assert.Equal(3, PromptFormats.TokensCovering(ids, cut.KeepChars, Decode));   // " the", " dog", " *"
    }

    [Fact]
    public void AnAnswerEndedByEosKeepsTheEosToken()
    {
        int[] ids = [1, 2, 0];                                // " the dog" then EOS
        var cut = PromptFormats.Cut(PromptFormat.ChiTag, Decode(ids));
        Assert.Equal("the dog", cut.Answer);
        Assert.Equal(3, PromptFormats.TokensCovering(ids, cut.KeepChars, Decode));
    }

    [Fact]
    public void AnImmediateEosIsTheOneTokenOfAnEmptyAnswer()
    {
        int[] ids = [0];
        var cut = PromptFormats.Cut(PromptFormat.ChiTag, Decode(ids));
        Assert.Equal("", cut.Answer);
        Assert.Equal(1, PromptFormats.TokensCovering(ids, cut.KeepChars, Decode));
    }
}
