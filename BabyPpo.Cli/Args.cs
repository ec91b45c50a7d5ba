using System.Globalization;
using BabyPpo.Training;

namespace BabyPpo.Cli;

/// <summary>One option a command accepts: <c>--name VALUE</c>, or <c>--name</c> alone for a flag.</summary>
public sealed record Option(string Name, string Help, bool IsFlag = false, bool Repeatable = false, string? Default = null);

/// <summary>
/// The parsed options of one command. Unknown options, missing values and values of the wrong
/// type are user errors (<see cref="InputException"/>), reported on one line with exit code 2.
/// </summary>
public sealed class Args
{
    readonly Dictionary<string, List<string>> _values = new(StringComparer.Ordinal);
    readonly string _command;

    Args(string command) => _command = command;

    public static Args Parse(string command, IReadOnlyList<Option> options, IReadOnlyList<string> argv)
    {
        var args = new Args(command);
        var known = options.ToDictionary(o => o.Name, StringComparer.Ordinal);
        for (int i = 0; i < argv.Count; i++)
        {
            string token = argv[i];
            if (!token.StartsWith("--", StringComparison.Ordinal))
                throw new InputException($"{command}: unexpected argument '{token}' (options start with --; see 'babyppo {command} --help')");
            string name = token[2..];
            string? inlineValue = null;
            int eq = name.IndexOf('=');
            if (eq >= 0) (name, inlineValue) = (name[..eq], name[(eq + 1)..]);
            if (!known.TryGetValue(name, out var option))
                throw new InputException($"{command}: unknown option --{name} (see 'babyppo {command} --help')");
            string value;
            if (option.IsFlag)
            {
                if (inlineValue is not null) throw new InputException($"{command}: --{name} is a flag and takes no value");
                value = "true";
            }
            else if (inlineValue is not null) value = inlineValue;
            else if (i + 1 < argv.Count) value = argv[++i];
            else throw new InputException($"{command}: --{name} needs a value");
            if (!args._values.TryGetValue(name, out var list)) args._values[name] = list = [];
            if (list.Count > 0 && !option.Repeatable) throw new InputException($"{command}: --{name} given twice");
            list.Add(value);
        }
        foreach (var option in options.Where(o => o.Default is not null && !args._values.ContainsKey(o.Name)))
            args._values[option.Name] = [option.Default!];
        return args;
    }

    public bool Has(string name) => _values.ContainsKey(name);

    public bool Flag(string name) => _values.ContainsKey(name);

    public string? Get(string name) => _values.TryGetValue(name, out var v) ? v[^1] : null;

    public IReadOnlyList<string> All(string name) => _values.TryGetValue(name, out var v) ? v : [];

    public string Required(string name) => Get(name) ?? throw new InputException($"{_command}: --{name} is required");

    public int Int(string name, int fallback) => Get(name) is { } s ? ParseInt(name, s) : fallback;

    public int? IntOrNull(string name) => Get(name) is { } s ? ParseInt(name, s) : null;

    public long Long(string name, long fallback) =>
        Get(name) is not { } s ? fallback
        : long.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v
        : throw new InputException($"{_command}: --{name} expects a whole number, got '{s}'");

    public double Double(string name, double fallback) => Get(name) is { } s ? ParseDouble(name, s) : fallback;

    public double? DoubleOrNull(string name) => Get(name) is { } s ? ParseDouble(name, s) : null;

    int ParseInt(string name, string s) =>
        int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v
        : throw new InputException($"{_command}: --{name} expects a whole number, got '{s}'");

    double ParseDouble(string name, string s) =>
        double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v
        : throw new InputException($"{_command}: --{name} expects a number, got '{s}'");
}
