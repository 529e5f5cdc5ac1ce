using Vpn.Core.Control;
using Vpn.Domain.Addressing;
using Vpn.Domain.Reconciliation;

namespace Vpn.Core.Reconciliation;

/// <summary>
/// The reconcile rules as a pure function: which leases the database outranks, which it adopts, and which peer changes
/// turn the device into the leases. It reads its input and changes nothing; <see cref="PeerRegistry"/> applies the
/// decision under its lock to its pool and maps.
/// </summary>
/// <remarks>
/// The database (a desired snapshot) is the truth, but it may be older than two kinds of local knowledge, which outrank
/// it for <see cref="ReconcileInput.Grace"/>: a lease made by Connect that the database does not list as active yet
/// (entry commits after Connect answers), and a session removed by Disconnect that the database still lists. Without a
/// valid snapshot nothing is pruned: only missing peers and wrong allowed IPs are repaired from the leases.
/// </remarks>
public static class ReconcileRules
{
    public static ReconcileDecision Decide(ReconcileInput input)
    {
        ArgumentNullException.ThrowIfNull(input);
        IReadOnlyList<string> problems = [];
        Rebuilt? rebuilt = null;
        if (input.Desired is not null)
        {
            rebuilt = Rebuild(input, input.Desired, out problems);
        }
        var full = rebuilt is not null;
        var leases = rebuilt?.AddressByKey ?? AddressesOf(input.Leases);

        var diff = PeerDiff.Compute(leases, input.Live, input.ClientNetwork6.AddressFor);
        var unsettled = input.Unsettled;
        var adds = diff.Adds.Where(p => !unsettled.Contains(p.PublicKey)).ToList();
        var corrections = diff.Corrections.Where(p => !unsettled.Contains(p.PublicKey)).ToList();
        var removes = full ? diff.Removes.Where(k => !unsettled.Contains(k)).ToList() : [];
        var skippedRemoves = full ? 0 : diff.Removes.Count;
        var quarantined = removes.Count > 0 ? AddressesOf(removes, input.Live) : [];

        var dropped = rebuilt?.Dropped ?? [];
        var adopted = rebuilt?.Adopted ?? [];
        return new ReconcileDecision(full, problems, rebuilt?.ForgottenDisconnects ?? [], rebuilt?.Confirmed ?? [], dropped, adopted,
            quarantined, removes, corrections, adds, diff.Unchanged, skippedRemoves, input.Leases.Count - dropped.Count + adopted.Count);
    }

    private static Rebuilt? Rebuild(ReconcileInput input, DesiredSnapshot desired, out IReadOnlyList<string> problems)
    {
        // Steady state is the common case (64k sessions, a few changes): one pass over the snapshot, one over the leases,
        // and per pass only the validation's tables and the resulting key map.
        var authoritative = new List<DesiredSession>(desired.Sessions.Count);
        authoritative.AddRange(desired.Sessions.Where(s => s.State == DesiredSessionState.Active && s.Address is not null));
        if (!DesiredPeerSet.TryCreate(authoritative.Select(s => new DesiredPeer(s.PublicKey, s.Address!, s.Address6)),
            input.ClientNetwork, input.ClientNetwork6, out var truth, out problems))
        {
            return null;
        }
        var (now, grace, leases) = (input.Now, input.Grace, input.Leases);
        var forgotten = input.RecentlyDisconnected.Where(d => now - d.Value >= grace).Select(d => d.Key).ToList();
        bool RecentlyDisconnected(Guid sessionId) => input.RecentlyDisconnected.TryGetValue(sessionId, out var at) && now - at < grace;

        // A session this core disconnected so recently that the snapshot may predate it is not authoritative: its key
        // and address do not clash with anything (e.g. replace_existing reconnects the same device key at once).
        HashSet<WireGuardKey> ignoredKeys = [];
        HashSet<IPAddress> ignoredAddresses = [];
        // The leases kept, by key: first those the snapshot lists as they are, then the unconfirmed ones it does not
        // outrank yet, then the adopted ones. It is what the device must hold.
        var addressByKey = new Dictionary<WireGuardKey, IPAddress>(Math.Max(leases.Count, authoritative.Count));
        var confirmed = new List<Guid>();
        var toAdopt = new List<DesiredSession>();
        foreach (var session in authoritative)
        {
            if (RecentlyDisconnected(session.SessionId))
            {
                ignoredKeys.Add(session.PublicKey);
                ignoredAddresses.Add(session.Address!);
            }
            else if (leases.TryGetValue(session.SessionId, out var held)
                && held.Lease.PublicKey == session.PublicKey && held.Lease.Address.Equals(session.Address))
            {
                addressByKey.Add(held.Lease.PublicKey, held.Lease.Address);
                if (!held.Confirmed)
                {
                    confirmed.Add(session.SessionId);
                }
            }
            else
            {
                toAdopt.Add(session);
            }
        }

        var replaced = toAdopt.Select(s => s.SessionId).ToHashSet();
        var takeovers = TakeoversByKey(desired);
        var dropped = new List<PeerLease>();
        foreach (var held in leases.Values)
        {
            var lease = held.Lease;
            if (addressByKey.ContainsKey(lease.PublicKey))
            {
                // Found as it is above (lease keys are unique, so the key is this lease's).
                continue;
            }
            // Not (or no longer, or differently) listed as active. The database wins every clash over a key or an address.
            // A confirmed lease it no longer lists has ended, unless a later claim of the same device key is provisioning
            // on this node: replace_existing committed and its Connect, which takes this peer over, is on its way (dropping
            // it now would cut the client until then). An unconfirmed one (Connect not yet committed, or still
            // provisioning) lives out its grace period.
            var ended = held.Confirmed
                ? !(lease.ClaimSeq > 0 && takeovers.TryGetValue(lease.PublicKey, out var laterClaim) && laterClaim > lease.ClaimSeq)
                : now - held.Since >= grace;
            if ((truth.Peers.ContainsKey(lease.PublicKey) && !ignoredKeys.Contains(lease.PublicKey))
                || (truth.ContainsAddress(lease.Address) && !ignoredAddresses.Contains(lease.Address))
                || replaced.Contains(lease.SessionId) || ended)
            {
                dropped.Add(lease);
                continue;
            }
            addressByKey.Add(lease.PublicKey, lease.Address);
        }

        var adopted = new List<LeaseState>(toAdopt.Count);
        foreach (var session in toAdopt)
        {
            // Every lease that clashes with it over its key or address was dropped above, so both are free.
            var address = session.Address!;
            adopted.Add(new LeaseState(new PeerLease(session.SessionId, session.PublicKey, address, input.ClientNetwork6.AddressFor(address), session.ClaimSeq),
                Confirmed: true, now));
            addressByKey[session.PublicKey] = address;
        }
        if (input.FirstSync)
        {
            AdoptProvisioningPeers(input, desired, RecentlyDisconnected, dropped, addressByKey, adopted);
        }
        return new Rebuilt(addressByKey, forgotten, confirmed, dropped, adopted);
    }

