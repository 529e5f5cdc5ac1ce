using System.Net.Sockets;

namespace Vpn.TestSupport;

/// <summary>The repository a test runs from: the directory holding Vpn.slnx above the test's output directory.</summary>
public static class RepositoryPaths
{
    private static readonly Lazy<string> s_root = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Vpn.slnx")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException($"No Vpn.slnx above {AppContext.BaseDirectory}.");
    });

    public static string Root => s_root.Value;

    /// <summary>A path under the repository root, from its segments.</summary>
    public static string Of(params string[] segments) => Path.Combine([Root, .. segments]);

    /// <summary>A service's built dll (src/&lt;project&gt;/bin/&lt;this test's configuration&gt;/net10.0), to run as a process.</summary>
    public static string ServiceDll(string project) =>
        Of("src", project, "bin", new DirectoryInfo(AppContext.BaseDirectory).Parent!.Name, "net10.0", project + ".dll");

    /// <summary>A loopback TCP port free at the time of the call.</summary>
    public static int FreeLoopbackPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
