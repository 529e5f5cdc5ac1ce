using System.Diagnostics.Metrics;

namespace Vpn.Entry.Health;

/// <summary>
/// The state operators alert on, as gauges read at scrape time (deploy/monitoring/alerts.yaml): the nodes of this
/// replica's registry by state, whether this replica can vouch for its token revocation list, when retention last
/// ran, and the session event streams open. No identifiers. A scrape never waits: the node registry is read only when
/// it is already loaded.
/// </summary>
public sealed class StateGauges
{
    public StateGauges(IMeterFactory meters, Nodes.INodeDirectory nodes, ITokenRevocations revocations, Privacy.RetentionStatus retention,
        EntryOptions options, TimeProvider time, Sessions.SessionEventHub sessionEvents)
    {
        ArgumentNullException.ThrowIfNull(meters);
        var meter = meters.Create(EntryMetrics.MeterName);
        meter.CreateObservableGauge("vpn_nodes", () => NodeStates(nodes, options.NodeFreshness, time.GetUtcNow()), "{node}",
            "Registered nodes by state: healthy (a candidate), unhealthy, stale (no heartbeat within APP_NODE_FRESHNESS_SECS), draining.");
        meter.CreateObservableGauge("vpn_revocation_list_fresh", () => RevocationFresh(revocations), "{bool}",
            "1 while this replica can vouch for its revocation list; 0 while authenticated requests answer 503 revocation_unavailable.");
        meter.CreateObservableGauge("vpn_retention_last_success_timestamp", () => retention.Snapshot().LastSuccessAt?.ToUnixTimeSeconds() ?? 0, "s",
            "Unix time of this replica's last successful retention pass (0: none yet).");
        meter.CreateObservableGauge("vpn_session_event_streams", () => sessionEvents.OpenStreams, "{stream}",
            "GET /v1/sessions/current/events streams open on this replica (bounded by APP_SESSION_EVENTS_MAX_STREAMS).");
    }

    private static IEnumerable<Measurement<int>> NodeStates(Nodes.INodeDirectory nodes, TimeSpan freshness, DateTimeOffset now)
    {
        var pending = nodes.GetAsync(CancellationToken.None);
        if (!pending.IsCompletedSuccessfully)
        {
            // Not loaded yet (or reloading from scratch): no reading rather than a scrape that waits on the database.
            _ = pending.AsTask().ContinueWith(static t => _ = t.Exception, TaskScheduler.Default);
            return [];
        }
        var counts = new Dictionary<string, int>(StringComparer.Ordinal) { ["healthy"] = 0, ["unhealthy"] = 0, ["stale"] = 0, ["draining"] = 0 };
        foreach (var entry in pending.Result.All)
        {
            var node = entry.Node;
            var state = node.Draining ? "draining"
                : node.LastHeartbeatAt is not { } beat || now - beat > freshness ? "stale"
                : node.Healthy ? "healthy" : "unhealthy";
            counts[state]++;
        }
        return [.. counts.Select(c => new Measurement<int>(c.Value, new KeyValuePair<string, object?>("state", c.Key)))];
    }

    private static int RevocationFresh(ITokenRevocations revocations)
    {
        try
        {
            var check = revocations.IsRevokedAsync(RevocationListReadinessCheck.ProbeJti, CancellationToken.None);
            if (!check.IsCompleted)
            {
                // Waiting for a first load or a refresh: authenticated requests are waiting on it too, so it is not fresh
                // (a replica that never reached PostgreSQL reports 0, not 1).
                _ = check.AsTask().ContinueWith(static t => _ = t.Exception, TaskScheduler.Default);
                return 0;
            }
            _ = check.Result;
            return 1;
        }
        catch (ApiProblemException e) when (e.Code == ErrorCodes.RevocationUnavailable)
        {
            return 0;
        }
    }
}
