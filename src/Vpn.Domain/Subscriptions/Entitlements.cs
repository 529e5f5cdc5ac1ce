namespace Vpn.Domain.Subscriptions;

public static class SubscriptionStatus
{
    public const string Trialing = "trialing";
    public const string Active = "active";
    public const string PastDue = "past_due";
    public const string Canceled = "canceled";
    public const string Expired = "expired";

    public static readonly IReadOnlyList<string> All = [Trialing, Active, PastDue, Canceled, Expired];

    public static bool IsKnown(string? status) => status is not null && All.Contains(status, StringComparer.Ordinal);

    /// <summary>Statuses that entitle a customer to devices and sessions.</summary>
    public static bool IsEntitled(string status) => status is Active or Trialing;
}

/// <summary>A customer's current subscription joined with its plan's limits.</summary>
public sealed record Entitlement(string PlanCode, string Status, int MaxDevices, IReadOnlyList<string> AllowedRegions)
{
    public bool IsEntitled => SubscriptionStatus.IsEntitled(Status);

    public bool AllowsRegion(string region) => AllowedRegions.Contains(region, StringComparer.OrdinalIgnoreCase);
}

/// <summary>Why the entitlement check said no.</summary>
public enum EntitlementDenial
{
    /// <summary>The customer has never had a subscription.</summary>
    NoSubscription,

    /// <summary>The subscription's status (past_due, canceled, expired, or unknown) entitles to nothing.</summary>
    SubscriptionInactive,

    /// <summary>The subscription entitles, but its plan does not include the region asked for.</summary>
    RegionNotAllowed,
}

/// <summary>
/// The answer of <see cref="Entitlements.Check"/>: allowed, or a denial with its reason code — "no_subscription",
/// "subscription_{status}" (e.g. "subscription_canceled") or "region_not_allowed", the reason recorded when a live session is
/// ended for it.
/// </summary>
public sealed record EntitlementDecision(EntitlementDenial? Denial, string? ReasonCode)
{
    public static readonly EntitlementDecision Allow = new(null, null);

    public bool Allowed => Denial is null;
}

public static class Entitlements
{
    /// <summary>
    /// The one entitlement rule: a device needs an entitling subscription; a session (<paramref name="region"/> given)
    /// needs that and a plan that includes its region. <paramref name="entitlement"/> null means no subscription at all.
    /// </summary>
    public static EntitlementDecision Check(Entitlement? entitlement, string? region = null)
    {
        if (entitlement is null)
        {
            return new EntitlementDecision(EntitlementDenial.NoSubscription, "no_subscription");
        }
        if (!entitlement.IsEntitled)
        {
            return new EntitlementDecision(EntitlementDenial.SubscriptionInactive, "subscription_" + entitlement.Status);
        }
        if (region is not null && !entitlement.AllowsRegion(region))
        {
            return new EntitlementDecision(EntitlementDenial.RegionNotAllowed, "region_not_allowed");
        }
        return EntitlementDecision.Allow;
    }
}
