using BabyPpo.Training;
using BabyPpo.Training.Rewards;

namespace BabyPpo.Tests.Rewards;

/// <summary>The judge parser on realistic judge outputs: the first stand-alone number in 0–5.</summary>
public sealed class JudgeParserTests
{
    [Theory]
    [InlineData("4", 4.0)]
    [InlineData("3.", 3.0)]
    [InlineData(" 5\n", 5.0)]
    [InlineData("0", 0.0)]
    [InlineData("Score: 4", 4.0)]
    [InlineData("Rating: 3/5", 3.0)]
    [InlineData("0/5", 0.0)]                                         // the seed's regex read this as 5
    [InlineData("4.5", 4.5)]
    [InlineData("Rating: 0.5", 0.5)]
    [InlineData("Rating: 3.0", 3.0)]
    [InlineData("2.5/5 - too short", 2.5)]
    [InlineData("I would rate this 2 out of 5.", 2.0)]
    [InlineData("**4**", 4.0)]
    [InlineData("(2)", 2.0)]
    [InlineData("Score:4/5", 4.0)]
    [InlineData("4 / 5", 4.0)]
    [InlineData("rating=2;", 2.0)]
    [InlineData("The child's response is fluent. 5", 5.0)]
    [InlineData("I'd give it a 1 because it is too short", 1.0)]
    [InlineData("5.0 (perfectly fine answer)", 5.0)]
    [InlineData("<|assistant|>\n4", 4.0)]
    [InlineData("MOT: what is that?\nCHI: a ball\n3", 3.0)]
    [InlineData("3-4", 3.0)]                                         // a range: its first end
    [InlineData("1-5 scale: 3", 1.0)]                                // the first number wins, even an echoed scale
    [InlineData("7 ... I mean 4", 4.0)]                              // out-of-range numbers are skipped
    [InlineData("The answer is 12 words long, so 2", 2.0)]
    [InlineData("CHI2 gets a 4", 4.0)]                               // "CHI2" holds no stand-alone number
    [InlineData("rate: 4\nRate: 2", 4.0)]
    [InlineData("Score: 3,5", 3.0)]                                  // a decimal comma is not read
    [InlineData("Rating: 10/10", null)]
    [InlineData("Score 5.5", null)]
    [InlineData("7", null)]
    [InlineData("-1", null)]                                         // the minus belongs to the number
    [InlineData("5th", null)]
    [InlineData("1.2.3", null)]
    [InlineData("four", null)]                                       // number words are not read
    [InlineData("The child's answer", null)]
    [InlineData("", null)]
    [InlineData("<|end|>", null)]
    public void ReadsTheFirstStandAloneNumberInRange(string output, double? expected) =>
        Assert.Equal(expected, JudgeParser.Parse(output));
}

/// <summary>The score reward: the seed's prompt, greedy 10 tokens, batch order kept, defaults counted.</summary>
public sealed class JudgeRewardTests
{
    [Fact]
    public void PromptIsTheSeedTemplateFilledIn()
    {
        const string expected =
            "<|system|>\nYou are presented with a dialogue between a mother (MOT) and a child (CHI). Please rate how contextually appropriate and fluent the child's response is, on a scale from 0 (completely unfitting) to 5 (perfectly fine answer). If CHI answer is too short rate it low.\n<|end|>\n<|user|>\nMOT: what is that?\nCHI: a doggy\n<|end|>\n<|assistant|>\n";
        Assert.Equal(expected, JudgeReward.Prompt(JudgeReward.SeedTemplate, "what is that?", "a doggy"));
    }

    [Fact]
    public void ScoresKeepBatchOrderAndUnparseableOutputsGetTheDefault()
    {
        // The stub answers from the CHI line of each prompt, so a reordering would show.
        var judge = new StubLlm(prompt => prompt.Contains("CHI: good") ? "5" : prompt.Contains("CHI: ok") ? "Rating: 3/5" : "I cannot rate this");
        var batch = new[]
        {
            new RewardInput("hi", "ok", []),
            new RewardInput("hi", "good", []),
            new RewardInput("hi", "???", []),
            new RewardInput("hi", "good", []),
        };
        var result = new JudgeReward(judge, defaultScore: -1).Score(batch);
        Assert.Equal([3.0, 5.0, -1.0, 5.0], result.Values);
        Assert.Equal(1.0, result.Metrics["score/unparseable"]);
        Assert.Equal(3.0, result.Metrics["score/mean"]);
        var (prompts, sampling) = Assert.Single(judge.Calls);
        Assert.Equal(4, prompts.Count);
        Assert.True(sampling.IsGreedy);
        Assert.Equal(10, sampling.MaxTokens);
        Assert.Equal(1, sampling.N);
    }

    [Fact]
    public void EmptyPunctuationOnlyAndUnicodeAnswersGoToTheJudgeVerbatim()
    {
        // The seed asks the judge about every answer, even an empty one ("If CHI answer is too short
        // rate it low"); the stub rates by the CHI line, so each answer's own rating must come back.
        var judge = new StubLlm(prompt => prompt.Contains("CHI: \n") ? "0" : prompt.Contains("CHI: ?!\n") ? "1" : prompt.Contains("CHI: café 🎈 für dich\n") ? "4.5" : "nothing");
        var result = new JudgeReward(judge).Score([new RewardInput("hi", "", []), new RewardInput("hi", "?!", []), new RewardInput("wie geht's?", "café 🎈 für dich", [])]);
        Assert.Equal([0.0, 1.0, 4.5], result.Values);
        Assert.Equal(0.0, result.Metrics["score/unparseable"]);
        Assert.Contains("MOT: wie geht's?\nCHI: café 🎈 für dich\n", Assert.Single(judge.Calls).Prompts[2]);
    }

    [Fact]
    public void CustomTemplateMustHoldTheAnswer()
    {
        var judge = new StubLlm(_ => "4");
        Assert.Throws<InputException>(() => new JudgeReward(judge, "Rate this: {mot}"));
        var result = new JudgeReward(judge, "MOT={mot} CHI={chi} score:").Score([new RewardInput("hi", "hello", [])]);
        Assert.Equal("MOT=hi CHI=hello score:", Assert.Single(judge.Calls).Prompts[0]);
        Assert.Equal(4.0, result.Values[0]);
    }
}

/// <summary>A hand-written back-end for unit tests of reward logic: completes with a function, scores from a table.</summary>
internal sealed class StubLlm(Func<string, string>? complete = null, Func<string, string, ContinuationScore>? score = null) : ILlmBackend
{
    public List<(IReadOnlyList<string> Prompts, LlmSampling Sampling)> Calls { get; } = [];
    public List<IReadOnlyList<(string Context, string Continuation)>> ScoreCalls { get; } = [];

    public string Name => "stub";

    public IReadOnlyList<IReadOnlyList<LlmCompletion>> Complete(IReadOnlyList<string> prompts, LlmSampling sampling, CancellationToken cancellationToken = default)
    {
        Calls.Add((prompts, sampling));
        return prompts.Select(p => (IReadOnlyList<LlmCompletion>)Enumerable.Range(0, sampling.N).Select(_ => new LlmCompletion(complete!(p), "stop")).ToList()).ToList();
    }

    public IReadOnlyList<ContinuationScore> ScoreContinuations(IReadOnlyList<(string Context, string Continuation)> pairs, CancellationToken cancellationToken = default)
    {
        ScoreCalls.Add(pairs);
        return pairs.Select(p => score!(p.Context, p.Continuation)).ToList();
    }

    public void Dispose() { }
}
