using System.Text.Json.Nodes;
using BabyPpo.Training.Ppo;

namespace BabyPpo.Tests.Cli;

/// <summary>The data and train verbs, run in-process as the command line runs them.</summary>
public sealed class DataAndTrainCommandsTests
{
    [Fact]
    public void DataListsPresentAndMissingSetsWithWhereToGetThem()
    {
        var (code, output, _) = CliTests.Run("data", "--data-root", SharedData.Data(), "--demo-root", SharedData.DemoData, "--json");
        Assert.Equal(0, code);
        var sets = JsonNode.Parse(output)!["sets"]!.AsArray().ToDictionary(s => s!["name"]!.GetValue<string>(), s => s!);
        Assert.True(sets["demo-prompts"]["present"]!.GetValue<bool>());
        Assert.True(sets["dialogue-train"]["present"]!.GetValue<bool>());
        Assert.True(sets["zorro"]["present"]!.GetValue<bool>());
        var lexical = sets["lexical-decision"];
        Assert.False(lexical["present"]!.GetValue<bool>());
        Assert.Contains("bbunzeck/lexical-decision", lexical["source"]!.GetValue<string>());
        Assert.Equal(Path.Combine(SharedData.Data(), "lexical-decision", "lexical-decision.csv"), lexical["paths"]![0]!.GetValue<string>());
    }

    [Fact]
    public void TrainRunsResumesToMoreStepsAndRefusesAChangedConfig()
    {
        using var folder = new TempFolder();
        var config = folder.Write("ppo.json", """{"batch_size": 4, "mini_batch_size": 2, "ppo_epochs": 1, "seed": 3}""");
        var output = Path.Combine(folder.Path, "run");
        string[] common = ["train", "--model", SharedData.Fixture("models", "tiny-llama"), "--prompts", "demo-prompts", "--demo-root", SharedData.DemoData,
                           "--reward", "bleu", "--config", config, "--out", output, "--max-new-tokens", "4", "--json"];

        var (code, stdout, stderr) = CliTests.Run([.. common, "--steps", "2"]);
        Assert.True(code == 0, stderr);
        Assert.Equal(2, JsonNode.Parse(stdout)!["steps_done"]!.GetValue<int>());
        var spec = RunSpec.FromJson(File.ReadAllText(Path.Combine(output, PpoRun.SpecFile)));
        Assert.Equal((3, 3), (spec.Seed, spec.Ppo.Seed));                 // the config's seed, as --seed was not given

        (code, stdout, stderr) = CliTests.Run([.. common, "--steps", "3", "--resume"]);
        Assert.True(code == 0, stderr);
        Assert.Equal(3, JsonNode.Parse(stdout)!["steps_done"]!.GetValue<int>());
        Assert.Equal([1.0, 2.0, 3.0], PpoRun.ReadMetrics(output).Select(m => m["step"]));

        (code, _, stderr) = CliTests.Run([.. common, "--steps", "4", "--resume", "--seed", "4"]);
        Assert.Equal(2, code);
        Assert.Contains("seed was 3, now 4", stderr);
        Assert.Single(stderr.Trim().Split('\n'));
    }
}