    /// <summary>
    /// First sync only: a provisioning session whose peer the device already serves (core restarted between its Connect
    /// and entry's commit) keeps that peer and address as a fresh unconfirmed lease, instead of a cut until entry commits.
    /// </summary>
    private static void AdoptProvisioningPeers(ReconcileInput input, DesiredSnapshot desired, Func<Guid, bool> recentlyDisconnected,
        List<PeerLease> dropped, Dictionary<WireGuardKey, IPAddress> addressByKey, List<LeaseState> adopted)
    {
        var candidates = desired.Sessions.Where(s => s.State == DesiredSessionState.Provisioning).ToList();
        if (candidates.Count == 0)
        {
            return;
        }
        // The sessions and addresses held once the leases above are dropped and adopted: what the pool would refuse.
        var droppedSessions = dropped.Select(l => l.SessionId).ToHashSet();
        var sessions = input.Leases.Keys.Where(id => !droppedSessions.Contains(id)).Concat(adopted.Select(l => l.Lease.SessionId)).ToHashSet();
        var held = addressByKey.Values.Select(Ipv4Network.ToUInt32).ToHashSet();
        var liveByKey = new Dictionary<WireGuardKey, IReadOnlyList<IPNetwork>>();
        foreach (var peer in input.Live)
        {
            liveByKey.TryAdd(peer.PublicKey, peer.AllowedIps);
        }
        var network = input.ClientNetwork;
        foreach (var session in candidates)
        {
            // The peer's one IPv4 /32 is its address (its IPv6 /128, if any, is paired with it; the diff corrects the rest).
            if (!sessions.Contains(session.SessionId) && !recentlyDisconnected(session.SessionId) && !addressByKey.ContainsKey(session.PublicKey)
                && liveByKey.TryGetValue(session.PublicKey, out var allowed)
                && allowed.Where(IsIpv4Host).ToList() is [var only]
                && Ipv4Network.ToUInt32(only.BaseAddress) is var value
                && network.Contains(value) && value > network.Base + 1 && value < network.Broadcast
                && held.Add(value))
            {
                var address = only.BaseAddress;
                adopted.Add(new LeaseState(new PeerLease(session.SessionId, session.PublicKey, address, input.ClientNetwork6.AddressFor(address), session.ClaimSeq),
                    Confirmed: false, input.Now));
                addressByKey.Add(session.PublicKey, address);
                sessions.Add(session.SessionId);
            }
        }
    }

    /// <summary>The latest claim of each device key the snapshot lists as provisioning (claims of unknown order left out).</summary>
    private static Dictionary<WireGuardKey, ulong> TakeoversByKey(DesiredSnapshot desired)
    {
        var byKey = new Dictionary<WireGuardKey, ulong>();
        foreach (var session in desired.Sessions)
        {
            if (session.State == DesiredSessionState.Provisioning && session.ClaimSeq > 0)
            {
                byKey[session.PublicKey] = Math.Max(session.ClaimSeq, byKey.GetValueOrDefault(session.PublicKey));
            }
        }
        return byKey;
    }

    /// <summary>Addresses of peers removed from the device may still be in a client's session keys: let them rest too.</summary>
    private static List<IPAddress> AddressesOf(List<WireGuardKey> removes, IReadOnlyList<LivePeer> live)
    {
        var removed = removes.ToHashSet();
        var addresses = new List<IPAddress>();
        foreach (var peer in live)
        {
            if (removed.Contains(peer.PublicKey))
            {
                addresses.AddRange(peer.AllowedIps.Where(IsIpv4Host).Select(n => n.BaseAddress));
            }
        }
        return addresses;
    }

    private static Dictionary<WireGuardKey, IPAddress> AddressesOf(IReadOnlyDictionary<Guid, LeaseState> leases)
    {
        var byKey = new Dictionary<WireGuardKey, IPAddress>(leases.Count);
        foreach (var held in leases.Values)
        {
            byKey.Add(held.Lease.PublicKey, held.Lease.Address);
        }
        return byKey;
    }

    private static bool IsIpv4Host(IPNetwork network) => network.PrefixLength == 32 && network.BaseAddress.AddressFamily == AddressFamily.InterNetwork;

    private sealed record Rebuilt(
        Dictionary<WireGuardKey, IPAddress> AddressByKey,
        List<Guid> ForgottenDisconnects,
        List<Guid> Confirmed,
        List<PeerLease> Dropped,
        List<LeaseState> Adopted);
}
