using Vpn.Core.Dataplane;
using Vpn.Core.Reconciliation;
using Vpn.Domain.Addressing;

namespace Vpn.Core.Control;

/// <summary>
/// Sessions on this node: which peer and which client address each holds. Bookkeeping is serialized here, and every
/// dataplane change is queued while the lock is held, so the device sees changes in the order the registry made them;
/// the wait for the device happens outside the lock, so concurrent connects batch into one UAPI write.
/// </summary>
/// <remarks>
/// With reconciliation on, the database (pulled from entry) is the truth: <see cref="Synchronize"/> rebuilds the
/// leases from it by the <see cref="ReconcileRules"/>, which decide; the registry only applies the decision to its pool
/// and maps. Two kinds of recent local knowledge outrank a desired set that may be older than them, for
/// <see cref="CoreOptions.ReconcileGrace"/>: a lease made by Connect that the database does not list as active yet
/// (entry commits after Connect answers), and a session removed by Disconnect that the database still lists.
/// </remarks>
public sealed partial class PeerRegistry
{
    private readonly Lock _gate = new();
    private readonly IDataplane _dataplane;
    private readonly TimeProvider _time;
    private readonly ReconcileSignal _signal;
    private readonly Ipv4Network _network;
    private readonly Ipv6ClientNetwork _network6;
    private readonly Func<IPAddress, IPAddress> _ipv6For;
    private readonly Ipv4Pool _pool;
    private readonly long _graceTicks;
    private readonly Dictionary<Guid, LeaseState> _bySession = [];
    // The device's desired peers, kept in step with _bySession: unique keys, and unique addresses (the pool holds them).
    private readonly Dictionary<WireGuardKey, Guid> _sessionByKey = [];
    private readonly Dictionary<Guid, long> _recentlyDisconnected = [];
    // Keys with a Connect/Disconnect change queued but not yet applied: the device state read meanwhile is stale for them.
    private readonly Dictionary<WireGuardKey, int> _inFlight = [];
    // Keys changed since reconciliation read the device; null while it is not reading.
    private HashSet<WireGuardKey>? _touchedSinceRead;
    private bool _synced;
    private readonly TaskCompletionSource _firstSync = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>How long a Connect that arrives before the first sync waits for it (core just started; entry's view of
    /// the node, from its last heartbeat, may still be fresh).</summary>
    public static readonly TimeSpan FirstSyncWait = TimeSpan.FromSeconds(5);

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
        _network6 = options.ClientPool6;
        _ipv6For = _network6.AddressFor;
        _pool = new Ipv4Pool(options.ClientPool, options.AddressQuarantine, time);
        GatewayText = _pool.Gateway.ToString();
        Gateway6Text = _network6.Gateway.ToString();
        _graceTicks = (long)(options.ReconcileGrace.TotalSeconds * time.TimestampFrequency);
        // Without a truth to pull, local knowledge is all there is.
        _synced = !options.ReconcileEnabled;
        if (_synced)
        {
            _firstSync.SetResult();
        }
    }

    public IPAddress Gateway => _pool.Gateway;

    /// <summary><see cref="Gateway"/> as text, formatted once: every Connect answer carries it.</summary>
    public string GatewayText { get; }

    /// <summary>The node's IPv6 tunnel address as text.</summary>
    public string Gateway6Text { get; }

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

    /// <summary>
    /// Before the first sync: asks for a reconciliation pass now and waits for the leases to reflect the database, up to
    /// <see cref="FirstSyncWait"/> or until <paramref name="cancellationToken"/> (the call's deadline). True once synced.
    /// </summary>
    public async Task<bool> WaitForFirstSyncAsync(CancellationToken cancellationToken)
    {
        if (_firstSync.Task.IsCompleted)
        {
            return true;
        }
        _signal.Request();
        try
        {
            await _firstSync.Task.WaitAsync(FirstSyncWait, cancellationToken);
            return true;
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>
    /// Adds (or, for a session already here with the same key, re-applies) the session's peer. A device key held by
    /// another session is taken over when this claim is the later one (<paramref name="claimSeq"/> above the holder's):
    /// the holder's lease ends here as if disconnected, and the new session keeps its address, so the device's peer
    /// does not change at all — the same device replacing its own session keeps its tunnel up.
    /// </summary>
    public async Task<(ConnectOutcome Outcome, PeerLease? Lease)> ConnectAsync(Guid sessionId, WireGuardKey publicKey, ulong claimSeq,
        CancellationToken cancellationToken)
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
                var now = _time.GetTimestamp();
                if (_sessionByKey.TryGetValue(publicKey, out var holderId))
                {
                    var holder = _bySession[holderId].Lease;
                    if (claimSeq == 0 || claimSeq <= holder.ClaimSeq)
                    {
                        return (ConnectOutcome.KeyInUse, null);
                    }
                    // The later claim of the device: the database has ended the holder (one live session per customer,
                    // device keys unique), so it goes as a Disconnect would, with its address passing to the successor.
                    _bySession.Remove(holderId);
                    _recentlyDisconnected[holderId] = now;
                    lease = new PeerLease(sessionId, publicKey, holder.Address, holder.Address6, claimSeq);
                }
                else if (_pool.TryAllocate(out var address))
                {
                    lease = new PeerLease(sessionId, publicKey, address, _ipv6For(address), claimSeq);
                }
                else
                {
                    return (ConnectOutcome.PoolExhausted, null);
                }
                Add(new LeaseState(lease, Confirmed: false, now));
                _recentlyDisconnected.Remove(sessionId);
                created = true;
            }
            BeginChange(publicKey);
            try
            {
                // Re-applying an existing lease is harmless and repairs a peer lost by the device.
                applied = _dataplane.AddPeerAsync(publicKey, lease.Address, lease.Address6, cancellationToken);
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
                    Drop(lease);
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
            Drop(lease);
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
            return _bySession.TryGetValue(sessionId, out var held) ? held.Lease : null;
        }
    }

    /// <summary>Records a lease whose address the pool already holds for it.</summary>
    private void Add(LeaseState held)
    {
        _bySession[held.Lease.SessionId] = held;
        _sessionByKey[held.Lease.PublicKey] = held.Lease.SessionId;
    }

    private void Drop(PeerLease lease)
    {
        _bySession.Remove(lease.SessionId);
        _sessionByKey.Remove(lease.PublicKey);
        _pool.Release(lease.Address);
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
}
