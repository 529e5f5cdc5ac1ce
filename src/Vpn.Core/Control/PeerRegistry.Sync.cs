using System.Collections.Frozen;
using Vpn.Core.Reconciliation;
using Vpn.Domain.Reconciliation;

namespace Vpn.Core.Control;

// The registry's side of reconciliation: the database's sessions applied to the leases, under the same lock.
public sealed partial class PeerRegistry
{
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
    /// One reconciliation step under the lock: decide by the <see cref="ReconcileRules"/> over the leases, the desired
    /// snapshot (null when it could not be fetched) and the <paramref name="live"/> peers, apply the decision to the
    /// leases and the pool, and queue its peer change. Keys changed by Connect/Disconnect since the device was read are
    /// left to their own change.
    /// </summary>
    internal SyncPlan Synchronize(DesiredSnapshot? desired, IReadOnlyList<LivePeer> live)
    {
        ArgumentNullException.ThrowIfNull(live);
        lock (_gate)
        {
            var decision = ReconcileRules.Decide(new ReconcileInput(_bySession, _recentlyDisconnected, desired, live,
                _time.GetTimestamp(), _graceTicks, FirstSync: !_synced, _network, _network6, Unsettled()));
            Apply(decision);
            var applied = _dataplane.ApplyPeerChangesAsync(decision.PeerChanges(), CancellationToken.None);
            return new SyncPlan(decision, applied);
        }
    }

    private IReadOnlySet<WireGuardKey> Unsettled()
    {
        if (_inFlight.Count == 0 && (_touchedSinceRead is null || _touchedSinceRead.Count == 0))
        {
            return FrozenSet<WireGuardKey>.Empty;
        }
        var keys = new HashSet<WireGuardKey>(_inFlight.Keys);
        if (_touchedSinceRead is not null)
        {
            keys.UnionWith(_touchedSinceRead);
        }
        return keys;
    }

    private void Apply(ReconcileDecision decision)
    {
        foreach (var sessionId in decision.ForgottenDisconnects)
        {
            _recentlyDisconnected.Remove(sessionId);
        }
        foreach (var sessionId in decision.Confirmed)
        {
            _bySession[sessionId] = _bySession[sessionId] with { Confirmed = true };
        }
        // Dropped first: their addresses are free again before any adopted lease reserves one.
        foreach (var lease in decision.Dropped)
        {
            Drop(lease);
        }
        foreach (var held in decision.Adopted)
        {
            // The rules hand out only addresses free once the drops are released (a quarantined one included: the
            // database outranks that), so a refusal means the pool and the leases disagree.
            if (!_pool.TryReserve(held.Lease.Address))
            {
                throw new InvalidOperationException(
                    $"Address {held.Lease.Address} of {(held.Confirmed ? "an active" : "a provisioning")} session could not be reserved.");
            }
            Add(held);
        }
        if (decision.Full)
        {
            _synced = true;
            _firstSync.TrySetResult();
        }
        foreach (var address in decision.Quarantined)
        {
            _pool.QuarantineFree(address);
        }
    }
}

/// <summary>What one <see cref="PeerRegistry.Synchronize"/> decided and queued.</summary>
/// <param name="Applied">Completes when the device has applied the change.</param>
internal sealed record SyncPlan(ReconcileDecision Decision, Task Applied)
{
    /// <summary>The peers the pass's idle wipe then removed and re-added (<see cref="IdlePeerWiper"/>).</summary>
    public IReadOnlyList<WireGuardKey> Wiped { get; init; } = [];
}
