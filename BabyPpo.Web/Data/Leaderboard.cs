using System.Globalization;
using System.Text;
using System.Text.Json;
using BabyPpo.Evaluation;
using Microsoft.EntityFrameworkCore;

namespace BabyPpo.Web.Data;

/// <summary>One cell of the leaderboard: the newest finished evaluation of a model or checkpoint on a task.</summary>
public sealed record LeaderboardEntry(
    int EvaluationId, string Label, string Task, string? Dataset, int N, double Accuracy, double? MacroAccuracy,
    double CiLow, double CiHigh, int Unscorable, DateTime? FinishedAt)
{
    /// <summary>The number a paper quotes: the macro average over paradigms when there are paradigms, else the accuracy.</summary>
    public double Headline => MacroAccuracy ?? Accuracy;
}

/// <summary>The paired comparison of two leaderboard rows on one task they share.</summary>
public sealed record TaskComparison(string Task, Comparison Comparison);

/// <summary>Reads the evaluations back: the leaderboard's cells, whole reports (items included), paired comparisons and exports.</summary>
public sealed class Leaderboard(IDbContextFactory<BabyPpoDb> dbs)
{
    /// <summary>The newest succeeded evaluation of each (label, task).</summary>
    public async Task<List<LeaderboardEntry>> EntriesAsync(CancellationToken cancellationToken = default)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var all = await db.Evaluations.AsNoTracking().Where(e => e.Status == JobStatus.Succeeded).OrderByDescending(e => e.Id).ToListAsync(cancellationToken);
        return all.GroupBy(e => (e.Label, e.Task)).Select(g => g.First())
            .Select(e => new LeaderboardEntry(e.Id, e.Label, e.Task, e.Dataset, e.N, e.Accuracy ?? 0, e.MacroAccuracy, e.CiLow ?? 0, e.CiHigh ?? 0, e.Unscorable, e.FinishedAt))
            .OrderBy(e => e.Label, StringComparer.Ordinal).ThenBy(e => e.Task, StringComparer.Ordinal).ToList();
    }

    /// <summary>An evaluation as the report it was stored from, with its paradigms and items.</summary>
    public async Task<EvalReport> ReportAsync(int evaluationId, CancellationToken cancellationToken = default)
    {
        await using var db = await dbs.CreateDbContextAsync(cancellationToken);
        var e = await db.Evaluations.AsNoTracking().Include(x => x.Paradigms).SingleAsync(x => x.Id == evaluationId, cancellationToken);
        var rows = await db.Items.AsNoTracking().Where(i => i.EvaluationId == evaluationId).OrderBy(i => i.Id).ToListAsync(cancellationToken);
        // Non-finite scores were stored as null (SQLite has no NaN); they come back as NaN, here and not in SQL.
        var items = rows.Select(i => new ItemResult(i.ItemId, i.Correct, i.ScoreGood ?? double.NaN, i.ScoreBad ?? double.NaN, i.Group)).ToList();
        return new EvalReport(e.Task, e.Label, e.Dataset ?? "", e.N, e.Accuracy ?? 0, new Interval(e.CiLow ?? 0, e.CiHigh ?? 0), e.MacroAccuracy,
            e.Paradigms.OrderBy(p => p.Name, StringComparer.Ordinal).ToDictionary(p => p.Name, p => new GroupResult(p.N, p.Accuracy)),
            items, JsonSerializer.Deserialize<Dictionary<string, string>>(e.Options) ?? [], e.Unscorable,
            e.FinishedAt is { } t ? new DateTimeOffset(t) : null);
    }

    /// <summary>Row B against row A on every task both have: B − A with its paired 95% interval and McNemar's p.</summary>
    public async Task<List<TaskComparison>> CompareAsync(string labelA, string labelB, CancellationToken cancellationToken = default)
    {
        var entries = await EntriesAsync(cancellationToken);
        var result = new List<TaskComparison>();
        foreach (var a in entries.Where(e => e.Label == labelA))
        {
            var b = entries.FirstOrDefault(e => e.Label == labelB && e.Task == a.Task);
            if (b is null) continue;
            var comparison = Reports.Compare(await ReportAsync(a.EvaluationId, cancellationToken), await ReportAsync(b.EvaluationId, cancellationToken));
            result.Add(new TaskComparison(a.Task, comparison));
        }
        return result;
    }

    /// <summary>"model,task,dataset,n,accuracy,macro_accuracy,ci_low,ci_high,unscorable", one line per cell, invariant culture.</summary>
    public static string ToCsv(IEnumerable<LeaderboardEntry> entries)
    {
        var csv = new StringBuilder("model,task,dataset,n,accuracy,macro_accuracy,ci_low,ci_high,unscorable\n");
        foreach (var e in entries)
        {
            csv.Append(CultureInfo.InvariantCulture,
                $"{Field(e.Label)},{Field(e.Task)},{Field(e.Dataset ?? "")},{e.N},{e.Accuracy:F4},{(e.MacroAccuracy is { } m ? m.ToString("F4", CultureInfo.InvariantCulture) : "")},{e.CiLow:F4},{e.CiHigh:F4},{e.Unscorable}\n");
        }
        return csv.ToString();
    }

    /// <summary>The table of <see cref="Reports.ToMarkdown"/>: models × tasks, headline accuracy with its interval.</summary>
    public static string ToMarkdown(IEnumerable<LeaderboardEntry> entries) =>
        Reports.ToMarkdown(entries.Select(e => new EvalReport(e.Task, e.Label, e.Dataset ?? "", e.N, e.Accuracy, new Interval(e.CiLow, e.CiHigh),
            e.MacroAccuracy, new Dictionary<string, GroupResult>(), [], new Dictionary<string, string>(), e.Unscorable)).ToList());

    static string Field(string value) =>
        value.IndexOfAny([',', '"', '\n', '\r']) < 0 ? value : $"\"{value.Replace("\"", "\"\"")}\"";
}
