namespace BabyPpo.Tests;

/// <summary>
/// The shared, read-only folder of reference fixtures and data (<c>../shared</c> beside the repository).
/// Found from <c>BABYPPO_SHARED</c> when set, else by walking up from the test binaries to the first
/// folder holding <c>shared/fixtures</c>.
/// </summary>
public static class SharedData
{
    private static readonly Lazy<string> LazyRoot = new(FindRoot);

    /// <summary>The absolute path of the shared folder.</summary>
    public static string Root => LazyRoot.Value;

    /// <summary>A path under <c>shared/fixtures</c>.</summary>
    public static string Fixture(params string[] parts) => Path.Combine([Root, "fixtures", .. parts]);

    /// <summary>A path under <c>shared/data</c>.</summary>
    public static string Data(params string[] parts) => Path.Combine([Root, "data", .. parts]);

    /// <summary>The repository's own folder (the one holding BabyPpo.sln).</summary>
    public static string RepositoryRoot { get; } = FindRepositoryRoot();

    /// <summary>The demo data that ships in the repository (data/demo).</summary>
    public static string DemoData => Path.Combine(RepositoryRoot, "data", "demo");

    private static string FindRepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "BabyPpo.sln"))) return dir.FullName;
        throw new DirectoryNotFoundException($"no BabyPpo.sln above {AppContext.BaseDirectory}");
    }

    private static string FindRoot()
    {
        var configured = Environment.GetEnvironmentVariable("BABYPPO_SHARED");
        if (!string.IsNullOrEmpty(configured))
        {
            return Directory.Exists(Path.Combine(configured, "fixtures"))
                ? Path.GetFullPath(configured)
                : throw new DirectoryNotFoundException($"BABYPPO_SHARED is {configured}, which has no fixtures folder");
        }
        for (var folder = new DirectoryInfo(AppContext.BaseDirectory); folder is not null; folder = folder.Parent)
        {
            var candidate = Path.Combine(folder.FullName, "shared");
            if (Directory.Exists(Path.Combine(candidate, "fixtures")))
                return candidate;
        }
        throw new DirectoryNotFoundException(
            $"no shared/fixtures folder above {AppContext.BaseDirectory}; clone the repository beside ../shared or set BABYPPO_SHARED");
    }
}
