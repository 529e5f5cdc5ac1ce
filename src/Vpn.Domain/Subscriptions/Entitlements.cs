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
