namespace Vpn.Harness;

/// <summary>A userspace wireguard-go device started in the foreground (-f) inside a namespace; killed on dispose.</summary>
public sealed class WireGuardGo : IAsyncDisposable
{
    private readonly BackgroundProcess _process;

    private WireGuardGo(string interfaceName, BackgroundProcess process)
    {
        InterfaceName = interfaceName;
        _process = process;
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
        var device = new WireGuardGo(interfaceName, process);
        var deadline = DateTime.UtcNow.AddSeconds(10);
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
        try
        {
            File.Delete(SocketPath);
        }
        catch (IOException)
        {
        }
    }
}
