namespace BabyPpo.Training;

/// <summary>
/// A problem with something the user gave us (a file, a folder, an option), as opposed to a bug.
/// The message names the file (and line or record when there is one) and what was expected, so
/// the CLI can print it on one line and exit with code 2, and the web app can show it as it is.
/// </summary>
public sealed class InputException : Exception
{
    public InputException(string message) : base(message) { }

    public InputException(string message, Exception inner) : base(message, inner) { }

    /// <summary>"file: message" or "file:line: message", the way compilers report.</summary>
    public static InputException At(string file, string message, long? line = null) =>
        new(line is null ? $"{file}: {message}" : $"{file}:{line}: {message}");
}
