namespace Vpn.EndToEnd;

/// <summary>
/// What <see cref="VpnStackFixture"/> needs of a topology: the node namespace with its wireguard-go device (which core
/// drives), the endpoint clients dial, the client pool, a scratch directory and non-secret diagnostics. Two topologies
/// implement it: <see cref="VpnLab"/> (one hand-configured client, the fault tests) and <see cref="ConsumerLab"/> (real
/// wg-quick clients, DNS, the node's neighbours: the leak and isolation tests).
/// </summary>
public interface INodeLab : IAsyncDisposable
{
    NetworkNamespace Node { get; }

    /// <summary>The node's WireGuard interface (WG_INTERFACE), unique on the machine: UAPI socket paths are global.</summary>
    string NodeInterface { get; }

    /// <summary>Per-lab scratch directory (keys, sockets, configs), visible from every namespace; deleted on dispose.</summary>
    string WorkDirectory { get; }

    /// <summary>host:port registered as the node's public endpoint (what a session's <c>Endpoint =</c> says).</summary>
    string NodeEndpoint { get; }

    /// <summary>WG_CLIENT_POOL.</summary>
    string ClientPool { get; }

    /// <summary>wireguard-go on the node crashes (SIGKILL) and comes back empty, as after a process restart.</summary>
    Task RestartNodeWireGuardAsync();

    /// <summary>Public keys of the peers the node's WireGuard device has right now.</summary>
    Task<IReadOnlyList<string>> NodeWgShowPeersAsync();

    /// <summary>Non-secret state for failure messages (<c>wg show</c> prints "(hidden)" for private keys).</summary>
    Task<string> DescribeAsync();
}
