using System.Text.Json.Nodes;
using BabyPpo.Training.Model;
using BabyPpo.Training.Ppo;
using static TorchSharp.torch;

namespace BabyPpo.Tests.Ppo;

/// <summary>
/// One PPO step against trl 0.8.6's PPOTrainer.step (../shared/fixtures/ppo-trl086): the
/// pre-update tensors, every mini-batch's statistics, the KL controller and the policy afterwards.
/// </summary>
public sealed class TrlParityTests : IClassFixture<TrlStepFixture>
{
    readonly TrlStepFixture _step;

    public TrlParityTests(TrlStepFixture step) => _step = step;

    [Fact]
    public void ResponseMasksMatchExactly()
    {
        var expected = _step.Targets["masks"].data<long>().ToArray();
        Assert.Equal(expected, _step.Captured["masks"].data<long>().ToArray());
        Assert.Equal(_step.Targets["input_ids"].data<long>().ToArray(), _step.Captured["input_ids"].data<long>().ToArray());
        Assert.Equal(_step.Targets["attention_mask"].data<long>().ToArray(), _step.Captured["attention_mask"].data<long>().ToArray());
    }

    [Theory]
    [InlineData("old_logprobs")]
    [InlineData("ref_logprobs")]
    [InlineData("old_values")]
    [InlineData("kls")]
    [InlineData("rewards")]
    [InlineData("non_score_rewards")]
    [InlineData("advantages")]
    [InlineData("returns")]
    public void PreUpdateTensorsMatchWhereTheMaskIsOne(string name)
    {
        var mask = _step.Targets["masks"].data<long>().ToArray();
        var expected = _step.Targets[name].data<float>().ToArray();
        var actual = _step.Captured[name].data<float>().ToArray();
        Assert.Equal(expected.Length, actual.Length);
        double worst = 0;
        for (int i = 0; i < mask.Length; i++)
            if (mask[i] == 1) worst = Math.Max(worst, Math.Abs(expected[i] - actual[i]));
        Assert.True(worst <= 1e-5, $"{name}: largest difference {worst:E2} where masks = 1 exceeds 1e-5");
    }

    [Fact]
    public void EveryMiniBatchStatisticMatchesWithinOneInTenThousand()
    {
        var expected = _step.Expected["minibatches"]!.AsArray();
        Assert.Equal(expected.Count, _step.Result.MiniBatches.Count);
        for (int i = 0; i < expected.Count; i++)
        {
            var e = expected[i]!;
            var (indices, actual) = _step.Result.MiniBatches[i];
            Assert.Equal(e["indices"]!.AsArray().Select(x => x!.GetValue<int>()), indices);
            Assert.Equal(e["skipped"]!.GetValue<bool>(), actual.Skipped);
            void Check(string key, double value)
            {
                double want = e[key]!.GetValue<double>();
                Assert.True(Math.Abs(value - want) <= 1e-4 * Math.Abs(want), $"mini-batch {i} {key}: {value} vs trl {want}");
            }
            Check("pg_loss", actual.PolicyLoss);
            Check("vf_loss", actual.ValueLoss);
            Check("loss_total", actual.TotalLoss);
            Check("pg_clipfrac", actual.PolicyClipFrac);
            Check("vf_clipfrac", actual.ValueClipFrac);
            Check("entropy", actual.Entropy);
            Check("approxkl", actual.ApproxKl);
            Check("policykl", actual.PolicyKl);
            Check("avg_ratio", actual.AverageRatio);
        }
    }

    [Fact]
    public void ObjectiveKlAndTheAdaptiveKlCoefficientMatch()
    {
        Assert.Equal(_step.Expected["objective_kl"]!.GetValue<double>(), _step.Result.Stats["objective/kl"], 1e-5);
        Assert.Equal(_step.Expected["kl_coef_before"]!.GetValue<double>(), _step.Result.KlCoefBefore, 12);
        Assert.Equal(_step.Expected["kl_coef_after"]!.GetValue<double>(), _step.Result.KlCoefAfter, 9);
        Assert.Equal(_step.Expected["mean_non_score_reward"]!.GetValue<double>(), _step.Result.Stats["ppo/mean_non_score_reward"], 1e-5);
    }

    [Fact]
    public void PolicyAndValueHeadAfterTheStepMatch()
    {
        using var after = TensorAssert.ExpectedTensors(SharedData.Fixture("ppo-trl086"), "after_step.safetensors");
        TensorAssert.AssertClose(after["probe_logits_after"], _step.ProbeLogits, "probe logits after the step");
        TensorAssert.AssertClose(after["probe_values_after"], _step.ProbeValues, "probe values after the step");
        TensorAssert.AssertClose(after["v_head_weight_after"], _step.ValueHeadWeight, "v_head.summary.weight after the step");
        TensorAssert.AssertClose(after["v_head_bias_after"], _step.ValueHeadBias, "v_head.summary.bias after the step");
    }
}

