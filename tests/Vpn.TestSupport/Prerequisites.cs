namespace Vpn.TestSupport;

/// <summary>
/// Real parts or nothing: a missing prerequisite skips a test on a developer machine, but under CI
/// (<c>CI=true</c>) it fails the run, so a green CI always means the test ran.
/// </summary>
public static class Prerequisites
{
    public static bool IsCi => string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);

    public static bool IsRoot => Environment.UserName == "root" || Environment.GetEnvironmentVariable("USER") == "root";

    public static void Require(bool condition, string what)
    {
        if (condition)
        {
            return;
        }
        if (IsCi)
        {
            Assert.Fail($"Prerequisite missing under CI: {what}");
        }
        Assert.Skip($"Prerequisite missing: {what}");
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
