using Npgsql;
using Vpn.Entry.Accounts;

namespace Vpn.Entry.Data.Postgres;

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
        IReadOnlyList<ErasedSession> live = [];
        if (found)
        {
            await using (var select = new NpgsqlCommand(LiveSessionsSql, connection, transaction))
            {
                select.Parameters.AddWithValue("customer", customerId);
                live = await select.ReadAllAsync(reader => new ErasedSession(reader.GetGuid(0), reader.GetGuid(1)), cancellationToken);
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
