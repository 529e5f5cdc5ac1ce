namespace Vpn.EndToEnd;

/// <summary>
/// What both topologies (<see cref="VpnLab"/>, <see cref="ConsumerLab"/>) keep the same way: their scratch directory,
/// the namespaces they created (deleted in reverse order, with their veth ends, on dispose), the node namespace and its
/// wireguard-go device (restarted as after a crash), and a build that disposes whatever it made if it fails.
/// </summary>
public abstract class NodeLabBase(string workDirectory, string nodeInterface) : IAsyncDisposable
{
    private readonly List<NetworkNamespace> _namespaces = [];

    /// <summary>The namespace core and the node's wireguard-go run in.</summary>
    public NetworkNamespace Node { get; protected set; } = null!;

    /// <summary>The node's WireGuard interface (WG_INTERFACE), unique on the machine: UAPI socket paths are global.</summary>
    public string NodeInterface { get; } = nodeInterface;

    /// <summary>Per-lab scratch directory (keys, sockets, configs), visible from every namespace (same mount namespace).</summary>
    public string WorkDirectory { get; } = workDirectory;

    public WireGuardGo? NodeWireGuard { get; protected set; }

    /// <summary>Every namespace of the lab, in creation order.</summary>
    protected IReadOnlyList<NetworkNamespace> Namespaces => _namespaces;

    /// <summary><paramref name="build"/> on the new <paramref name="lab"/>; when it fails, what was built so far is disposed.</summary>
    protected static async Task<TLab> BuildOrDisposeAsync<TLab>(TLab lab, Func<TLab, Task> build)
        where TLab : NodeLabBase
    {
        ArgumentNullException.ThrowIfNull(lab);
        ArgumentNullException.ThrowIfNull(build);
        try
        {
            await build(lab);
            return lab;
        }
        catch
        {
            await lab.DisposeAsync();
            throw;
        }
    }

    protected async Task<NetworkNamespace> AddNamespaceAsync(string prefix)
    {
        var ns = await NetworkNamespace.CreateAsync(prefix);
        _namespaces.Add(ns);
        return ns;
    }

    /// <summary>wireguard-go on the node crashes (SIGKILL) and comes back empty, as after a process restart.</summary>
    public async Task RestartNodeWireGuardAsync()
    {
        var crashed = NodeWireGuard;
        NodeWireGuard = null; // disposed by the restart, so not again by DisposeAsync should the restart fail
        NodeWireGuard = await LabCommands.RestartWireGuardAsync(Node, NodeInterface, crashed);
    }

    /// <summary>Public keys of the peers the node's WireGuard device has right now.</summary>
    public Task<IReadOnlyList<string>> NodeWgShowPeersAsync() => LabCommands.WgShowPeersAsync(Node, NodeInterface);

    /// <summary>
    /// The node's part of a failure description: its WireGuard device (<c>wg show</c> prints "(hidden)" for private keys),
    /// addresses, routes, forwarding and the nftables ruleset; <paramref name="dualStack"/> adds the IPv6 routes and
    /// forwarding and the listening sockets.
    /// </summary>
    protected async Task AppendNodeStateAsync(StringBuilder sb, bool dualStack)
    {
        Task Add(params string[] command) => LabCommands.AppendAsync(sb, Node, command);
        await Add("wg", "show", NodeInterface);
        await Add("ip", "-br", "addr");
        await Add("ip", "route");
        if (dualStack)
        {
            await Add("ip", "-6", "route");
            await Add("sysctl", "net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding");
        }
        else
        {
            await Add("sysctl", "net.ipv4.ip_forward");
        }
        await Add("nft", "list", "ruleset");
        if (dualStack)
        {
            await Add("ss", "-lntup");
        }
    }

    public abstract ValueTask DisposeAsync();

    /// <summary>The last steps of a dispose: the namespaces in reverse order (their veth ends go with them), then the scratch directory.</summary>
    protected async Task RemoveNamespacesAndWorkDirectoryAsync()
    {
        for (var i = _namespaces.Count - 1; i >= 0; i--)
        {
            await _namespaces[i].DisposeAsync();
        }
        try
        {
            Directory.Delete(WorkDirectory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
