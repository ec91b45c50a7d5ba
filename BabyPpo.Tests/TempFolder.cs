namespace BabyPpo.Tests;

/// <summary>A fresh folder under the system temp folder for files a test writes; deleted on dispose.</summary>
internal sealed class TempFolder : IDisposable
{
    public string Path { get; } = Directory.CreateDirectory(
        System.IO.Path.Combine(System.IO.Path.GetTempPath(), "babyppo-data-" + Guid.NewGuid().ToString("N"))).FullName;

    /// <summary>Writes <paramref name="text"/> to a file of this folder (subfolders created) and returns its path.</summary>
    public string Write(string name, string text)
    {
        var path = System.IO.Path.Combine(Path, name);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text);
        return path;
    }

    public void Dispose() => Directory.Delete(Path, recursive: true);
}
