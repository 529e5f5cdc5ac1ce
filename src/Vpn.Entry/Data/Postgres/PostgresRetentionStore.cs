using Npgsql;
using Vpn.Entry.Privacy;

namespace Vpn.Entry.Data.Postgres;

/// <summary>
/// Deletes in bounded batches (each its own short statement on an index: sessions_terminated_at, audit_events_occurred,
/// idempotency_keys_expires), so a first pass over years of history neither holds long locks nor bloats one transaction.
/// One runner at a time across replicas: a pass holds a session advisory lock on its own connection (released with the
/// connection if the replica dies mid-pass); a replica that finds it held skips its pass instead of deleting the same
/// rows under the other's feet.
/// </summary>
public sealed class PostgresRetentionStore(NpgsqlDataSource dataSource) : IRetentionStore
{
    private const int Batch = 5000;

    /// <summary>The cleanup lock's key ("vpnretn"); the migrator's lock is another.</summary>
    internal const long LockKey = 0x7670_6e72_6574_6e;

    private const string SessionsSql = """
        delete from sessions where id in (
            select id from sessions where state in ('terminated', 'failed') and terminated_at < @before limit @batch)
        """;

    // Rows that ended before terminated_at was recorded fall back to updated_at.
    private const string UntimedSessionsSql = """
        delete from sessions where id in (
            select id from sessions where state in ('terminated', 'failed') and terminated_at is null and updated_at < @before limit @batch)
        """;

    // A billing period's total is kept while it is current and for the period after it (a customer asking about last
    // month); 70 days after its last update, it is gone.
    private const string UsageSql = """
        delete from customer_usage where (customer_id, period_start) in (
            select customer_id, period_start from customer_usage where updated_at < @before limit @batch)
        """;

    private const string AuditSql = """
        delete from audit_events where id in (select id from audit_events where occurred_at < @before order by occurred_at limit @batch)
        """;

    private const string IdempotencySql = """
        delete from idempotency_keys where (customer_id, key) in (
            select customer_id, key from idempotency_keys where expires_at < @before limit @batch)
        """;

    public async Task<PurgeCounts?> PurgeAsync(DateTimeOffset sessionsEndedBefore, DateTimeOffset auditBefore, DateTimeOffset now,
        CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using (var tryLock = new NpgsqlCommand("select pg_try_advisory_lock(@key)", connection))
        {
            tryLock.Parameters.AddWithValue("key", LockKey);
            if (await tryLock.ExecuteScalarAsync(cancellationToken) is not true)
            {
                return null;
            }
        }
        try
        {
            var sessions = await DeleteAllAsync(connection, SessionsSql, sessionsEndedBefore, cancellationToken)
                + await DeleteAllAsync(connection, UntimedSessionsSql, sessionsEndedBefore, cancellationToken);
            var audit = await DeleteAllAsync(connection, AuditSql, auditBefore, cancellationToken);
            var idempotency = await DeleteAllAsync(connection, IdempotencySql, now, cancellationToken);
            await DeleteAllAsync(connection, UsageSql, now - Usage.UsageRetention.KeptFor, cancellationToken);
            return new PurgeCounts(sessions, audit, idempotency);
        }
        finally
        {
            // Not on the caller's token: a cancelled pass still gives the lock back (a broken connection does by itself).
            if (connection.State == System.Data.ConnectionState.Open)
            {
                await using var unlock = new NpgsqlCommand("select pg_advisory_unlock(@key)", connection);
                unlock.Parameters.AddWithValue("key", LockKey);
                await unlock.ExecuteScalarAsync(CancellationToken.None);
            }
        }
    }

    private static async Task<long> DeleteAllAsync(NpgsqlConnection connection, string sql, DateTimeOffset before, CancellationToken cancellationToken)
    {
        long total = 0;
        while (true)
        {
            await using var command = new NpgsqlCommand(sql, connection);
            command.Parameters.AddWithValue("before", before);
            command.Parameters.AddWithValue("batch", Batch);
            var deleted = await command.ExecuteNonQueryAsync(cancellationToken);
            total += deleted;
            if (deleted < Batch)
            {
                return total;
            }
        }
    }
}
