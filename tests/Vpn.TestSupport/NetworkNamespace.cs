namespace Vpn.TestSupport;

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

    /// <summary>Creates a veth pair between two namespaces and addresses both ends (CIDR strings, e.g. "10.201.0.1/24").</summary>
    public static async Task ConnectAsync(NetworkNamespace a, string aAddress, NetworkNamespace b, string bAddress)
    {
        var aIf = $"v{a.Name}"[..Math.Min(15, a.Name.Length + 1)];
        var bIf = $"v{b.Name}"[..Math.Min(15, b.Name.Length + 1)];
        await ProcessRunner.RunCheckedAsync("ip", "link", "add", aIf, "netns", a.Name, "type", "veth", "peer", "name", bIf, "netns", b.Name);
        await a.ExecCheckedAsync("ip", "addr", "add", aAddress, "dev", aIf);
        await a.ExecCheckedAsync("ip", "link", "set", aIf, "up");
        await b.ExecCheckedAsync("ip", "addr", "add", bAddress, "dev", bIf);
        await b.ExecCheckedAsync("ip", "link", "set", bIf, "up");
    }

    public async ValueTask DisposeAsync() => await ProcessRunner.RunAsync("ip", "netns", "del", Name);
}
