using Npgsql;
using Vpn.Entry.Audit;
using Vpn.Entry.Auth;
using Vpn.Entry.Configuration;
using Vpn.Entry.Data;
using Vpn.Entry.Sessions;

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

public sealed class PostgresCustomerErasureStore(NpgsqlDataSource dataSource) : ICustomerErasureStore
{
    // The customer row lock first: registrations and idempotency records of this customer (which lock or reference
    // that row) queue behind the erasure, and once it commits their foreign keys fail, nothing is half-written.
    private const string LockSql = "select id from customers where id = @customer for update";

    private const string LiveSessionsSql = """
        select id, node_id from sessions where customer_id = @customer and state in ('provisioning', 'active') for update
        """;

    // Audit events are history, but these name the customer (directly or through its sessions and devices): they go.
    // A scan of audit_events, bounded by APP_AUDIT_RETENTION_DAYS; erasures are rare.
    private const string AuditSql = """
        with ids as (
            select @customer::text as id
            union all select id::text from sessions where customer_id = @customer
            union all select id::text from devices where customer_id = @customer)
        delete from audit_events a
        where a.subject in (select id from ids) or a.actor in (select id from ids)
           or exists (select 1 from jsonb_each_text(a.details) d where d.value in (select id from ids))
        """;

    // Cascades to oauth_identities, customer_subscriptions, devices, sessions and idempotency_keys.
    private const string DeleteSql = "delete from customers where id = @customer";

    public async Task<ErasureResult> EraseAsync(Guid customerId, CustomerRevocation revocation, bool revokeIfUnknown, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(revocation);
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        bool found;
        await using (var lockRow = new NpgsqlCommand(LockSql, connection, transaction))
        {
            lockRow.Parameters.AddWithValue("customer", customerId);
            found = await lockRow.ExecuteScalarAsync(cancellationToken) is Guid;
        }
        var live = new List<ErasedSession>();
        if (found)
        {
            await using (var select = new NpgsqlCommand(LiveSessionsSql, connection, transaction))
            {
                select.Parameters.AddWithValue("customer", customerId);
                await using var reader = await select.ExecuteReaderAsync(cancellationToken);
                while (await reader.ReadAsync(cancellationToken))
                {
                    live.Add(new ErasedSession(reader.GetGuid(0), reader.GetGuid(1)));
                }
            }
            await using (var audit = new NpgsqlCommand(AuditSql, connection, transaction))
            {
                audit.Parameters.AddWithValue("customer", customerId);
                await audit.ExecuteNonQueryAsync(cancellationToken);
            }
            await using (var delete = new NpgsqlCommand(DeleteSql, connection, transaction))
            {
                delete.Parameters.AddWithValue("customer", customerId);
                await delete.ExecuteNonQueryAsync(cancellationToken);
            }
        }
        if (found || revokeIfUnknown)
        {
            // In the same transaction: its NOTIFY reaches the other replicas exactly when the erasure commits.
            await using var revoke = new NpgsqlCommand(PostgresTokenRevocations.RevokeCustomerSql, connection, transaction);
            PostgresTokenRevocations.AddParameters(revoke.Parameters, revocation);
            await revoke.ExecuteNonQueryAsync(cancellationToken);
        }
        await transaction.CommitAsync(cancellationToken);
        return new ErasureResult(found, live);
    }
}

/// <summary>The same erasure over the in-memory stores (one process: the revocation is the caller's <see cref="ITokenRevocations.Remember"/>).</summary>
public sealed class InMemoryCustomerErasureStore(InMemoryStore store, InMemoryIdentityStore identities, InMemoryIdempotencyStore idempotency,
    InMemoryAuditLog audit) : ICustomerErasureStore
{
    public Task<ErasureResult> EraseAsync(Guid customerId, CustomerRevocation revocation, bool revokeIfUnknown, CancellationToken cancellationToken)
    {
        var (found, live, deletedIds) = store.EraseCustomer(customerId);
        found |= identities.EraseCustomer(customerId);
        found |= idempotency.EraseCustomer(customerId);
        var named = new HashSet<string>(deletedIds.Select(id => id.ToString()), StringComparer.Ordinal) { customerId.ToString() };
        found |= audit.EraseNaming(named) > 0;
        return Task.FromResult(new ErasureResult(found, [.. live.Select(s => new ErasedSession(s.Id, s.NodeId))]));
    }
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
