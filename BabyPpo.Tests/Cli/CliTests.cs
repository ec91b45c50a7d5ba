using System.Text.Json.Nodes;
using BabyPpo.Training.Model;

namespace BabyPpo.Tests.Cli;

/// <summary>The babyppo verbs, run in-process exactly as the command line runs them.</summary>
public sealed class CliTests
{
    static readonly string TinyLlama = SharedData.Fixture("models", "tiny-llama");

    internal static (int Code, string Out, string Err) Run(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int code = BabyPpo.Cli.Cli.Run(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    static JsonNode Fixture(string folder, string file = "expected.json") =>
        JsonNode.Parse(File.ReadAllText(Path.Combine(folder, file)))!;

    [Fact]
    public void TokenizePrintsTheFixtureIdsAndTokens()
    {
        var expected = Fixture(SharedData.Fixture("tokenizers", "bytelevel-bpe")).AsArray()[0]!;
        var (code, output, _) = Run("tokenize", "--tokenizer", SharedData.Fixture("tokenizers", "bytelevel-bpe"), "--text", expected["text"]!.GetValue<string>(), "--json");
        Assert.Equal(0, code);
        var json = JsonNode.Parse(output)!;
        Assert.Equal(expected["ids"]!.ToJsonString(), json["ids"]!.ToJsonString());
        Assert.Equal(expected["tokens"]!.AsArray().Select(t => t!.GetValue<string>()), json["tokens"]!.AsArray().Select(t => t!.GetValue<string>()));
    }

    [Fact]
    public void ScorePrintsTheFixtureLogProbabilitySumsForTextAndIds()
    {
        var sentence = Fixture(TinyLlama)["sentences"]!.AsArray()[2]!;
        string ids = string.Join(",", sentence["ids"]!.AsArray().Select(x => x!.GetValue<int>()));
        var (code, output, _) = Run("score", "--model", TinyLlama, "--text", sentence["text"]!.GetValue<string>(), "--ids", ids, "--json");
        Assert.Equal(0, code);
        var scores = JsonNode.Parse(output)!["scores"]!.AsArray();
        Assert.Equal(2, scores.Count);
        foreach (var score in scores)
        {
            Assert.Equal(sentence["ids"]!.ToJsonString(), score!["ids"]!.ToJsonString());
            Assert.Equal(sentence["logprob_sum_after_first"]!.GetValue<double>(), score["logprob_sum"]!.GetValue<double>(), 1e-3);
        }
    }

    [Fact]
    public void GenerateGreedyPrintsTheFixtureContinuations()
    {
        var greedy = Fixture(TinyLlama)["greedy"]!.AsArray();
        var args = new List<string> { "generate", "--model", TinyLlama, "--greedy", "--max-new-tokens", "12", "--json" };
        foreach (var g in greedy) args.AddRange(["--prompt", g!["prompt"]!.GetValue<string>()]);
        var (code, output, _) = Run([.. args]);
        Assert.Equal(0, code);
        var completions = JsonNode.Parse(output)!["completions"]!.AsArray();
        for (int i = 0; i < greedy.Count; i++)
            Assert.Equal(greedy[i]!["new_ids"]!.ToJsonString(), completions[i]!["new_ids"]!.ToJsonString());
    }

    [Fact]
    public void MissingModelFolderIsOneErrorLineWithExitCodeTwo()
    {
        var missing = Path.Combine(Path.GetTempPath(), "babyppo-no-such-model");
        AssertUserError(Run("score", "--model", missing, "--ids", "1,2,3"), missing, "not found");
    }

    [Fact]
    public void ConfigOfAnotherArchitectureIsRefused()
    {
        using var folder = TempModel.CopyOf(TinyLlama);
        File.WriteAllText(Path.Combine(folder.Path, "config.json"), """{"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_embd": 64}""");
        AssertUserError(Run("score", "--model", folder.Path, "--ids", "1,2,3"), Path.Combine(folder.Path, "config.json"), "GPT2LMHeadModel");
    }

    [Theory]
    [InlineData("missing", "missing tensor")]
    [InlineData("extra", "unexpected tensor")]
    [InlineData("shape", "shape")]
    public void SafetensorsWithAMissingOrExtraKeyOrAWrongShapeIsRefused(string damage, string expected)
    {
        using var folder = TempModel.CopyOf(TinyLlama);
        var weights = Path.Combine(folder.Path, "model.safetensors");
        var tensors = SafeTensors.Load(weights);
        switch (damage)
        {
            case "missing": tensors.Remove("model.norm.weight"); break;
            case "extra": tensors["model.layers.9.mlp.up_proj.weight"] = TorchSharp.torch.zeros(2, 2); break;
            case "shape": tensors["model.norm.weight"] = TorchSharp.torch.ones(63); break;
        }
        SafeTensors.Save(weights, tensors);
        foreach (var t in tensors.Values) t.Dispose();
        AssertUserError(Run("score", "--model", folder.Path, "--ids", "1,2,3"), weights, expected);
    }

    [Fact]
    public void TruncatedSafetensorsIsRefused()
    {
        using var folder = TempModel.CopyOf(TinyLlama);
        var weights = Path.Combine(folder.Path, "model.safetensors");
        var bytes = File.ReadAllBytes(weights);
        File.WriteAllBytes(weights, bytes[..(bytes.Length / 2)]);
        AssertUserError(Run("score", "--model", folder.Path, "--ids", "1,2,3"), weights, "truncated");
    }

    [Fact]
    public void TokenizerOfAnUnsupportedModelTypeIsRefused()
    {
        using var folder = TempModel.CopyOf(TinyLlama);
        var path = Path.Combine(folder.Path, "tokenizer.json");
        var json = JsonNode.Parse(File.ReadAllText(path))!;
        json["model"]!["type"] = "WordPiece";
        File.WriteAllText(path, json.ToJsonString());
        AssertUserError(Run("tokenize", "--tokenizer", folder.Path, "--text", "hi"), path, "WordPiece");
    }

    [Fact]
    public void UnknownOptionsAndCommandsAreUserErrors()
    {
        AssertUserError(Run("score", "--modle", TinyLlama), "score", "unknown option --modle");
        Assert.Equal(2, Run("frobnicate").Code);
    }

    static void AssertUserError((int Code, string Out, string Err) result, string names, string problem)
    {
        Assert.Equal(2, result.Code);
        var lines = result.Err.TrimEnd().Split('\n');
        Assert.Single(lines);
        Assert.StartsWith("error: ", lines[0]);
        Assert.Contains(names, lines[0]);
        Assert.Contains(problem, lines[0]);
        Assert.DoesNotContain("   at ", result.Err);
    }
}

/// <summary>A throwaway copy of a checkpoint folder, deleted on dispose.</summary>
internal sealed class TempModel : IDisposable
{
    public string Path { get; }

    TempModel(string path) => Path = path;

    public static TempModel CopyOf(string folder)
    {
        var path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "babyppo-test-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(path);
        foreach (var file in Directory.GetFiles(folder)) File.Copy(file, System.IO.Path.Combine(path, System.IO.Path.GetFileName(file)));
        return new TempModel(path);
    }

    public void Dispose()
    {
        if (Directory.Exists(Path)) Directory.Delete(Path, recursive: true);
    }
}
