namespace Vpn.Bench;

/// <summary>One namespace with one wireguard-go device, torn down at the end.</summary>
internal sealed class BenchLab : IAsyncDisposable
{
    private BenchLab(NetworkNamespace ns, WireGuardGo device, string workDirectory)
    {
        Namespace = ns;
        Device = device;
        WorkDirectory = workDirectory;
    }

    public NetworkNamespace Namespace { get; }

    public WireGuardGo Device { get; private set; }

    public string WorkDirectory { get; }

    public static async Task<BenchLab> StartAsync()
    {
        var ns = await NetworkNamespace.CreateAsync("vbench");
        var device = await WireGuardGo.StartAsync(ns, NetworkNamespace.UniqueName("wgb"));
        var dir = Directory.CreateTempSubdirectory("vpn-bench-").FullName;
        return new BenchLab(ns, device, dir);
    }

    /// <summary>A fresh, empty device under the same name (wireguard-go killed and started again).</summary>
    public async Task RestartDeviceAsync()
    {
        var name = Device.InterfaceName;
        await Device.DisposeAsync();
        Device = await WireGuardGo.StartAsync(Namespace, name);
    }

    public static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Vpn.slnx")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException("Run from inside the repository.");
    }

    public static string Configuration => new DirectoryInfo(AppContext.BaseDirectory).Parent!.Name;

    public static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }

    public static async Task<TimeSpan> TimeAsync(Func<Task> action)
    {
        var clock = Stopwatch.StartNew();
        await action();
        return clock.Elapsed;
    }

    public async ValueTask DisposeAsync()
    {
        await Device.DisposeAsync();
        await Namespace.DisposeAsync();
        Directory.Delete(WorkDirectory, recursive: true);
    }
}
