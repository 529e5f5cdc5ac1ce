using Vpn.Core.Control;
using Vpn.Core.WireGuard;
using Vpn.Domain.Addressing;
using Vpn.Domain.Reconciliation;

namespace Vpn.Core.Reconciliation;

/// <summary>A lease as the reconcile rules judge it.</summary>
/// <param name="Confirmed">A desired snapshot has listed the session as active with this key and address; until then the
/// lease lives on local knowledge (a Connect entry has not committed yet) for the grace period only.</param>
/// <param name="Since">When the Connect or adoption made it, in the unit of <see cref="ReconcileInput.Now"/>.</param>
public readonly record struct LeaseState(PeerLease Lease, bool Confirmed, long Since);

/// <summary>Everything one reconcile decision depends on. Times are plain numbers in one unit (core passes
/// <see cref="TimeProvider.GetTimestamp"/> values), so the rules need no clock.</summary>
/// <param name="Leases">The leases held now, by session id; their session ids, keys and addresses are unique.</param>
/// <param name="RecentlyDisconnected">When this core last disconnected each session.</param>
/// <param name="Desired">The database's view of the node; null when it could not be fetched (nothing is pruned then).</param>
/// <param name="Live">The device's peers as just read.</param>
/// <param name="Grace">How long local knowledge (an unconfirmed Connect, a Disconnect) outranks a snapshot that may
/// predate it.</param>
/// <param name="FirstSync">No snapshot has been accepted since core started: provisioning sessions whose peer the device
/// already serves are adopted.</param>
/// <param name="ClientNetwork">The IPv4 client pool: desired and adopted addresses must be client addresses of it.</param>
/// <param name="ClientNetwork6">Pairs each IPv4 client address with its IPv6 one.</param>
/// <param name="Unsettled">Keys with a Connect/Disconnect change queued or made since the device was read: the live
/// state is stale for them, so no peer change is decided for them (their own change is on its way).</param>
public sealed record ReconcileInput(
    IReadOnlyDictionary<Guid, LeaseState> Leases,
    IReadOnlyDictionary<Guid, long> RecentlyDisconnected,
    DesiredSnapshot? Desired,
    IReadOnlyList<LivePeer> Live,
    long Now,
    long Grace,
    bool FirstSync,
    Ipv4Network ClientNetwork,
    Ipv6ClientNetwork ClientNetwork6,
    IReadOnlySet<WireGuardKey> Unsettled);

/// <summary>
/// What one reconcile step decided, for the registry to apply in this order: forget <see cref="ForgottenDisconnects"/>,
/// mark <see cref="Confirmed"/>, drop <see cref="Dropped"/> (releasing their addresses), reserve and record
/// <see cref="Adopted"/>, quarantine <see cref="Quarantined"/>, then queue <see cref="PeerChanges"/>.
/// </summary>
/// <param name="Full">The snapshot was accepted: the leases are rebuilt from it and unwanted peers are pruned.</param>
/// <param name="Problems">Why the snapshot was rejected as a whole (empty when accepted or when there was none).</param>
/// <param name="ForgottenDisconnects">Recent Disconnects whose grace is over: the database's word counts for them again.</param>
/// <param name="Confirmed">Sessions whose unconfirmed lease the snapshot now lists as active with its key and address.</param>
/// <param name="Dropped">Leases to drop: sessions ended, grace over, or clashing with the database over a key or address.</param>
/// <param name="Adopted">Leases to create, in reservation order: active sessions this core did not hold (confirmed), then,
/// on the first sync, provisioning sessions whose peer is on the device (unconfirmed). Every address is a free client
/// address once <see cref="Dropped"/> are released (a quarantined one included: the database outranks the quarantine).</param>
/// <param name="Quarantined">IPv4 /32s of the live peers removed: a client may still hold session keys for them. The pool
/// ignores any that is held or not a client address.</param>
/// <param name="Removes">Live peers to remove (only when <see cref="Full"/>).</param>
/// <param name="Corrections">Live peers whose allowed IPs are to be set back to their lease's.</param>
/// <param name="Adds">Leases the device lacks.</param>
/// <param name="Unchanged">Live peers already as the leases say.</param>
/// <param name="SkippedRemoves">Unwanted-looking peers left alone because the truth was unavailable.</param>
/// <param name="LeaseCount">Leases held once the decision is applied.</param>
public sealed record ReconcileDecision(
    bool Full,
    IReadOnlyList<string> Problems,
    IReadOnlyList<Guid> ForgottenDisconnects,
    IReadOnlyList<Guid> Confirmed,
    IReadOnlyList<PeerLease> Dropped,
    IReadOnlyList<LeaseState> Adopted,
    IReadOnlyList<IPAddress> Quarantined,
    IReadOnlyList<WireGuardKey> Removes,
    IReadOnlyList<DesiredPeer> Corrections,
    IReadOnlyList<DesiredPeer> Adds,
    int Unchanged,
    int SkippedRemoves,
    int LeaseCount)
{
    public int ChangeCount => Adds.Count + Removes.Count + Corrections.Count;

    /// <summary>The device change to queue as one batch.</summary>
    public IReadOnlyList<PeerConfig> PeerChanges()
    {
        var changes = new List<PeerConfig>(ChangeCount);
        // Removes first: they free allowed IPs and room under wireguard-go's peer limit before anything is added.
        changes.AddRange(Removes.Select(key => new PeerConfig { PublicKey = key, Remove = true }));
        changes.AddRange(Corrections.Select(ToConfig));
        changes.AddRange(Adds.Select(ToConfig));
        return changes;
    }

    private static PeerConfig ToConfig(DesiredPeer peer) => new()
    {
        PublicKey = peer.PublicKey,
        ReplaceAllowedIps = true,
        AllowedIps = peer.Address6 is { } v6 ? [new IPNetwork(peer.Address, 32), new IPNetwork(v6, 128)] : [new IPNetwork(peer.Address, 32)],
    };
}
