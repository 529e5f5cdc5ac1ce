using System.Diagnostics.Metrics;

namespace Vpn.Core.Reconciliation;

/// <summary>
/// Drift and health of reconciliation, as instruments on the "Vpn.Core" meter (for monitoring) and as a snapshot (for
/// GetNodeStatus). Counts are since this core started.
/// </summary>
public sealed class ReconcileMetrics
{
    public const string MeterName = "Vpn.Core";

    private readonly TimeProvider _time;
    private readonly Counter<long> _passes;
    private readonly Counter<long> _failures;
    private readonly Counter<long> _peersAdded;
    private readonly Counter<long> _peersRemoved;
    private readonly Counter<long> _peersCorrected;
    private readonly Counter<long> _reinitializations;
    private readonly Counter<long> _endpointsWiped;
    private long _passCount;
    private long _failureCount;
    private long _addedCount;
    private long _removedCount;
    private long _correctedCount;
    private long _reinitializationCount;
    private long _wipedCount;
    private long _lastSuccessUnixMs;
    private int _synced;

    public ReconcileMetrics(IMeterFactory meters, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(meters);
        ArgumentNullException.ThrowIfNull(time);
        _time = time;
        var meter = meters.Create(MeterName);
        _passes = meter.CreateCounter<long>("vpn.core.reconcile.passes", "{pass}", "Reconciliation passes run.");
        _failures = meter.CreateCounter<long>("vpn.core.reconcile.failures", "{pass}",
            "Passes that did not converge to a fresh desired state, by reason (entry_unavailable, desired_state_rejected, device_error).");
        _peersAdded = meter.CreateCounter<long>("vpn.core.reconcile.peers_added", "{peer}", "Missing peers added by reconciliation.");
        _peersRemoved = meter.CreateCounter<long>("vpn.core.reconcile.peers_removed", "{peer}", "Unwanted peers removed by reconciliation.");
        _peersCorrected = meter.CreateCounter<long>("vpn.core.reconcile.peers_corrected", "{peer}", "Peers whose allowed IPs reconciliation restored.");
        _reinitializations = meter.CreateCounter<long>("vpn.core.reconcile.device_reinitializations", "{event}",
            "Times a recreated WireGuard device was initialized again.");
        _endpointsWiped = meter.CreateCounter<long>("vpn.core.reconcile.endpoints_wiped", "{peer}",
            "Idle peers removed and re-added to forget their endpoint (CORE_PEER_IDLE_WIPE_SECS).");
        meter.CreateObservableGauge("vpn.core.reconcile.last_success", () => Interlocked.Read(ref _lastSuccessUnixMs) / 1000.0, "s",
            "Unix time of the last pass that converged to a fresh desired state; 0 before the first.");
        meter.CreateObservableGauge("vpn.core.reconcile.synced", () => Volatile.Read(ref _synced), "{bool}",
            "1 when the last pass converged to a fresh desired state.");
    }

    internal void RecordPass(string? failureReason, int added, int removed, int corrected)
    {
        Interlocked.Increment(ref _passCount);
        _passes.Add(1);
        Count(ref _addedCount, _peersAdded, added);
        Count(ref _removedCount, _peersRemoved, removed);
        Count(ref _correctedCount, _peersCorrected, corrected);
        if (failureReason is null)
        {
            Interlocked.Exchange(ref _lastSuccessUnixMs, _time.GetUtcNow().ToUnixTimeMilliseconds());
            Volatile.Write(ref _synced, 1);
        }
        else
        {
            Interlocked.Increment(ref _failureCount);
            _failures.Add(1, new KeyValuePair<string, object?>("vpn.reason", failureReason));
            Volatile.Write(ref _synced, 0);
        }
    }

    internal void RecordReinitialization()
    {
        Interlocked.Increment(ref _reinitializationCount);
        _reinitializations.Add(1);
    }

    internal void RecordWipe(int peers) => Count(ref _wipedCount, _endpointsWiped, peers);

    public ReconcileStatus Snapshot() => new(
        Volatile.Read(ref _synced) == 1,
        Interlocked.Read(ref _passCount),
        Interlocked.Read(ref _failureCount),
        Interlocked.Read(ref _addedCount),
        Interlocked.Read(ref _removedCount),
        Interlocked.Read(ref _correctedCount),
        Interlocked.Read(ref _reinitializationCount),
        Interlocked.Read(ref _lastSuccessUnixMs),
        Interlocked.Read(ref _wipedCount));

    private static void Count(ref long total, Counter<long> counter, int value)
    {
        if (value > 0)
        {
            Interlocked.Add(ref total, value);
            counter.Add(value);
        }
    }
}

/// <summary>Reconciliation counters since start.</summary>
/// <param name="Synced">The last pass converged the device to a fresh, valid desired state.</param>
/// <param name="LastSuccessUnixMs">When that last happened; 0 = never.</param>
/// <param name="EndpointsWiped">Idle peers whose endpoint was wiped (removed and re-added).</param>
public sealed record ReconcileStatus(
    bool Synced,
    long Passes,
    long Failures,
    long PeersAdded,
    long PeersRemoved,
    long PeersCorrected,
    long DeviceReinitializations,
    long LastSuccessUnixMs,
    long EndpointsWiped = 0);
