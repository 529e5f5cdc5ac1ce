using Vpn.Domain.Sessions;
using Vpn.Entry.Devices;
using Vpn.Entry.Nodes;
using Vpn.Entry.Subscriptions;

namespace Vpn.Entry.Data.InMemory;

/// <summary>
/// The zero-setup store for local runs: the state the in-memory plan, device, node and session stores (and the reports,
/// retention and erasure over them) share, so the invariants of the PostgreSQL schema hold across them (one live session
/// per customer, unique device keys, unique live IPv4 and IPv6 addresses per node, one open subscription), enforced
/// under one lock. Every member is read and written under <see cref="Gate"/>.
/// </summary>
public sealed class InMemoryDatabase
{
    private long _lastClaimSeq;

    internal Lock Gate { get; } = new();

    internal Dictionary<string, Plan> Plans { get; } = new(StringComparer.Ordinal);

    /// <summary>Every subscription period, in the order they were opened.</summary>
    internal List<Subscription> Subscriptions { get; } = [];

    internal Dictionary<Guid, Device> Devices { get; } = [];

    internal Dictionary<Guid, Node> Nodes { get; } = [];

    /// <summary>Sessions by id; every change of a row is reported (session events, <see cref="InMemorySessionEvents"/>).</summary>
    internal InMemorySessionTable Sessions { get; } = new();

    /// <summary>The last counters each session's node reported (sessions.usage_generation, usage_rx, usage_tx).</summary>
    internal Dictionary<Guid, Usage.SessionCounters> SessionUsage { get; } = [];

    /// <summary>One running total per customer per billing period (customer_usage), keyed by the period's start.</summary>
    internal Dictionary<(Guid CustomerId, DateTimeOffset PeriodStart), (long UsedBytes, DateTimeOffset UpdatedAt)> Usage { get; } = [];

    /// <summary>The next claim_seq: one sequence for every claim, as the database's.</summary>
    internal long NextClaimSeq() => ++_lastClaimSeq;

    /// <summary>The customer's latest subscription period with its plan's limits as they are now (as the SQL join reads them); null when none.</summary>
    internal Subscription? CurrentSubscription(Guid customerId)
    {
        var latest = Subscriptions.LastOrDefault(s => s.CustomerId == customerId);
        return latest is not null && Plans.TryGetValue(latest.PlanCode, out var plan)
            ? latest with { MaxDevices = plan.MaxDevices, AllowedRegions = plan.AllowedRegions }
            : latest;
    }

    internal static bool IsLive(SessionRecord s) => s.State is SessionState.Provisioning or SessionState.Active;

    /// <summary>
    /// Whether another live session on the node holds either address: the unique partial indexes sessions_node_address
    /// and sessions_node_address_v6 (a null IPv6 address conflicts with nothing).
    /// </summary>
    internal bool AddressHeld(Guid sessionId, Guid nodeId, string address, string? addressV6) =>
        Sessions.Values.Any(s => s.Id != sessionId && s.NodeId == nodeId && IsLive(s)
            && (s.AssignedAddress == address || (addressV6 is not null && s.AssignedAddressV6 == addressV6)));
}
