using Vpn.Domain.Subscriptions;

namespace Vpn.Entry.Subscriptions;

/// <summary>
/// A sellable plan. AllowedRegions are region codes as nodes are registered with (compared ignoring case).
/// MonthlyDataBytes is the fair-use quota per billing period (received plus sent, WireGuard overhead included); null is unlimited.
/// </summary>
public sealed record Plan(string Code, string Name, int MaxDevices, IReadOnlyList<string> AllowedRegions, long? MonthlyDataBytes = null);

/// <summary>One period of a customer's subscription; EndedAt null means it is the current one.</summary>
public sealed record Subscription(
    Guid CustomerId,
    string PlanCode,
    string Status,
    int MaxDevices,
    IReadOnlyList<string> AllowedRegions,
    DateTimeOffset StartedAt,
    DateTimeOffset? EndedAt)
{
    public Entitlement ToEntitlement() => new(PlanCode, Status, MaxDevices, AllowedRegions);
}

public interface IPlanStore
{
    Task<Plan> UpsertPlanAsync(Plan plan, CancellationToken cancellationToken);

    Task<IReadOnlyList<Plan>> ListPlansAsync(CancellationToken cancellationToken);

    /// <summary>Closes the open period (if any) and opens a new one, in one transaction. Null when the plan does not exist.</summary>
    Task<Subscription?> SetSubscriptionAsync(Guid customerId, string planCode, string status, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>The latest period (open, or the most recently ended), or null when the customer never had one.</summary>
    Task<Subscription?> GetSubscriptionAsync(Guid customerId, CancellationToken cancellationToken);
}
