using System.Net;
using Vpn.Core.Configuration;
using Vpn.Core.Dataplane;
using Vpn.Core.Reconciliation;
using Vpn.Core.WireGuard;
using Vpn.Domain.Addressing;
using Vpn.Domain.Reconciliation;
using Vpn.Domain.WireGuard;

namespace Vpn.Core.Control;

/// <summary>A session's peer on this node.</summary>
public sealed record PeerLease(Guid SessionId, WireGuardKey PublicKey, IPAddress Address);

public enum ConnectOutcome
{
    Connected,
    PoolExhausted,
    /// <summary>The session id is already connected with another device key.</summary>
    SessionKeyMismatch,
    /// <summary>The device key is already the peer of another session on this node.</summary>
    KeyInUse,
    /// <summary>Reconciliation is on and has not yet loaded the database's sessions, so free addresses are unknown.</summary>
    NotSynced,
}

/// <summary>
/// Sessions on this node: which peer and which client address each holds. Bookkeeping is serialized here, and every
/// dataplane change is queued while the lock is held, so the device sees changes in the order the registry made them;
/// the wait for the device happens outside the lock, so concurrent connects batch into one UAPI write.
/// </summary>
/// <remarks>
/// With reconciliation on, the database (pulled from entry) is the truth: <see cref="Synchronize"/> rebuilds the
/// leases from it. Two kinds of recent local knowledge outrank a desired set that may be older than them, for
/// <see cref="CoreOptions.ReconcileGrace"/>: a lease made by Connect that the database does not list as active yet
/// (entry commits after Connect answers), and a session removed by Disconnect that the database still lists.
/// </remarks>
public sealed class PeerRegistry
{
    private readonly Lock _gate = new();
    private readonly IDataplane _dataplane;
    private readonly TimeProvider _time;
    private readonly ReconcileSignal _signal;
    private readonly Ipv4Network _network;
    private readonly Ipv4Pool _pool;
    private readonly long _graceTicks;
    private readonly Dictionary<Guid, Held> _bySession = [];
    // The device's desired peers, kept in step with _bySession: unique keys, and unique addresses (the pool holds them).
    private readonly Dictionary<WireGuardKey, IPAddress> _addressByKey = [];
    private readonly Dictionary<Guid, long> _recentlyDisconnected = [];
    // Keys with a Connect/Disconnect change queued but not yet applied: the device state read meanwhile is stale for them.
    private readonly Dictionary<WireGuardKey, int> _inFlight = [];
    // Keys changed since reconciliation read the device; null while it is not reading.
    private HashSet<WireGuardKey>? _touchedSinceRead;
    private bool _synced;
    private long _rebuilds;

