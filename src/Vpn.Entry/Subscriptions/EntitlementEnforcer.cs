using Vpn.Domain.Subscriptions;
using Vpn.Entry.Audit;

namespace Vpn.Entry.Subscriptions;

/// <summary>
/// Entitlements hold at every moment, not only at session start: when a subscription stops entitling its customer, or a
/// plan drops a region, the affected sessions are terminated and their peers removed, each with an audit event.
/// </summary>
public sealed partial class EntitlementEnforcer(ISessionStore sessions, SessionService sessionService, IAuditLog audit, TimeProvider time,
    ILogger<EntitlementEnforcer> logger)
{
    public async Task AfterSubscriptionChangeAsync(Subscription subscription, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(subscription);
        var active = await sessions.GetActiveAsync(subscription.CustomerId, cancellationToken);
        if (active is null || Entitlements.Check(subscription.ToEntitlement(), active.Region) is not { ReasonCode: { } reason })
        {
            return;
        }
        var terminated = await sessions.TerminateActiveAsync(subscription.CustomerId, reason, time.GetUtcNow(), cancellationToken);
        if (terminated is not null)
        {
            await EndAsync(terminated, reason, cancellationToken);
        }
    }

    public async Task AfterPlanChangeAsync(Plan plan, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(plan);
        var terminated = await sessions.TerminateOutsidePlanRegionsAsync(plan.Code, plan.AllowedRegions, time.GetUtcNow(), cancellationToken);
        foreach (var session in terminated)
        {
            await EndAsync(session, "region_not_allowed", cancellationToken);
        }
    }

    private async Task EndAsync(SessionRecord session, string reason, CancellationToken cancellationToken)
    {
        await sessionService.RemovePeerAsync(session.NodeId, session.Id);
        await audit.WriteAsync(new AuditEvent(time.GetUtcNow(), "system", "session.terminated", session.Id.ToString(),
            new Dictionary<string, string?> { ["reason"] = reason, ["customer_id"] = session.CustomerId.ToString(), ["node_id"] = session.NodeId.ToString() }),
            cancellationToken);
        LogTerminated(logger, reason);
    }

    [LoggerMessage(EventId = 220, Level = LogLevel.Information, Message = "Session terminated: entitlement changed ({Reason})")]
    private static partial void LogTerminated(ILogger logger, string reason);
}
