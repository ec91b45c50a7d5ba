using System.Text;
using System.Text.Json;

namespace BabyPpo.Training.Data;

/// <summary>
/// One JSON object read from a file, with where it came from: its 1-based record number and the
/// line it starts on, so that every complaint about it can say "file:line: record n: …".
/// </summary>
internal readonly record struct JsonRecord(string File, int Number, long Line, JsonElement Value)
{
    /// <summary>A required string field.</summary>
    public string Text(string field) =>
        OptionalText(field) ?? throw Error($"missing field \"{field}\" (expected a string)");

    /// <summary>A string field that may be absent or null.</summary>
    public string? OptionalText(string field)
    {
        if (!Value.TryGetProperty(field, out var value) || value.ValueKind == JsonValueKind.Null) return null;
        if (value.ValueKind != JsonValueKind.String)
            throw Error($"field \"{field}\" is a {Kind(value)}, expected a string");
        return value.GetString()!;
    }

    /// <summary>A string or number field that may be absent or null (a group label, say), as text.</summary>
    public string? OptionalLabel(string field)
    {
        if (!Value.TryGetProperty(field, out var value) || value.ValueKind == JsonValueKind.Null) return null;
        return value.ValueKind switch
        {
            JsonValueKind.String => value.GetString(),
            JsonValueKind.Number => value.GetRawText(),
            _ => throw Error($"field \"{field}\" is a {Kind(value)}, expected a string"),
        };
    }

    /// <summary>An optional array of strings; absent or null gives an empty list.</summary>
    public IReadOnlyList<string> Texts(string field)
    {
        if (!Value.TryGetProperty(field, out var value) || value.ValueKind == JsonValueKind.Null) return [];
        if (value.ValueKind != JsonValueKind.Array)
            throw Error($"field \"{field}\" is a {Kind(value)}, expected an array of strings");
        var texts = new List<string>(value.GetArrayLength());
        foreach (var item in value.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.String)
                throw Error($"field \"{field}\" holds a {Kind(item)} at position {texts.Count + 1}, expected only strings");
            texts.Add(item.GetString()!);
        }
        return texts;
    }

    public bool Has(string field) => Value.TryGetProperty(field, out _);

    public InputException Error(string message) => InputException.At(File, $"record {Number}: {message}", Line);

    static string Kind(JsonElement value) => value.ValueKind.ToString().ToLowerInvariant();
}

/// <summary>
/// The file formats under the readers: whole files as bytes or lines, JSON arrays and JSON lines
/// as <see cref="JsonRecord"/>s, and CSV (RFC 4180 quoting). Every problem is an
/// <see cref="InputException"/> that names the file and, where there is one, the line.
/// </summary>
internal static class RecordFiles
{
    /// <summary>Every line of a text file (the final line break is optional). Not empty.</summary>
    public static string[] Lines(string path)
    {
        var lines = Guard(path, () => File.ReadAllLines(path));
        if (lines.All(string.IsNullOrWhiteSpace)) throw InputException.At(path, "the file is empty");
        return lines;
    }

    /// <summary>
    /// The JSON objects of a file: a JSON array of objects when it ends in .json, else one object
    /// per line (JSON lines; blank lines skipped). Not empty.
    /// </summary>
    public static IReadOnlyList<JsonRecord> Json(string path) =>
        Path.GetExtension(path).Equals(".json", StringComparison.OrdinalIgnoreCase) ? JsonArray(path) : JsonLines(path);

    public static IReadOnlyList<JsonRecord> JsonLines(string path)
    {
        var lines = Lines(path);
        var records = new List<JsonRecord>();
        for (int i = 0; i < lines.Length; i++)
        {
            if (string.IsNullOrWhiteSpace(lines[i])) continue;
            var record = new JsonRecord(path, records.Count + 1, i + 1, ParseLine(path, lines[i], i + 1));
            if (record.Value.ValueKind != JsonValueKind.Object) throw record.Error("expected a JSON object on this line");
            records.Add(record);
        }
        return records;
    }

    public static IReadOnlyList<JsonRecord> JsonArray(string path)
    {
        var bytes = Guard(path, () => File.ReadAllBytes(path));
        var text = bytes.AsSpan();
        if (text.StartsWith(Encoding.UTF8.Preamble)) text = text[Encoding.UTF8.Preamble.Length..];
        if (text.Trim(" \t\r\n"u8).IsEmpty) throw InputException.At(path, "the file is empty");
        var records = ParseArray(path, text);
        if (records.Count == 0) throw InputException.At(path, "the JSON array has no records");
        return records;
    }

