namespace BabyPpo.Tests;

/// <summary>
/// Finds the read-only ../shared folder (fixtures and data) beside the repository, or where the
/// BABYPPO_SHARED environment variable points.
/// </summary>
public static class SharedData
{
    public static string Root { get; } = Find();

    public static string Fixture(params string[] parts) => Path.Combine([Root, "fixtures", .. parts]);

    public static string Data(params string[] parts) => Path.Combine([Root, "data", .. parts]);

    static string Find()
    {
        var fromEnvironment = Environment.GetEnvironmentVariable("BABYPPO_SHARED");
        if (!string.IsNullOrEmpty(fromEnvironment))
        {
            if (Directory.Exists(Path.Combine(fromEnvironment, "fixtures"))) return Path.GetFullPath(fromEnvironment);
            throw new DirectoryNotFoundException($"BABYPPO_SHARED={fromEnvironment} has no fixtures/ folder");
        }
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            foreach (var candidate in new[] { Path.Combine(dir.FullName, "shared"), Path.Combine(dir.FullName, "..", "shared") })
                if (Directory.Exists(Path.Combine(candidate, "fixtures"))) return Path.GetFullPath(candidate);
        }
        throw new DirectoryNotFoundException($"no shared/fixtures folder above {AppContext.BaseDirectory}: clone the repository beside ../shared or set BABYPPO_SHARED");
    }
}
