namespace Vpn.Harness;

/// <summary>
/// A network namespace owned by one test, named with a per-run prefix so cleanup removes only ours.
/// Commands run inside it with <c>ip netns exec</c>.
/// </summary>
public sealed class NetworkNamespace : IAsyncDisposable
{
    private NetworkNamespace(string name) => Name = name;

    public string Name { get; }

    /// <summary>Short unique names: interface names are limited to 15 bytes and UAPI socket paths are global.</summary>
    public static string UniqueName(string prefix) => $"{prefix}{Environment.ProcessId % 10000}{Interlocked.Increment(ref s_counter)}";

    private static int s_counter;

    public static async Task<NetworkNamespace> CreateAsync(string prefix)
    {
        var ns = new NetworkNamespace(UniqueName(prefix));
        await ProcessRunner.RunCheckedAsync("ip", "netns", "add", ns.Name);
        await ns.ExecCheckedAsync("ip", "link", "set", "lo", "up");
        return ns;
    }

    public Task<ProcessResult> ExecAsync(string fileName, params string[] arguments) =>
        ProcessRunner.RunAsync("ip", ["netns", "exec", Name, fileName, .. arguments]);

    public Task<ProcessResult> ExecAsync(string fileName, IEnumerable<string> arguments, string? standardInput, TimeSpan? timeout = null) =>
        ProcessRunner.RunAsync("ip", ["netns", "exec", Name, fileName, .. arguments], standardInput, timeout);

    public async Task<string> ExecCheckedAsync(string fileName, params string[] arguments) =>
        (await ExecAsync(fileName, arguments)).EnsureSuccess($"[{Name}] {fileName} {string.Join(' ', arguments)}").StandardOutput;

    /// <summary>Starts a long-running process inside the namespace.</summary>
    public BackgroundProcess Start(string fileName, IEnumerable<string> arguments, IDictionary<string, string?>? environment = null) =>
        new("ip", ["netns", "exec", Name, fileName, .. arguments], environment);

    /// <summary>
    /// A veth pair between two namespaces, each end created directly inside its namespace, given its address when one is
    /// passed (CIDR, e.g. "10.201.0.1/24") and set up. The names are unique, so a namespace can have several links.
    /// Returns (a's end, b's end).
    /// </summary>
    public static async Task<(string A, string B)> ConnectAsync(NetworkNamespace a, string? aAddress, NetworkNamespace b, string? bAddress)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        var aIf = UniqueName("va");
        var bIf = UniqueName("vb");
        await ProcessRunner.RunCheckedAsync("ip", "link", "add", aIf, "netns", a.Name, "type", "veth", "peer", "name", bIf, "netns", b.Name);
        await UpAsync(a, aIf, aAddress);
        await UpAsync(b, bIf, bAddress);
        return (aIf, bIf);

        static async Task UpAsync(NetworkNamespace ns, string device, string? address)
        {
            if (address is not null)
            {
                await ns.ExecCheckedAsync("ip", "addr", "add", address, "dev", device);
            }
            await ns.ExecCheckedAsync("ip", "link", "set", device, "up");
        }
    }

    /// <summary>A veth pair with unique names, both ends up and without addresses. Returns (a's end, b's end).</summary>
    public static Task<(string A, string B)> ConnectAsync(NetworkNamespace a, NetworkNamespace b) => ConnectAsync(a, null, b, null);

    public async ValueTask DisposeAsync() => await ProcessRunner.RunAsync("ip", "netns", "del", Name);
}
