using Vpn.Entry.Audit;
using Vpn.Entry.Sessions;

namespace Vpn.Entry.Usage;

/// <summary>
/// Records a node's counter report and ends the sessions of customers it took to their quota: terminated with reason
/// quota_exceeded (the peer removed from the node, an audit event). Their next start answers 403 quota_exceeded until
/// the period resets or an operator resets the use.
/// </summary>
public sealed partial class QuotaEnforcer(IUsageStore usage, ISessionStore sessions, SessionService sessionService, IAuditLog audit,
    TimeProvider time, ILogger<QuotaEnforcer> logger)
{
    public const string Reason = "quota_exceeded";

    public async Task<int> RecordAsync(Guid nodeId, IReadOnlyList<SessionCounters> counters, CancellationToken cancellationToken)
    {
        var reached = await usage.RecordAsync(nodeId, counters, time.GetUtcNow(), cancellationToken);
        var ended = 0;
        foreach (var customer in reached.Where(r => r.LiveSessionId is not null))
        {
            // Not the caller's token from here: the report is recorded, so the session must end even if core hangs up.
            var session = await sessions.TerminateActiveAsync(customer.CustomerId, Reason, time.GetUtcNow(), CancellationToken.None);
            if (session is null)
            {
                continue;
            }
            ended++;
            await sessionService.RemovePeerAsync(session.NodeId, session.Id);
            await audit.WriteAsync(new AuditEvent(time.GetUtcNow(), "system", "session.terminated", session.Id.ToString(),
                new Dictionary<string, string?> { ["reason"] = Reason, ["customer_id"] = session.CustomerId.ToString(), ["node_id"] = session.NodeId.ToString() }),
                CancellationToken.None);
            LogQuotaReached(logger, session.NodeId);
        }
        return ended;
    }

    [LoggerMessage(EventId = 250, Level = LogLevel.Information, Message = "Session on node {NodeId} terminated: its customer reached the data quota")]
    private static partial void LogQuotaReached(ILogger logger, Guid nodeId);
}
