using System.Net;
using Vpn.Domain.WireGuard;

namespace Vpn.Core.Dataplane;

/// <summary>What core needs from the node's packet path. Implementations coalesce concurrent changes as they see fit.</summary>
public interface IDataplane
{
    /// <summary>"linux" or "noop", reported in GetNodeStatus.</summary>
    string Mode { get; }

    /// <summary>"cli" or "none".</summary>
    string NatDriver { get; }

    /// <summary>Brings the device up: keys, port, interface address, forwarding, NAT. Safe to repeat.</summary>
    Task InitializeAsync(CancellationToken cancellationToken);

    /// <summary>Adds (or updates) the peer with exactly this /32 as its allowed IP.</summary>
    Task AddPeerAsync(WireGuardKey publicKey, IPAddress clientAddress, CancellationToken cancellationToken);

    Task RemovePeerAsync(WireGuardKey publicKey, CancellationToken cancellationToken);

    /// <summary>Peers the device holds right now.</summary>
    Task<int> CountPeersAsync(CancellationToken cancellationToken);
}

/// <summary>For development and API tests: remembers peers in memory, programs nothing, needs no root.</summary>
public sealed class NoopDataplane : IDataplane
{
    private readonly Lock _gate = new();
    private readonly Dictionary<WireGuardKey, IPAddress> _peers = [];

    public string Mode => "noop";

    public string NatDriver => "none";

    public Task InitializeAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task AddPeerAsync(WireGuardKey publicKey, IPAddress clientAddress, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            _peers[publicKey] = clientAddress;
        }
        return Task.CompletedTask;
    }

    public Task RemovePeerAsync(WireGuardKey publicKey, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            _peers.Remove(publicKey);
        }
        return Task.CompletedTask;
    }

    public Task<int> CountPeersAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return Task.FromResult(_peers.Count);
        }
    }

    public bool HasPeer(WireGuardKey publicKey)
    {
        lock (_gate)
        {
            return _peers.ContainsKey(publicKey);
        }
    }
}
