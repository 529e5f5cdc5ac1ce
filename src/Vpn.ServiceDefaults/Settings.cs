using System.Globalization;
using Microsoft.Extensions.Configuration;

namespace Vpn.ServiceDefaults;

/// <summary>
/// Reads the operator-facing environment settings both services share. Every reader appends a problem instead of
/// throwing, so start-up reports all configuration errors at once; no message ever echoes a value.
/// </summary>
public static class Settings
{
    /// <summary>NAME, or the trimmed content of the file named by NAME_FILE (Kubernetes secrets); null when unset or empty.</summary>
    public static string? Secret(IConfiguration configuration, string name, List<string> problems)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        ArgumentNullException.ThrowIfNull(problems);
        var path = configuration[name + "_FILE"];
        if (!string.IsNullOrEmpty(path))
        {
            try
            {
                return File.ReadAllText(path).Trim();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                problems.Add($"{name}_FILE could not be read ({e.GetType().Name}).");
                return null;
            }
        }
        var value = configuration[name];
        return string.IsNullOrEmpty(value) ? null : value;
    }

    /// <summary>true/false (also 1/0); <paramref name="fallback"/> when unset.</summary>
    public static bool Flag(IConfiguration configuration, string name, bool fallback, List<string> problems)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        ArgumentNullException.ThrowIfNull(problems);
        var value = configuration[name];
        if (string.IsNullOrEmpty(value))
        {
            return fallback;
        }
        if (bool.TryParse(value, out var flag))
        {
            return flag;
        }
        if (value is "1" or "0")
        {
            return value == "1";
        }
        problems.Add($"{name} must be true or false.");
        return fallback;
    }

    /// <summary>A decimal integer within [min, max]; <paramref name="fallback"/> when unset.</summary>
    public static int Number(IConfiguration configuration, string name, int fallback, int min, int max, List<string> problems)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        ArgumentNullException.ThrowIfNull(problems);
        var value = configuration[name];
        if (string.IsNullOrEmpty(value))
        {
            return fallback;
        }
        if (int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var number) && number >= min && number <= max)
        {
            return number;
        }
        problems.Add($"{name} must be an integer between {min} and {max}.");
        return fallback;
    }
}
