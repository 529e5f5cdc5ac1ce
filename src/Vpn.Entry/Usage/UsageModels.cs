using Vpn.Domain.Usage;

namespace Vpn.Entry.Usage;

/// <summary>
/// One session's WireGuard counters as its node read them: received and sent bytes (overhead included), cumulative within
/// <paramref name="Generation"/>, one counter run of the peer on the device (a new one after the peer was re-added or the
/// device restarted, when the counters start again from zero).
/// </summary>
public sealed record SessionCounters(Guid SessionId, long Generation, long ReceivedBytes, long SentBytes);

/// <summary>A customer whose total reached its plan's quota with the report just recorded; LiveSessionId is its active session, if any.</summary>
public sealed record QuotaReached(Guid CustomerId, Guid? LiveSessionId, long UsedBytes, long LimitBytes, DateTimeOffset ResetsAt);

/// <summary>
/// One running total per customer per billing period, fed by the nodes' counter reports; nothing per destination, hour
/// or node. Periods follow <see cref="BillingPeriod"/>, anchored on the day of the customer's first subscription.
/// </summary>
public interface IUsageStore
{
    /// <summary>
    /// Adds what the counters grew by since the node last reported them (a generation seen before counts its growth, a
    /// new one all of it), so a report applied twice counts once. Counters of sessions not of this node, or ended more
    /// than ten minutes ago, are ignored. Answers the customers whose total is now at or over their quota.
    /// </summary>
    Task<IReadOnlyList<QuotaReached>> RecordAsync(Guid nodeId, IReadOnlyList<SessionCounters> counters, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>The customer's use in the period holding <paramref name="now"/>, with its current plan's quota.</summary>
    Task<DataUsage> GetAsync(Guid customerId, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>Starts the current period's total again from zero (an operator's usage reset); answers the use after it.</summary>
    Task<DataUsage> ResetAsync(Guid customerId, DateTimeOffset now, CancellationToken cancellationToken);
}

/// <summary>How long a billing period's total is kept after its last update (PostgreSQL retention; the in-memory store keeps the current ones).</summary>
public static class UsageRetention
{
    public static readonly TimeSpan KeptFor = TimeSpan.FromDays(70);
}
