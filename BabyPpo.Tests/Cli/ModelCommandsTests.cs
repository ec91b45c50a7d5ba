using System.Text.Json.Nodes;
using BabyPpo.Cli;

namespace BabyPpo.Tests.Cli;

/// <summary>score and generate on bad input: one error line naming the option and the value, exit code 2.</summary>
public sealed class ModelCommandsTests
{
    static readonly string TinyLlama = SharedData.Fixture("models", "tiny-llama");

    static void AssertUserError((int Code, string Out, string Err) result, params string[] expected)
    {
        Assert.Equal(2, result.Code);
        var lines = result.Err.TrimEnd().Split('\n');
        Assert.Single(lines);
        Assert.StartsWith("error: ", lines[0]);
        foreach (var text in expected) Assert.Contains(text, lines[0]);
        Assert.DoesNotContain("   at ", result.Err);
    }

    [Theory]
    [InlineData("1,99999,3", "99999", "0..999")]            // tiny-llama's vocab_size is 1000
    [InlineData("1,-5", "-5", "0..999")]
    [InlineData("1,1000", "1000", "0..999")]
    [InlineData("99999999999", "99999999999", "0..999")]
    [InlineData("1,x,3", "'x'", "whole numbers")]
    [InlineData("1,2.5", "'2.5'", "whole numbers")]
    [InlineData("999999999999999999999999", "'999999999999999999999999'", "whole numbers")]
    [InlineData(",", "','", "no ids")]
    [InlineData("", "''", "no ids")]
    public void ScoreIdsOutsideTheVocabularyOrUnparsableAreOneErrorNamingIds(string ids, string value, string problem)
    {
        AssertUserError(CliTests.Run("score", "--model", TinyLlama, "--ids", ids), "--ids", value, problem);
    }

    [Fact]
    public void ScoreIdsAtTheEdgesOfTheVocabularyAreScored()
    {
        var (code, output, _) = CliTests.Run("score", "--model", TinyLlama, "--ids", "0, 999", "--json");
        Assert.Equal(0, code);
        Assert.Equal("[0,999]", JsonNode.Parse(output)!["scores"]![0]!["ids"]!.ToJsonString());
    }

    [Fact]
    public void ScoreOfAMissingFolderSaysTheCheckpointFolderIsMissing()
    {
        var missing = Path.Combine(Path.GetTempPath(), "babyppo-no-such-model-" + Guid.NewGuid().ToString("N"));
        AssertUserError(CliTests.Run("score", "--model", missing, "--text", "hi"), missing, "checkpoint folder not found");
    }

    [Theory]
    [InlineData("--seed", "-1", "--seed")]
    [InlineData("--temperature", "-1", "temperature")]
    [InlineData("--top-p", "2", "top_p")]
    [InlineData("--top-k", "-1", "top_k")]
    public void GenerateRefusesBadSamplingValuesEvenWhenGreedy(string option, string value, string named)
    {
        AssertUserError(CliTests.Run("generate", "--model", TinyLlama, "--prompt", "hi", "--greedy", option, value), named, value);
    }

    [Fact]
    public void GenerateTruncateKeepsTheLastTokensOfAnOverlongPrompt()
    {
        // tiny-llama's window is 256 tokens; "the" is one token (308), and the prompt starts with BOS.
        string overlong = string.Concat(Enumerable.Repeat(" the", 300));
        AssertUserError(CliTests.Run("generate", "--model", TinyLlama, "--prompt", overlong, "--greedy", "--max-new-tokens", "4"), "context window", "--truncate");
        var (code, output, err) = CliTests.Run("generate", "--model", TinyLlama, "--prompt", overlong, "--greedy", "--max-new-tokens", "4", "--truncate", "--json");
        Assert.True(code == 0, err);
        Assert.Equal(4, JsonNode.Parse(output)!["completions"]![0]!["new_ids"]!.AsArray().Count);
    }

    [Fact]
    public void ScoredTokensAndFlopsCountOnlyThePredictedTokens()
    {
        // A sentence of T tokens feeds T − 1 of them and predicts T − 1; 2 FLOPs per parameter per fed token.
        int[][] sentences = [[1, 2, 3], [4, 5, 6, 7, 8], [9]];
        var (tokens, flops) = BenchCommands.ScoringWork(sentences, parameters: 1000);
        Assert.Equal(2 + 4 + 0, tokens);
        Assert.Equal(2.0 * 1000 * 6, flops);
    }

    [Fact]
    public void BenchmarkModelHasTheBabyLmParameterCount()
    {
        // Tied embedding 16000 × 256; per layer q, k, v, o (256 × 256 each), gate, up, down (256 × 1024 each) and two norms; the final norm.
        long expected = 16000L * 256 + 8 * (4L * 256 * 256 + 3L * 256 * 1024 + 2 * 256) + 256;
        using var model = BenchCommands.BabyLmSizedModel();
        Assert.Equal(expected, BenchCommands.Parameters(model));
    }
}
