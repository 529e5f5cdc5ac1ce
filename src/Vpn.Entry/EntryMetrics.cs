using System.Diagnostics.Metrics;

namespace Vpn.Entry;

/// <summary>Counters of the session lifecycle, exported at /metrics (Prometheus text). No customer identifiers as tags.</summary>
public sealed class EntryMetrics
{
    public const string MeterName = "Vpn.Entry";

    public EntryMetrics(IMeterFactory meters)
    {
        ArgumentNullException.ThrowIfNull(meters);
        var meter = meters.Create(MeterName);
        SessionsStarted = meter.CreateCounter<long>("vpn_sessions_started", description: "Sessions that reached active.");
        SessionStartsFailed = meter.CreateCounter<long>("vpn_session_starts_failed", description: "Starts rolled back because the node's core failed.");
        SessionsTerminated = meter.CreateCounter<long>("vpn_sessions_terminated", description: "Sessions terminated (customer, device deletion, replacement).");
        RetentionPurged = meter.CreateCounter<long>("vpn_retention_purged", description: "Rows deleted by retention cleanup, by kind.");
        AuthFailures = meter.CreateCounter<long>("vpn_auth_failures",
            description: "Failed guessable credentials (admin token, session key) by credential and outcome: rejected (401) or throttled (429).");
        CustomersErased = meter.CreateCounter<long>("vpn_customers_erased", description: "Customers erased (DELETE /v1/me or the admin API), by initiator.");
        NodeConnectsShed = meter.CreateCounter<long>("vpn_node_connects_shed",
            description: "Connects refused with 503 node_busy because the node's Connect queue was full or its wait ran out, by reason.");
        SessionRequestsShed = meter.CreateCounter<long>("vpn_session_requests_shed",
            description: "Session starts and reconnects refused with 503 server_busy by the replica's admission, by reason.");
    }

    /// <summary>Tags: reason = queue_full | wait.</summary>
    public Counter<long> NodeConnectsShed { get; }

    /// <summary>Tags: reason = queue_full | wait.</summary>
    public Counter<long> SessionRequestsShed { get; }

    /// <summary>Tags: credential = admin_token | session_key; outcome = rejected | throttled. Never an address.</summary>
    public Counter<long> AuthFailures { get; }

    public Counter<long> CustomersErased { get; }

    public Counter<long> SessionsStarted { get; }

    public Counter<long> SessionStartsFailed { get; }

    public Counter<long> SessionsTerminated { get; }

    public Counter<long> RetentionPurged { get; }

    public void RecordRetentionPurge(Privacy.PurgeCounts purged)
    {
        ArgumentNullException.ThrowIfNull(purged);
        RetentionPurged.Add(purged.Sessions, new KeyValuePair<string, object?>("kind", "sessions"));
        RetentionPurged.Add(purged.AuditEvents, new KeyValuePair<string, object?>("kind", "audit_events"));
        RetentionPurged.Add(purged.IdempotencyRecords, new KeyValuePair<string, object?>("kind", "idempotency_records"));
    }
}
