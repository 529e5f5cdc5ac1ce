namespace Vpn.Harness;

/// <summary>A userspace wireguard-go device started in the foreground (-f) inside a namespace; killed on dispose.</summary>
public sealed class WireGuardGo : IAsyncDisposable
{
    private readonly BackgroundProcess _process;
    private readonly Func<ValueTask>? _stop;

    private WireGuardGo(string interfaceName, BackgroundProcess process, Func<ValueTask>? stop = null)
    {
        InterfaceName = interfaceName;
        _process = process;
        _stop = stop;
    }

    public string InterfaceName { get; }

    public string SocketPath => $"/var/run/wireguard/{InterfaceName}.sock";

    public string Output => _process.Output;

    public static async Task<WireGuardGo> StartAsync(NetworkNamespace ns, string interfaceName)
    {
        ArgumentNullException.ThrowIfNull(ns);
        var process = ns.Start("wireguard-go", ["-f", interfaceName], new Dictionary<string, string?>
        {
            ["WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD"] = "1",
            ["LOG_LEVEL"] = "error",
        });
        return await WaitForSocketAsync(new WireGuardGo(interfaceName, process), TimeSpan.FromSeconds(10));
    }

    /// <summary>
    /// A device that <paramref name="process"/> runs some other way (e.g. <c>podman run</c> of a wireguard-go image with
    /// the host's /var/run/wireguard mounted): waits for its UAPI socket like <see cref="StartAsync"/>; dispose kills the
    /// process, then runs <paramref name="stop"/> (e.g. removing the container, which outlives a killed client).
    /// </summary>
    public static Task<WireGuardGo> AttachAsync(BackgroundProcess process, string interfaceName, Func<ValueTask>? stop = null) =>
        WaitForSocketAsync(new WireGuardGo(interfaceName, process, stop), TimeSpan.FromSeconds(60)); // a cap: a container start on a busy machine

    private static async Task<WireGuardGo> WaitForSocketAsync(WireGuardGo device, TimeSpan limit)
    {
        var (process, interfaceName) = (device._process, device.InterfaceName);
        var deadline = DateTime.UtcNow + limit;
        // The socket file appears a moment before wireguard-go accepts on it: wait for a connection to succeed.
        while (!CanConnect(device.SocketPath))
        {
            if (process.HasExited || DateTime.UtcNow > deadline)
            {
                await device.DisposeAsync();
                throw new InvalidOperationException($"wireguard-go {interfaceName} did not start: {process.Output}");
            }
            await Task.Delay(20);
        }
        return device;
    }

    private static bool CanConnect(string path)
    {
        if (!File.Exists(path))
        {
            return false;
        }
        using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
        try
        {
            socket.Connect(new System.Net.Sockets.UnixDomainSocketEndPoint(path));
            return true;
        }
        catch (System.Net.Sockets.SocketException)
        {
            return false;
        }
    }

    /// <summary>SIGKILL: the device and its socket vanish as in a crash.</summary>
    public void Kill() => _process.Kill();

    public async ValueTask DisposeAsync()
    {
        await _process.DisposeAsync();
        if (_stop is not null)
        {
            await _stop();
        }
        try
        {
            File.Delete(SocketPath);
        }
        catch (IOException)
        {
        }
    }
}
