namespace BabyPpo.Training.Rewards;

/// <summary>One answer to reward: the mother's utterance, the baby's answer, and the reference answers (teacher answers or the real child reply).</summary>
public sealed record RewardInput(string Mot, string Chi, IReadOnlyList<string> References);

/// <summary>Rewards in input order, and counters worth logging (e.g. unparseable judge outputs).</summary>
public sealed record RewardResult(double[] Values, IReadOnlyDictionary<string, double> Metrics);

/// <summary>A batched reward: a pure function of (mot, chi, references) for each item of the batch.</summary>
public interface IReward
{
    string Name { get; }

    RewardResult Score(IReadOnlyList<RewardInput> batch, CancellationToken cancellationToken = default);
}