    /// <summary>
    /// One pass of the JSON reader over an array: each element is parsed on its own and tagged
    /// with the line it starts on (counted as we go, so only the bytes are scanned once).
    /// </summary>
    static List<JsonRecord> ParseArray(string path, ReadOnlySpan<byte> text)
    {
        var reader = new Utf8JsonReader(text);
        var records = new List<JsonRecord>();
        try
        {
            reader.Read();
            if (reader.TokenType != JsonTokenType.StartArray)
                throw InputException.At(path, "expected a JSON array of records (a file of one object per line should be named .jsonl)", 1);
            long line = 1, counted = 0;
            while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
            {
                line += text[(int)counted..(int)reader.TokenStartIndex].Count((byte)'\n');
                counted = reader.TokenStartIndex;
                var record = new JsonRecord(path, records.Count + 1, line, JsonElement.ParseValue(ref reader));
                if (record.Value.ValueKind != JsonValueKind.Object) throw record.Error("expected a JSON object");
                records.Add(record);
            }
            while (reader.Read()) { } // anything after the array is a syntax error
        }
        catch (JsonException e)
        {
            throw ParserError(path, e, 0);
        }
        return records;
    }

    static JsonElement ParseLine(string path, string line, long lineNumber)
    {
        try
        {
            using var document = JsonDocument.Parse(line);
            return document.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw ParserError(path, e, lineNumber - 1);
        }
    }

    /// <summary>The parser's own words and position, without its "LineNumber: …" tail.</summary>
    static InputException ParserError(string path, JsonException e, long firstLine)
    {
        var message = e.Message;
        int tail = message.IndexOf(" LineNumber:", StringComparison.Ordinal);
        if (tail >= 0) message = message[..tail];
        long line = firstLine + (e.LineNumber ?? 0) + 1;
        long column = (e.BytePositionInLine ?? 0) + 1;
        return InputException.At(path, $"invalid JSON at position {column}: {message}", line);
    }

    /// <summary>
    /// The records of a CSV file with the line each starts on. Cells may be quoted ("…"), with
    /// "" for a quote inside; quoted cells may hold commas, tabs and line breaks. Blank lines are
    /// skipped. Not empty.
    /// </summary>
    public static IReadOnlyList<(long Line, string[] Cells)> Csv(string path)
    {
        var text = Guard(path, () => File.ReadAllText(path));
        if (string.IsNullOrWhiteSpace(text)) throw InputException.At(path, "the file is empty");
        var records = new List<(long, string[])>();
        var cells = new List<string>();
        var cell = new StringBuilder();
        long line = 1, recordLine = 1;
        bool quoted = false, cellWasQuoted = false;
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (c == '\n') line++;
            if (quoted)
            {
                if (c != '"') cell.Append(c);
                else if (i + 1 < text.Length && text[i + 1] == '"') cell.Append(text[++i]);
                else quoted = false;
            }
            else if (c == '"' && cell.Length == 0 && !cellWasQuoted) quoted = cellWasQuoted = true;
            else if (c == ',') EndCell();
            else if (c == '\n') EndRecord();
            else if (c != '\r') cell.Append(c);
        }
        if (quoted) throw InputException.At(path, "a quoted cell is not closed (expected a closing \")", recordLine);
        EndRecord();
        return records;

        void EndCell()
        {
            cells.Add(cell.ToString());
            cell.Clear();
            cellWasQuoted = false;
        }

        void EndRecord()
        {
            EndCell();
            if (cells.Count > 1 || !string.IsNullOrWhiteSpace(cells[0])) records.Add((recordLine, cells.ToArray()));
            cells.Clear();
            recordLine = line;
        }
    }

    /// <summary>The column of a CSV header cell (case and surrounding spaces ignored), or -1.</summary>
    public static int Column(string[] header, string name) =>
        Array.FindIndex(header, cell => cell.Trim().Equals(name, StringComparison.OrdinalIgnoreCase));

    /// <summary>Runs a file read, turning "not there" and other I/O failures into input errors.</summary>
    static T Guard<T>(string path, Func<T> read)
    {
        if (string.IsNullOrWhiteSpace(path)) throw new InputException("no file given");
        if (Directory.Exists(path)) throw InputException.At(path, "is a folder, expected a file");
        if (!File.Exists(path)) throw InputException.At(path, "file not found");
        try
        {
            return read();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw InputException.At(path, $"cannot read the file: {e.Message}");
        }
    }
}
