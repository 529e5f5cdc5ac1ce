using Vpn.Entry.Audit;

namespace Vpn.Entry.Accounts;

/// <summary>A live session ended by an erasure; its peer is still on its node until the caller removes it.</summary>
public sealed record ErasedSession(Guid SessionId, Guid NodeId);

/// <summary>What one erasure did: whether the customer existed, and the sessions that were live.</summary>
public sealed record ErasureResult(bool Found, IReadOnlyList<ErasedSession> LiveSessions);

/// <summary>
/// Deletes one customer and everything that names it (identities, subscription periods, devices, sessions of every
/// state, Idempotency-Key records, audit events whose actor, subject or a detail is the customer or one of its sessions
/// or devices), and records <paramref name="revocation"/> — all in one transaction, so either nothing happened or all of it.
/// </summary>
public interface ICustomerErasureStore
{
    /// <param name="revokeIfUnknown">Record the revocation even when no customer row exists (a customer erasing itself).</param>
    Task<ErasureResult> EraseAsync(Guid customerId, CustomerRevocation revocation, bool revokeIfUnknown, CancellationToken cancellationToken);
}

/// <summary>
/// Erasure of a customer (GDPR Art. 17): everything stored about it is deleted in one transaction together with a
/// revocation of all its tokens that every replica follows (as a logout); then the peers of its live sessions are
/// removed from their nodes, and one audit event records that an erasure happened — naming no one.
/// </summary>
public sealed partial class AccountErasure(
    ICustomerErasureStore store,
    ITokenRevocations revocations,
    SessionService sessions,
    IAuditLog audit,
    EntryOptions options,
    EntryMetrics metrics,
    TimeProvider time,
    ILogger<AccountErasure> logger)
{
    /// <param name="initiatedBy"><c>customer</c> (DELETE /v1/me) or <c>admin</c>.</param>
    /// <param name="revokeIfUnknown">Revoke the customer's tokens even when nothing is stored about it.</param>
    /// <returns>False when nothing was stored about the customer.</returns>
    public async Task<bool> EraseAsync(Guid customerId, string initiatedBy, bool revokeIfUnknown, CancellationToken cancellationToken)
    {
        var revocation = CustomerRevocation.Create(customerId, time.GetUtcNow(), erased: true, options.AccessTokens);
        var result = await store.EraseAsync(customerId, revocation, revokeIfUnknown, cancellationToken);
        if (!result.Found && !revokeIfUnknown)
        {
            return false;
        }
        revocations.Remember(revocation);
        // Committed: finish regardless of the caller going away.
        foreach (var session in result.LiveSessions)
        {
            await sessions.RemovePeerAsync(session.NodeId, session.SessionId);
        }
        await audit.WriteAsync(new AuditEvent(time.GetUtcNow(), initiatedBy, "customer.erased", null, new Dictionary<string, string?>
        {
            ["sessions_ended"] = result.LiveSessions.Count.ToString(System.Globalization.CultureInfo.InvariantCulture),
        }), CancellationToken.None);
        metrics.CustomersErased.Add(1, new KeyValuePair<string, object?>("initiated_by", initiatedBy));
        LogErased(logger, initiatedBy, result.LiveSessions.Count);
        return result.Found;
    }

    [LoggerMessage(EventId = 700, Level = LogLevel.Information, Message = "Customer erased (initiated by {InitiatedBy}); {SessionsEnded} live session(s) ended")]
    private static partial void LogErased(ILogger logger, string initiatedBy, int sessionsEnded);
}
