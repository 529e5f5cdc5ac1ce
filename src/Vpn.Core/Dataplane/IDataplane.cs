using System.Net;
using Vpn.Core.Nat;
using Vpn.Core.WireGuard;
using Vpn.Domain.WireGuard;

namespace Vpn.Core.Dataplane;

/// <summary>
/// What core needs from the node's packet path. Peer changes go through one ordered writer that may coalesce concurrent
/// changes: every change method fixes the change's place in that order before it returns (it only queues, never
/// blocks), and its task completes once the device has applied it.
/// </summary>
public interface IDataplane
{
    /// <summary>"linux" or "noop", reported in GetNodeStatus.</summary>
    string Mode { get; }

    /// <summary>"cli", "native" or "none".</summary>
    string NatDriver { get; }

    /// <summary>What the NAT driver does without external tools (GetNodeStatus.native_features).</summary>
    IReadOnlyList<string> NativeFeatures { get; }

    /// <summary>
    /// Brings the device up: keys, port, interface addresses (both families), forwarding, filter and NAT. Safe to
    /// repeat; leaves peers alone.
    /// </summary>
    Task InitializeAsync(CancellationToken cancellationToken);

    /// <summary>Adds (or updates) the peer with exactly this /32 and this /128 as its allowed IPs.</summary>
    Task AddPeerAsync(WireGuardKey publicKey, IPAddress clientAddress, IPAddress clientAddress6, CancellationToken cancellationToken);

    Task RemovePeerAsync(WireGuardKey publicKey, CancellationToken cancellationToken);

    /// <summary>
    /// Applies per-peer changes in the given order through the same writer as <see cref="AddPeerAsync"/>; large lists may
    /// be split into several device writes. Never replaces the whole peer list.
    /// </summary>
    Task ApplyPeerChangesAsync(IReadOnlyList<PeerConfig> changes, CancellationToken cancellationToken);

    /// <summary>Reads the device now: the peers it holds and whether it lost this node's configuration.</summary>
    Task<DeviceSnapshot> ReadAsync(CancellationToken cancellationToken);

    /// <summary>Peers the device holds right now.</summary>
    Task<int> CountPeersAsync(CancellationToken cancellationToken);

    /// <summary>The filter's drop counters now; empty without a filter (noop dataplane, WG_NAT_DRIVER=none).</summary>
    Task<IReadOnlyList<FirewallCounter>> ReadFilterCountersAsync(CancellationToken cancellationToken);
}

/// <summary>The device as read by reconciliation.</summary>
/// <param name="NeedsInitialization">
/// The device no longer carries this node's private key or listen port: it was recreated (e.g. wireguard-go restarted,
/// so its interface address and link state are gone too) or edited by hand. <see cref="IDataplane.InitializeAsync"/> repairs it.
/// </param>
/// <param name="Peers">Every peer the device holds.</param>
public sealed record DeviceSnapshot(bool NeedsInitialization, IReadOnlyList<PeerState> Peers);

/// <summary>For development and API tests: remembers peers in memory, programs nothing, needs no root.</summary>
public sealed class NoopDataplane : IDataplane
{
    private readonly Lock _gate = new();
    private readonly Dictionary<WireGuardKey, IReadOnlyList<IPNetwork>> _peers = [];
    private bool _initialized = true;

    public string Mode => "noop";

    public string NatDriver => "none";

    public IReadOnlyList<string> NativeFeatures => [];

    public Task InitializeAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            _initialized = true;
        }
        return Task.CompletedTask;
    }

    public Task AddPeerAsync(WireGuardKey publicKey, IPAddress clientAddress, IPAddress clientAddress6, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            _peers[publicKey] = [new IPNetwork(clientAddress, 32), new IPNetwork(clientAddress6, 128)];
        }
        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<FirewallCounter>> ReadFilterCountersAsync(CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyList<FirewallCounter>>([]);

    public Task RemovePeerAsync(WireGuardKey publicKey, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            _peers.Remove(publicKey);
        }
        return Task.CompletedTask;
    }

    /// <summary>Applies the UAPI meaning of each change (remove, update_only, replace_allowed_ips, allowed IPs added).</summary>
    public Task ApplyPeerChangesAsync(IReadOnlyList<PeerConfig> changes, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(changes);
        lock (_gate)
        {
            foreach (var change in changes)
            {
                if (change.Remove)
                {
                    _peers.Remove(change.PublicKey);
                    continue;
                }
                var exists = _peers.TryGetValue(change.PublicKey, out var current);
                if (!exists && change.UpdateOnly)
                {
                    continue;
                }
                IReadOnlyList<IPNetwork> kept = change.ReplaceAllowedIps || current is null ? [] : current;
                _peers[change.PublicKey] = [.. kept, .. (change.AllowedIps ?? []).Where(n => !kept.Contains(n))];
            }
        }
        return Task.CompletedTask;
    }

    public Task<DeviceSnapshot> ReadAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return Task.FromResult(new DeviceSnapshot(!_initialized,
                [.. _peers.Select(p => new PeerState { PublicKey = p.Key, AllowedIps = p.Value, ProtocolVersion = 1 })]));
        }
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

    /// <summary>Forgets every peer and the configuration, as a recreated device would (e.g. wireguard-go restarted).</summary>
    public void Reset()
    {
        lock (_gate)
        {
            _peers.Clear();
            _initialized = false;
        }
    }
}
