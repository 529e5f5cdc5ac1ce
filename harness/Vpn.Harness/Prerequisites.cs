namespace Vpn.Harness;

/// <summary>
/// Real parts or nothing: a missing prerequisite skips a test on a developer machine, but under CI
/// (<c>CI=true</c>) it fails the run, so a green CI always means the test ran. Outside a test (a benchmark) the
/// exception simply stops the run with the reason.
/// </summary>
public static class Prerequisites
{
    public static bool IsCi => string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);

    public static bool IsRoot => Environment.UserName == "root" || Environment.GetEnvironmentVariable("USER") == "root";

    /// <exception cref="PrerequisiteMissingException">When <paramref name="condition"/> is false.</exception>
    public static void Require(bool condition, string what)
    {
        if (!condition)
        {
            throw new PrerequisiteMissingException(what, IsCi);
        }
    }

    public static void RequireExecutable(string name) => Require(FindExecutable(name) is not null, $"'{name}' on PATH");

    /// <summary>Root, wireguard-go, wg, ip and nft, /dev/net/tun: what namespace tests need.</summary>
    public static void RequireNetworkLab()
    {
        Require(IsRoot, "root (network namespaces)");
        Require(File.Exists("/dev/net/tun"), "/dev/net/tun");
        foreach (var tool in new[] { "ip", "wireguard-go", "wg", "nft" })
        {
            RequireExecutable(tool);
        }
    }

    public static string? FindExecutable(string name)
    {
        var path = Environment.GetEnvironmentVariable("PATH") ?? "";
        foreach (var dir in path.Split(':', StringSplitOptions.RemoveEmptyEntries).Concat(["/usr/sbin", "/sbin", "/usr/local/sbin"]))
        {
            var candidate = Path.Combine(dir, name);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }
        return null;
    }
}

/// <summary>
/// A prerequisite (a tool, root, PostgreSQL, a package) is missing. Outside CI its message starts with xunit's dynamic
/// skip token, so xunit reports the test as skipped (the contract of <c>Assert.Skip</c>, without depending on xunit);
/// under CI it is a plain failure.
/// </summary>
public sealed class PrerequisiteMissingException : Exception
{
    /// <summary>xunit's contract: an exception whose message starts with this is a skip; the rest is the reason.</summary>
    public const string SkipToken = "$XunitDynamicSkip$";

    public PrerequisiteMissingException()
        : this("a prerequisite", Prerequisites.IsCi)
    {
    }

    public PrerequisiteMissingException(string message)
        : this(message, Prerequisites.IsCi)
    {
    }

    public PrerequisiteMissingException(string message, Exception innerException)
        : base(Describe(message, Prerequisites.IsCi), innerException)
    {
    }

    public PrerequisiteMissingException(string what, bool underCi)
        : base(Describe(what, underCi))
    {
        Prerequisite = what;
    }

    /// <summary>What is missing, without the skip token.</summary>
    public string Prerequisite { get; } = "";

    private static string Describe(string what, bool underCi) =>
        underCi ? $"Prerequisite missing under CI: {what}" : $"{SkipToken}Prerequisite missing: {what}";
}
