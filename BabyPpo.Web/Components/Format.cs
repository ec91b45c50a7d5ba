using System.Globalization;

namespace BabyPpo.Web.Components;

/// <summary>How the pages write numbers, times and durations.</summary>
public static class Format
{
    public static string Number(double? value, string format = "G4") =>
        value is { } v && double.IsFinite(v) ? v.ToString(format, CultureInfo.InvariantCulture) : "–";

    public static string Percent(double? fraction) =>
        fraction is { } f ? (100 * f).ToString("F1", CultureInfo.InvariantCulture) : "–";

    public static string Time(DateTime? utc) =>
        utc is { } t ? t.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture) + " UTC" : "–";

    public static string Duration(double? seconds) => seconds switch
    {
        null => "–",
        < 90 => $"{seconds:F0} s",
        < 5400 => $"{seconds / 60:F0} min",
        _ => $"{seconds / 3600:F1} h",
    };

    public static string Bytes(long bytes) => bytes switch
    {
        < 1 << 20 => $"{bytes / 1024.0:F1} KiB",
        < 1 << 30 => $"{bytes / (1024.0 * 1024):F1} MiB",
        _ => $"{bytes / (1024.0 * 1024 * 1024):F2} GiB",
    };

    public static string Count(long n) => n switch
    {
        < 10_000 => n.ToString(CultureInfo.InvariantCulture),
        < 10_000_000 => $"{n / 1e3:F1} k",
        _ => $"{n / 1e6:F1} M",
    };
}
