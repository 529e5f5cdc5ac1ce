using Vpn.Core.Nat;
using Vpn.Core.WireGuard;

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

    /// <summary>
    /// A round trip to the device that reads nothing (not its peers, not its key); throws an <see cref="IOException"/>
    /// when the device does not answer. The health check: the peer count comes from the registry, which knows it.
    /// </summary>
    Task ProbeAsync(CancellationToken cancellationToken);

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
