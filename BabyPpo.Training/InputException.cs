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

/// <summary>
/// A setting out of range: the settings the check reads (camelCase names, as in a run spec's JSON;
/// the first is the one to name when no other reason decides) and the message a
/// <c>Validate()</c> throws for it. Settings records list every problem with <c>Problems()</c>,
/// so that a form can show each beside its field; <c>Validate()</c> throws the first.
/// </summary>
public sealed record SettingProblem(IReadOnlyList<string> Fields, string Message)
{
    public SettingProblem(string field, string message) : this([field], message) { }

    /// <summary>The same problem one level down, e.g. "batchSize" as "ppo.batchSize".</summary>
    public SettingProblem Under(string prefix) => this with { Fields = Fields.Select(f => $"{prefix}.{f}").ToList() };

    /// <summary>Throws the first of <paramref name="problems"/> as an <see cref="InputException"/>.</summary>
    public static void ThrowFirst(IEnumerable<SettingProblem> problems)
    {
        if (problems.FirstOrDefault() is { } problem) throw new InputException(problem.Message);
    }
}
