namespace Vpn.Cli.Output;

/// <summary>A plain text table for people: a header, left-aligned columns two spaces apart, no borders.</summary>
public sealed class Table(params string[] headers)
{
    private readonly List<string[]> _rows = [];

    public Table Add(params string?[] cells)
    {
        _rows.Add([.. cells.Select(c => c ?? "-")]);
        return this;
    }

    public void WriteTo(TextWriter writer)
    {
        var widths = headers.Select((h, i) => Math.Max(h.Length, _rows.Count == 0 ? 0 : _rows.Max(r => i < r.Length ? r[i].Length : 0))).ToArray();
        WriteRow(writer, headers, widths);
        foreach (var row in _rows)
        {
            WriteRow(writer, row, widths);
        }
    }

    private static void WriteRow(TextWriter writer, string[] cells, int[] widths)
    {
        var line = new StringBuilder();
        for (var i = 0; i < widths.Length; i++)
        {
            var cell = i < cells.Length ? cells[i] : "";
            line.Append(i == widths.Length - 1 ? cell : cell.PadRight(widths[i] + 2));
        }
        writer.WriteLine(line.ToString().TrimEnd());
    }
}

/// <summary>Reading the snake_case JSON entry answers with, leniently: a missing member reads as null.</summary>
public static class Json
{
    public static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public static string? Str(this JsonNode? node, string name) => node?[name] switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        JsonValue v => v.ToJsonString(),
        var other => other.ToJsonString(),
    };

    public static long? Num(this JsonNode? node, string name) =>
        node?[name] is JsonValue v && v.GetValueKind() == JsonValueKind.Number ? v.GetValue<long>() : null;

    public static bool? Bool(this JsonNode? node, string name) =>
        node?[name] is JsonValue v && v.GetValueKind() is JsonValueKind.True or JsonValueKind.False ? v.GetValue<bool>() : null;

    public static JsonArray Items(this JsonNode? node, string name = "items") => node?[name] as JsonArray ?? [];

    public static string YesNo(bool? value) => value switch { true => "yes", false => "no", null => "-" };

    /// <summary>An RFC 3339 time as "2026-12-04 19:20:01Z" and how long ago, for tables.</summary>
    public static string Ago(string? time, DateTimeOffset now)
    {
        if (time is null || !DateTimeOffset.TryParse(time, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var at))
        {
            return "never";
        }
        var age = now - at;
        var text = age.TotalSeconds < 0 ? "0s" : age.TotalSeconds < 120 ? $"{age.TotalSeconds:0}s" : age.TotalMinutes < 120 ? $"{age.TotalMinutes:0}m"
            : age.TotalHours < 48 ? $"{age.TotalHours:0}h" : $"{age.TotalDays:0}d";
        return text + " ago";
    }

    public static void Write(TextWriter writer, JsonNode? node) => writer.WriteLine(node?.ToJsonString(Indented) ?? "null");
}