    public PeerRegistry(CoreOptions options, IDataplane dataplane, TimeProvider time, ReconcileSignal signal)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(dataplane);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(signal);
        _dataplane = dataplane;
        _time = time;
        _signal = signal;
        _network = options.ClientPool;
        _pool = new Ipv4Pool(options.ClientPool, options.AddressQuarantine, time);
        GatewayText = _pool.Gateway.ToString();
        _graceTicks = (long)(options.ReconcileGrace.TotalSeconds * time.TimestampFrequency);
        // Without a truth to pull, local knowledge is all there is.
        _synced = !options.ReconcileEnabled;
    }

    public IPAddress Gateway => _pool.Gateway;

    /// <summary><see cref="Gateway"/> as text, formatted once: every Connect answer carries it.</summary>
    public string GatewayText { get; }

    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _bySession.Count;
            }
        }
    }

    /// <summary>True once the leases reflect the database (always true without reconciliation); until then Connect is refused.</summary>
    public bool IsSynced
    {
        get
        {
            lock (_gate)
            {
                return _synced;
            }
        }
    }

    public async Task<(ConnectOutcome Outcome, PeerLease? Lease)> ConnectAsync(Guid sessionId, WireGuardKey publicKey, CancellationToken cancellationToken)
    {
        PeerLease lease;
        bool created;
        Task applied;
        lock (_gate)
        {
            if (!_synced)
            {
                return (ConnectOutcome.NotSynced, null);
            }
            if (_bySession.TryGetValue(sessionId, out var existing))
            {
                if (existing.Lease.PublicKey != publicKey)
                {
                    return (ConnectOutcome.SessionKeyMismatch, null);
                }
                lease = existing.Lease;
                created = false;
            }
            else
            {
                if (_addressByKey.ContainsKey(publicKey))
                {
                    return (ConnectOutcome.KeyInUse, null);
                }
                if (!_pool.TryAllocate(out var address))
                {
                    return (ConnectOutcome.PoolExhausted, null);
                }
                lease = new PeerLease(sessionId, publicKey, address);
                Add(lease, _time.GetTimestamp(), confirmed: false);
                _recentlyDisconnected.Remove(sessionId);
                created = true;
            }
            BeginChange(publicKey);
            try
            {
                // Re-applying an existing lease is harmless and repairs a peer lost by the device.
                applied = _dataplane.AddPeerAsync(publicKey, lease.Address, cancellationToken);
            }
            catch (Exception e)
            {
                applied = Task.FromException(e);
            }
        }
        try
        {
            await applied;
        }
        catch
        {
            lock (_gate)
            {
                // The set may have been applied in part; reconciliation re-reads the device and removes what is left.
                if (created && _bySession.TryGetValue(sessionId, out var held) && ReferenceEquals(held.Lease, lease))
                {
                    Drop(held);
                }
            }
            _signal.Request();
            throw;
        }
        finally
        {
            EndChange(publicKey);
        }
        return (ConnectOutcome.Connected, lease);
    }

    /// <summary>Removes the session's peer and releases its address (into quarantine); null when the session was not on this node.</summary>
    public async Task<PeerLease?> DisconnectAsync(Guid sessionId, CancellationToken cancellationToken)
    {
        PeerLease lease;
        Task applied;
        lock (_gate)
        {
            _recentlyDisconnected[sessionId] = _time.GetTimestamp();
            if (!_bySession.TryGetValue(sessionId, out var held))
            {
                return null;
            }
            lease = held.Lease;
            Drop(held);
            BeginChange(lease.PublicKey);
            try
            {
                applied = _dataplane.RemovePeerAsync(lease.PublicKey, cancellationToken);
            }
            catch (Exception e)
            {
                applied = Task.FromException(e);
            }
        }
        try
        {
            await applied;
        }
        catch
        {
            // The lease is gone either way; reconciliation removes the peer if the device still holds it.
            _signal.Request();
            throw;
        }
        finally
        {
            EndChange(lease.PublicKey);
        }
        return lease;
    }

    public PeerLease? Find(Guid sessionId)
    {
        lock (_gate)
        {
            return _bySession.GetValueOrDefault(sessionId)?.Lease;
        }
    }

    /// <summary>Reconciliation is about to read the device: remember which keys change until <see cref="Synchronize"/>.</summary>
    internal void BeginDeviceRead()
    {
        lock (_gate)
        {
            _touchedSinceRead = [];
        }
    }

    internal void EndDeviceRead()
    {
        lock (_gate)
        {
            _touchedSinceRead = null;
        }
    }

    /// <summary>
    /// One reconciliation step under the lock: with a desired snapshot, rebuild the leases from it; then diff the leases
    /// against the <paramref name="live"/> peers and queue the minimal change. Without a snapshot (entry unreachable or
    /// its answer rejected) nothing is pruned: only missing peers and wrong allowed IPs are repaired from the leases.
    /// Keys changed by Connect/Disconnect since the device was read are left to their own change.
    /// </summary>
    internal SyncPlan Synchronize(DesiredSnapshot? desired, IReadOnlyList<LivePeer> live)
    {
        ArgumentNullException.ThrowIfNull(live);
        lock (_gate)
        {
            var now = _time.GetTimestamp();
            IReadOnlyList<string> problems = [];
            RebuildResult? rebuilt = null;
            if (desired is not null)
            {
                rebuilt = Rebuild(desired, live, now, out problems);
            }
            var full = rebuilt is not null;

            var diff = PeerDiff.Compute(_addressByKey, live);
            var adds = diff.Adds.Where(p => IsSettled(p.PublicKey)).ToList();
            var corrections = diff.Corrections.Where(p => IsSettled(p.PublicKey)).ToList();
            var removes = full ? diff.Removes.Where(IsSettled).ToList() : [];
            var skippedRemoves = full ? 0 : diff.Removes.Count;
            if (full && removes.Count > 0)
            {
                QuarantineAddressesOf(removes, live);
            }

            var changes = new List<PeerConfig>(removes.Count + corrections.Count + adds.Count);
            // Removes first: they free allowed IPs and room under wireguard-go's peer limit before anything is added.
            changes.AddRange(removes.Select(key => new PeerConfig { PublicKey = key, Remove = true }));
            changes.AddRange(corrections.Select(ToConfig));
            changes.AddRange(adds.Select(ToConfig));
            var applied = _dataplane.ApplyPeerChangesAsync(changes, CancellationToken.None);
            return new SyncPlan(full, problems, adds, removes, corrections, diff.Unchanged, skippedRemoves,
                rebuilt?.Adopted ?? 0, rebuilt?.Dropped ?? [], _bySession.Count, applied);
        }
    }

    private bool IsSettled(WireGuardKey key) => !_inFlight.ContainsKey(key) && _touchedSinceRead?.Contains(key) != true;

    private RebuildResult? Rebuild(DesiredSnapshot desired, IReadOnlyList<LivePeer> live, long now, out IReadOnlyList<string> problems)
    {
        // Steady state is the common case (64k sessions, a few changes): one pass over the snapshot, one over the leases,
        // and no per-pass collection beyond the validation's.
        var authoritativeSessions = new List<DesiredSession>(desired.Sessions.Count);
        authoritativeSessions.AddRange(desired.Sessions.Where(s => s.State == DesiredSessionState.Active && s.Address is not null));
        if (!DesiredPeerSet.TryCreate(authoritativeSessions.Select(s => new DesiredPeer(s.PublicKey, s.Address!)), _network, out var truth, out problems))
        {
            return null;
        }
        foreach (var (sessionId, at) in _recentlyDisconnected.ToList())
        {
            if (now - at >= _graceTicks)
            {
                _recentlyDisconnected.Remove(sessionId);
            }
        }
        // A session this core disconnected so recently that the snapshot may predate it is not authoritative: its key
        // and address do not clash with anything (e.g. replace_existing reconnects the same device key at once).
        var pass = ++_rebuilds;
        HashSet<WireGuardKey> ignoredKeys = [];
        HashSet<IPAddress> ignoredAddresses = [];
        var dropped = new List<PeerLease>();
        var toAdopt = new List<DesiredSession>();
        foreach (var session in authoritativeSessions)
        {
            if (_recentlyDisconnected.ContainsKey(session.SessionId))
            {
                ignoredKeys.Add(session.PublicKey);
                ignoredAddresses.Add(session.Address!);
            }
            else if (_bySession.TryGetValue(session.SessionId, out var held)
                && held.Lease.PublicKey == session.PublicKey && held.Lease.Address.Equals(session.Address))
            {
                held.Confirmed = true;
                held.SeenInRebuild = pass;
            }
            else
            {
                toAdopt.Add(session);
            }
        }
        var replaced = toAdopt.Select(s => s.SessionId).ToHashSet();
        foreach (var held in _bySession.Values)
        {
            if (held.SeenInRebuild == pass)
            {
                continue;
            }
            // Not (or no longer, or differently) listed as active. The database wins every clash over a key or an address.
            // A confirmed lease it no longer lists has ended; an unconfirmed one (Connect not yet committed, or still
            // provisioning) lives out its grace period.
            var lease = held.Lease;
            var clashes = (truth.Peers.ContainsKey(lease.PublicKey) && !ignoredKeys.Contains(lease.PublicKey))
                || (truth.ContainsAddress(lease.Address) && !ignoredAddresses.Contains(lease.Address));
            if (clashes || replaced.Contains(lease.SessionId) || held.Confirmed || now - held.Since >= _graceTicks)
            {
                dropped.Add(lease);
            }
        }
        foreach (var lease in dropped)
        {
            Drop(_bySession[lease.SessionId]);
        }
        foreach (var session in toAdopt)
        {
            // Clashing leases were dropped above, so the address is free (perhaps quarantined: the database outranks that).
            if (!_pool.TryReserve(session.Address!))
            {
                throw new InvalidOperationException($"Address {session.Address} of an active session could not be reserved.");
            }
            Add(new PeerLease(session.SessionId, session.PublicKey, session.Address!), now, confirmed: true);
        }
        var adopted = toAdopt.Count;
        if (!_synced)
        {
            adopted += AdoptProvisioningPeers(desired, live, now);
        }
        _synced = true;
        return new RebuildResult(adopted, dropped);
    }

    /// <summary>
    /// First sync only: a provisioning session whose peer the device already serves (core restarted between its Connect
    /// and entry's commit) keeps that peer and address as a fresh unconfirmed lease, instead of a cut until entry commits.
    /// </summary>
    private int AdoptProvisioningPeers(DesiredSnapshot desired, IReadOnlyList<LivePeer> live, long now)
    {
        var candidates = desired.Sessions
            .Where(s => s.State == DesiredSessionState.Provisioning && !_bySession.ContainsKey(s.SessionId)
                && !_recentlyDisconnected.ContainsKey(s.SessionId) && !_addressByKey.ContainsKey(s.PublicKey))
            .ToList();
        if (candidates.Count == 0)
        {
            return 0;
        }
        var liveByKey = new Dictionary<WireGuardKey, IReadOnlyList<IPNetwork>>();
        foreach (var peer in live)
        {
            liveByKey.TryAdd(peer.PublicKey, peer.AllowedIps);
        }
        var adopted = 0;
        foreach (var session in candidates)
        {
            if (liveByKey.TryGetValue(session.PublicKey, out var allowed) && allowed.Count == 1 && allowed[0].PrefixLength == 32
                && allowed[0].BaseAddress.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork && !_addressByKey.ContainsKey(session.PublicKey) && _pool.TryReserve(allowed[0].BaseAddress))
            {
                Add(new PeerLease(session.SessionId, session.PublicKey, allowed[0].BaseAddress), now, confirmed: false);
                adopted++;
            }
        }
        return adopted;
    }

    /// <summary>Addresses of peers removed from the device may still be in a client's session keys: let them rest too.</summary>
    private void QuarantineAddressesOf(List<WireGuardKey> removes, IReadOnlyList<LivePeer> live)
    {
        var removed = removes.ToHashSet();
        foreach (var peer in live)
        {
            if (!removed.Contains(peer.PublicKey))
            {
                continue;
            }
            foreach (var network in peer.AllowedIps)
            {
                if (network.PrefixLength == 32 && network.BaseAddress.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork)
                {
                    _pool.QuarantineFree(network.BaseAddress);
                }
            }
        }
    }

    /// <summary>Records a lease whose address the pool already holds for it.</summary>
    private void Add(PeerLease lease, long since, bool confirmed)
    {
        _bySession[lease.SessionId] = new Held(lease, since) { Confirmed = confirmed };
        _addressByKey[lease.PublicKey] = lease.Address;
    }

    private void Drop(Held held)
    {
        _bySession.Remove(held.Lease.SessionId);
        _addressByKey.Remove(held.Lease.PublicKey);
        _pool.Release(held.Lease.Address);
    }

    private void BeginChange(WireGuardKey key)
    {
        _inFlight[key] = _inFlight.GetValueOrDefault(key) + 1;
        _touchedSinceRead?.Add(key);
    }

    private void EndChange(WireGuardKey key)
    {
        lock (_gate)
        {
            if (_inFlight.TryGetValue(key, out var count) && count > 1)
            {
                _inFlight[key] = count - 1;
            }
            else
            {
                _inFlight.Remove(key);
            }
            _touchedSinceRead?.Add(key);
        }
    }

    private static PeerConfig ToConfig(DesiredPeer peer) => new()
    {
        PublicKey = peer.PublicKey,
        ReplaceAllowedIps = true,
        AllowedIps = [new IPNetwork(peer.Address, 32)],
    };

    /// <param name="Since">Timestamp (<see cref="TimeProvider.GetTimestamp"/>) of the Connect or adoption.</param>
    private sealed class Held(PeerLease lease, long since)
    {
        public PeerLease Lease { get; } = lease;

        public long Since { get; } = since;

        /// <summary>A desired snapshot has listed the session as active with this key and address.</summary>
        public bool Confirmed { get; set; }

        /// <summary>The rebuild that last found the lease authoritative.</summary>
        public long SeenInRebuild { get; set; }
    }

    private sealed record RebuildResult(int Adopted, List<PeerLease> Dropped);
}

/// <summary>What one <see cref="PeerRegistry.Synchronize"/> decided and queued.</summary>
/// <param name="Full">The leases were rebuilt from a valid desired snapshot and unwanted peers were pruned.</param>
/// <param name="Problems">Why the snapshot was rejected (empty when accepted or when there was none).</param>
/// <param name="SkippedRemoves">Unwanted-looking peers left alone because the truth was unavailable.</param>
/// <param name="Adopted">Leases created from active sessions this core did not know.</param>
/// <param name="Dropped">Leases dropped: sessions ended, grace expired, or clashing with the database.</param>
/// <param name="Leases">Leases after the step.</param>
/// <param name="Applied">Completes when the device has applied the change.</param>
internal sealed record SyncPlan(
    bool Full,
    IReadOnlyList<string> Problems,
    IReadOnlyList<DesiredPeer> Adds,
    IReadOnlyList<WireGuardKey> Removes,
    IReadOnlyList<DesiredPeer> Corrections,
    int Unchanged,
    int SkippedRemoves,
    int Adopted,
    IReadOnlyList<PeerLease> Dropped,
    int Leases,
    Task Applied)
{
    public int ChangeCount => Adds.Count + Removes.Count + Corrections.Count;
}
