using Vpn.Core.Control;
using Vpn.Core.WireGuard;

namespace Vpn.Core.Reconciliation;

/// <summary>
/// Provable forgetting on the node: a peer idle for <see cref="CoreOptions.PeerIdleWipe"/> is removed and re-added with
/// the same allowed IPs (IVPN does the same), which drops the endpoint the device learnt — the client's source address —
/// so a node seized later holds none of its idle customers' addresses. The client's next handshake teaches the device
/// its endpoint again; nothing else of the peer changes. Run by each reconciliation pass after its sync, on the pass's
/// device read.
/// </summary>
/// <remarks>
/// Idle: the device reports an endpoint (learnt only from authenticated packets) and its last handshake is at least the
/// window old. While data flows wireguard-go rekeys every 120 s and never uses keys older than 180 s, so an older
/// handshake means no traffic. A peer with an endpoint and no completed handshake (an initiation that never got its
/// data) counts from when a pass first saw it so. Peers without an endpoint have nothing to wipe. Removing a peer
/// also resets its rx/tx counters (the keys are reported in <see cref="ReconcileOutcome.WipedKeys"/>).
/// </remarks>
public sealed partial class IdlePeerWiper(CoreOptions options, PeerRegistry registry, ReconcileSignal signal, TimeProvider time,
    ReconcileMetrics metrics, ILogger<IdlePeerWiper> logger)
{
    private readonly Lock _gate = new();
    // Peers seen with an endpoint and no completed handshake, since when (pruned to the latest read each pass).
    private readonly Dictionary<WireGuardKey, DateTimeOffset> _unhandshakenSince = [];

    /// <summary>
    /// Removes and re-adds the idle peers of <paramref name="device"/> (the pass's read) that the registry still holds as
    /// leases untouched since that read, in one ordered change. Returns their keys: their endpoints are gone and their
    /// counters restart from zero. A failed write is logged and answered with a reconciliation request (the device may
    /// have applied part of it; the next pass adds any lease's peer it lacks); the keys are returned then too, as
    /// their counters may have been reset.
    /// </summary>
    public async Task<IReadOnlyList<WireGuardKey>> WipeAsync(IReadOnlyList<PeerState> device)
    {
        ArgumentNullException.ThrowIfNull(device);
        var idle = FindIdle(device);
        if (idle.Count == 0)
        {
            return [];
        }
        var plan = registry.WipeEndpoints(idle);
        if (plan.Keys.Count == 0)
        {
            return [];
        }
        try
        {
            // Not cancelled: once queued, the change is the device's to apply, and the caller must learn the keys.
            await plan.Applied;
            metrics.RecordWipe(plan.Keys.Count);
            LogWiped(logger, plan.Keys.Count);
        }
        catch (Exception e)
        {
            LogWipeFailed(logger, plan.Keys.Count, e.Message);
            signal.Request();
        }
        return plan.Keys;
    }

    /// <summary>The peers of <paramref name="device"/> idle now by the rule above (empty when the wipe is off).</summary>
    internal IReadOnlyList<PeerState> FindIdle(IReadOnlyList<PeerState> device)
    {
        ArgumentNullException.ThrowIfNull(device);
        var window = options.PeerIdleWipe;
        var now = time.GetUtcNow();
        var idle = new List<PeerState>();
        lock (_gate)
        {
            if (window <= TimeSpan.Zero)
            {
                _unhandshakenSince.Clear();
                return idle;
            }
            var seen = new HashSet<WireGuardKey>();
            foreach (var peer in device)
            {
                if (peer.Endpoint is null)
                {
                    continue;
                }
                DateTimeOffset since;
                if (peer.LastHandshake is { } handshake)
                {
                    since = handshake;
                }
                else
                {
                    seen.Add(peer.PublicKey);
                    if (!_unhandshakenSince.TryGetValue(peer.PublicKey, out since))
                    {
                        _unhandshakenSince[peer.PublicKey] = since = now;
                    }
                }
                if (now - since >= window)
                {
                    idle.Add(peer);
                }
            }
            // Forget what no longer holds (a handshake completed, the endpoint is gone, the peer was wiped or removed).
            foreach (var key in _unhandshakenSince.Keys.Where(k => !seen.Contains(k)).ToList())
            {
                _unhandshakenSince.Remove(key);
            }
            foreach (var peer in idle)
            {
                _unhandshakenSince.Remove(peer.PublicKey);
            }
        }
        return idle;
    }

    /// <summary>
    /// The two changes that wipe <paramref name="peer"/>'s endpoint: remove it, then add it back with the lease's /32 and
    /// /128 and the preshared key and persistent keepalive the device had (core sets neither; kept in case someone did).
    /// </summary>
    internal static PeerConfig[] RemoveAndReAdd(PeerLease lease, PeerState peer)
    {
        ArgumentNullException.ThrowIfNull(lease);
        ArgumentNullException.ThrowIfNull(peer);
        return
        [
            new PeerConfig { PublicKey = lease.PublicKey, Remove = true },
            new PeerConfig
            {
                PublicKey = lease.PublicKey,
                PresharedKey = peer.PresharedKey,
                PersistentKeepaliveInterval = peer.PersistentKeepaliveInterval > TimeSpan.Zero ? peer.PersistentKeepaliveInterval : null,
                ReplaceAllowedIps = true,
                AllowedIps = [new IPNetwork(lease.Address, 32), new IPNetwork(lease.Address6, 128)],
            },
        ];
    }

    // Counts only: endpoints and addresses are what is being forgotten.
    [LoggerMessage(EventId = 630, Level = LogLevel.Information, Message = "Wiped the endpoints of {Count} idle peer(s)")]
    private static partial void LogWiped(ILogger logger, int count);

    [LoggerMessage(EventId = 631, Level = LogLevel.Warning,
        Message = "Wiping the endpoints of {Count} idle peer(s) failed, part of it may be applied; the next reconciliation pass restores any peer removed: {Reason}")]
    private static partial void LogWipeFailed(ILogger logger, int count, string reason);
}
