using Vpn.Domain.Subscriptions;

namespace Vpn.Entry.Subscriptions;

/// <summary>How a denial of <see cref="Entitlements.Check"/> is answered, the same for devices, session starts and reconnects.</summary>
public static class EntitlementProblems
{
    public static ApiProblem For(EntitlementDenial denial) => denial == EntitlementDenial.RegionNotAllowed
        ? new(StatusCodes.Status403Forbidden, ErrorCodes.RegionNotAllowed, "The plan does not include this region.")
        : new(StatusCodes.Status403Forbidden, ErrorCodes.SubscriptionInactive, "The subscription is not active.");
}
