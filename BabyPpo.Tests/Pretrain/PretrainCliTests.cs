using System.Text.Json.Nodes;
using BabyPpo.Tests.Cli;
using BabyPpo.Tests.Data;

namespace BabyPpo.Tests.Pretrain;

/// <summary>The pretrain verb, run in-process as the command line runs it.</summary>
public sealed class PretrainCliTests
{
    static string[] Tiny(string data, string output, params string[] more) =>
        ["pretrain", "--data", data, "--out", output, "--config", "tiny", "--vocab-size", "300", "--batch-size", "4", "--block-size", "32",
         "--warmup", "2", "--eval-every", "3", "--checkpoint-every", "3", .. more];

    [Fact]
    public void PretrainWritesAModelThatTheGenerateCommandRuns()
    {
        using var folder = new TempFolder();
        var output = Path.Combine(folder.Path, "baby");

        var (code, stdout, stderr) = CliTests.Run(Tiny(TinyDialogue.Write(folder), output, "--steps", "6", "--json"));

        Assert.True(code == 0, stderr);
        var result = JsonNode.Parse(stdout)!;
        Assert.Equal(6, result["steps"]!.GetValue<int>());
        Assert.True(double.IsFinite(result["held_out_loss"]!.GetValue<double>()));
        Assert.Contains("held-out", stderr);   // the progress lines
        var generated = CliTests.Run("generate", "--model", output, "--prompt", "*MOT: where is the ball ? *CHI:", "--max-new-tokens", "4", "--json");
        Assert.True(generated.Code == 0, generated.Err);
    }

    [Fact]
    public void ResumeContinuesToTheNewStepCount()
    {
        using var folder = new TempFolder();
        var data = TinyDialogue.Write(folder);
        var output = Path.Combine(folder.Path, "baby");
        Assert.Equal(0, CliTests.Run(Tiny(data, output, "--steps", "3")).Code);

        var (code, stdout, stderr) = CliTests.Run("pretrain", "--data", data, "--out", output, "--steps", "5", "--resume", "--json");

        Assert.True(code == 0, stderr);
        Assert.Equal(5, JsonNode.Parse(stdout)!["steps"]!.GetValue<int>());
    }

    [Theory]
    [InlineData("--lr", "1e-3", "--lr cannot be given with --resume")]
    [InlineData("--config", "small", "--config cannot be given with --resume")]
    public void ChangingAStoredSettingOnResumeIsAUserError(string option, string value, string message)
    {
        var (code, _, stderr) = CliTests.Run("pretrain", "--data", "x.json", "--out", "nowhere", "--resume", option, value);

        Assert.Equal(2, code);
        Assert.Contains(message, stderr);
    }

    [Fact]
    public void ResumeWithoutACheckpointIsAUserError()
    {
        using var folder = new TempFolder();

        var (code, _, stderr) = CliTests.Run("pretrain", "--data", TinyDialogue.Write(folder), "--out", Path.Combine(folder.Path, "empty"), "--resume");

        Assert.Equal(2, code);
        Assert.Contains("no checkpoint to resume from", stderr);
    }

    [Fact]
    public void AnUnknownModelSizeIsAUserError()
    {
        using var folder = new TempFolder();

        var (code, _, stderr) = CliTests.Run("pretrain", "--data", TinyDialogue.Write(folder), "--out", Path.Combine(folder.Path, "out"), "--config", "huge");

        Assert.Equal(2, code);
        Assert.Contains("unknown model size 'huge'", stderr);
    }

    [Fact]
    public void TokenizerAndVocabularySizeTogetherAreAUserError()
    {
        var (code, _, stderr) = CliTests.Run("pretrain", "--data", "x.json", "--out", "o", "--tokenizer", "t.json", "--vocab-size", "300");

        Assert.Equal(2, code);
        Assert.Contains("not both", stderr);
    }
}
