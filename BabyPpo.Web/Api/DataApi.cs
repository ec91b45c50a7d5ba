using BabyPpo.Training.Data;
using BabyPpo.Web.Jobs;
using Microsoft.AspNetCore.Http.HttpResults;

namespace BabyPpo.Web.Api;

/// <summary>
/// A catalogue data set as this installation sees it: whether all its files are under the data root
/// (or the demo folder), the paths it is expected at, and where to get it when it is missing.
/// </summary>
public sealed record DataSetView(string Name, DataKind Kind, string Description, bool Present, bool Demo, IReadOnlyList<string> Paths, string Source, string Licence)
{
    public static DataSetView From(DataSetStatus status) => new(
        status.Info.Name, status.Info.Kind, status.Info.Description, status.Present, status.Info.IsDemo, status.FullPaths, status.Info.Source, status.Info.Licence);
}

/// <summary>/api/data: every data set the catalogue knows, present or missing.</summary>
public static class DataApi
{
    public static IEndpointRouteBuilder MapDataApi(this IEndpointRouteBuilder app)
    {
        app.MapGet("/api/data", List).WithTags("Data")
            .WithSummary("Every data set of the catalogue: name, kind, whether it is present, the paths it is expected at, its source and licence.")
            .WithDescription("Missing sets are listed too, with where to get them; put their files at the given paths (under Data:Root) and they are offered on the next request.");
        return app;
    }

    static Ok<List<DataSetView>> List(Catalog catalog) => TypedResults.Ok(catalog.DataSets().Select(DataSetView.From).ToList());
}