/// <summary>Runs the fixture's step once for all assertions and keeps what they compare.</summary>
public sealed class TrlStepFixture : IDisposable
{
    public JsonNode Expected { get; }
    public DisposableTensors Targets { get; }
    public Dictionary<string, Tensor> Captured { get; } = [];
    public PpoStepResult Result { get; }
    public Tensor ProbeLogits { get; }
    public Tensor ProbeValues { get; }
    public Tensor ValueHeadWeight { get; }
    public Tensor ValueHeadBias { get; }

    public TrlStepFixture()
    {
        var folder = SharedData.Fixture("ppo-trl086");
        Expected = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "expected.json")))!;
        Targets = TensorAssert.ExpectedTensors(folder, "step_inputs_and_targets.safetensors");
        var c = Expected["config"]!;
        var config = new PpoConfig
        {
            LearningRate = c["learning_rate"]!.GetValue<double>(),
            BatchSize = c["batch_size"]!.GetValue<int>(),
            MiniBatchSize = c["mini_batch_size"]!.GetValue<int>(),
            PpoEpochs = c["ppo_epochs"]!.GetValue<int>(),
            InitKlCoef = c["init_kl_coef"]!.GetValue<double>(),
            Target = c["target"]!.GetValue<double>(),
            Horizon = c["horizon"]!.GetValue<double>(),
            Gamma = c["gamma"]!.GetValue<double>(),
            Lam = c["lam"]!.GetValue<double>(),
            ClipRange = c["cliprange"]!.GetValue<double>(),
            ClipRangeValue = c["cliprange_value"]!.GetValue<double>(),
            VfCoef = c["vf_coef"]!.GetValue<double>(),
            KlPenalty = Enum.Parse<KlPenalty>(c["kl_penalty"]!.GetValue<string>(), ignoreCase: true),
            WhitenRewards = c["whiten_rewards"]!.GetValue<bool>(),
            RatioThreshold = c["ratio_threshold"]!.GetValue<double>(),
            AdamBeta1 = c["adam_betas"]![0]!.GetValue<double>(),
            AdamBeta2 = c["adam_betas"]![1]!.GetValue<double>(),
            AdamEps = c["adam_eps"]!.GetValue<double>(),
            ValueHeadDropout = 0,
        };
        var policy = Checkpoint.LoadModel(Path.Combine(folder, "policy-start"));
        var head = new ValueHead(policy.Config.HiddenSize, 0);
        head.Load(Path.Combine(folder, "v_head_init.safetensors"));
        var reference = Checkpoint.LoadModel(SharedData.Fixture("models", "tiny-llama"));
        using var trainer = new PpoTrainer(policy, head, reference, config, Expected["pad_id"]!.GetValue<long>());
        var permutations = new Queue<int[]>(Expected["permutations"]!.AsArray().Select(p => p!.AsArray().Select(x => x!.GetValue<int>()).ToArray()));
        trainer.Permutation = _ => permutations.Dequeue();

        int[][] Ids(string key) => Expected[key]!.AsArray().Select(r => r!.AsArray().Select(x => x!.GetValue<int>()).ToArray()).ToArray();
        Result = trainer.Step(Ids("query_ids"), Ids("response_ids"), Expected["scores"]!.AsArray().Select(s => s!.GetValue<double>()).ToArray(), batch =>
        {
            Keep("input_ids", batch.InputIds);
            Keep("attention_mask", batch.AttentionMask);
            Keep("masks", batch.Masks);
            Keep("old_logprobs", batch.OldLogProbs);
            Keep("ref_logprobs", batch.RefLogProbs);
            Keep("old_values", batch.OldValues);
            Keep("kls", batch.Kls);
            Keep("rewards", batch.Rewards);
            Keep("non_score_rewards", batch.NonScoreRewards);
            Keep("advantages", batch.Advantages);
            Keep("returns", batch.Returns);
        });

        using var after = TensorAssert.ExpectedTensors(folder, "after_step.safetensors");
        using (no_grad())
        {
            var probe = after["probe_input_ids"].unsqueeze(0);
            var hidden = policy.Hidden(probe);
            ProbeLogits = policy.Logits(hidden)[0].detach().clone().DetachFromDisposeScope();
            head.eval();
            ProbeValues = head.forward(hidden)[0].detach().clone().DetachFromDisposeScope();
            var trl = head.TrlStateDict();
            ValueHeadWeight = trl["v_head.summary.weight"].detach().clone().DetachFromDisposeScope();
            ValueHeadBias = trl["v_head.summary.bias"].detach().clone().DetachFromDisposeScope();
        }
        policy.Dispose();
        reference.Dispose();
        head.Dispose();
    }

    void Keep(string name, Tensor t) => Captured[name] = t.detach().cpu().clone().DetachFromDisposeScope();

    public void Dispose()
    {
        Targets.Dispose();
        foreach (var t in Captured.Values) t.Dispose();
        ProbeLogits.Dispose();
        ProbeValues.Dispose();
        ValueHeadWeight.Dispose();
        ValueHeadBias.Dispose();
    }
}
