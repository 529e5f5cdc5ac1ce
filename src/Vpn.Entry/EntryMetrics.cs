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
    }

    public Counter<long> SessionsStarted { get; }

    public Counter<long> SessionStartsFailed { get; }

    public Counter<long> SessionsTerminated { get; }
}
