using BabyPpo.Training.Data;
using BabyPpo.Training.Rewards;
using BabyPpo.Web.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace BabyPpo.Web.Jobs;

/// <summary>An evaluation the app offers: a catalogue data set and the evaluation task that reads it.</summary>
public sealed record EvaluationChoice(string Name, string Task, string Description, string Path);

/// <summary>
/// What this installation offers a new run or evaluation: registered models, the prompt sets and
/// evaluation sets present under the data root, the queues, and the rewards whose models are set up.
/// </summary>
public sealed class Catalog(IDbContextFactory<BabyPpoDb> dbs, IOptions<DataOptions> data, IOptions<JobsOptions> jobs, IOptions<RewardsOptions> rewards)
{
    /// <summary>The evaluation task (<c>Tasks.Names</c>) that reads each kind of data set.</summary>
    static readonly Dictionary<DataKind, string> TaskOfKind = new()
    {
        [DataKind.Zorro] = "zorro",
        [DataKind.MinimalPairs] = "pairs",
        [DataKind.DialoguePairs] = "dialogue",
        [DataKind.LexicalDecision] = "lexical",
    };

    public IReadOnlyList<DataSetStatus> DataSets() =>
        DataCatalog.Resolve(Path.GetFullPath(data.Value.Root), Path.GetFullPath(data.Value.DemoRoot));

    public IReadOnlyList<string> PromptSets() =>
        DataSets().Where(s => s.Present && s.Info.Kind == DataKind.PromptSet).Select(s => s.Info.Name).ToList();

    /// <summary>Evaluation sets present on this machine, in catalogue order.</summary>
    public IReadOnlyList<EvaluationChoice> Evaluations() =>
        DataSets().Where(s => s.Present && TaskOfKind.ContainsKey(s.Info.Kind))
            .Select(s => new EvaluationChoice(s.Info.Name, TaskOfKind[s.Info.Kind], s.Info.Description, s.FullPaths[0])).ToList();

    public IReadOnlyList<string> Queues() => jobs.Value.Queues;

    /// <summary>bleu and semsim always; score and confidence when their judge / teacher is configured.</summary>
    public IReadOnlyList<string> Rewards() => RewardFactory.Names.Where(name => name switch
    {
        "score" => rewards.Value.Judge.IsSet,
        "confidence" => rewards.Value.Teacher.IsSet,
        _ => true,
    }).ToList();

    public async Task<RunChoices> RunChoicesAsync(CancellationToken cancellationToken = default)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var models = await db.Models.OrderBy(m => m.Name).ToDictionaryAsync(m => m.Name, m => m.Id, cancellationToken);
        return new RunChoices(models, PromptSets(), Queues(), Rewards(), Evaluations().Select(e => e.Name).ToList());
    }
}
