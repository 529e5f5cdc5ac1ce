using Npgsql;
using Vpn.Entry.Privacy;

namespace Vpn.Entry.Data.Postgres;

/// <summary>
/// Deletes in bounded batches (each its own short statement on an index: sessions_terminated_at, audit_events_occurred,
/// idempotency_keys_expires), so a first pass over years of history neither holds long locks nor bloats one transaction.
/// Several replicas may run it at once: deletes of the same rows are harmless.
/// </summary>
public sealed class PostgresRetentionStore(NpgsqlDataSource dataSource) : IRetentionStore
{
    private const int Batch = 5000;

    private const string SessionsSql = """
        delete from sessions where id in (
            select id from sessions where state in ('terminated', 'failed') and terminated_at < @before limit @batch)
        """;

    // Rows that ended before terminated_at was recorded fall back to updated_at.
    private const string UntimedSessionsSql = """
        delete from sessions where id in (
            select id from sessions where state in ('terminated', 'failed') and terminated_at is null and updated_at < @before limit @batch)
        """;

    private const string AuditSql = """
        delete from audit_events where id in (select id from audit_events where occurred_at < @before order by occurred_at limit @batch)
        """;

    private const string IdempotencySql = """
        delete from idempotency_keys where (customer_id, key) in (
            select customer_id, key from idempotency_keys where expires_at < @before limit @batch)
        """;

    public async Task<PurgeCounts> PurgeAsync(DateTimeOffset sessionsEndedBefore, DateTimeOffset auditBefore, DateTimeOffset now,
        CancellationToken cancellationToken)
    {
        var sessions = await DeleteAllAsync(SessionsSql, sessionsEndedBefore, cancellationToken)
            + await DeleteAllAsync(UntimedSessionsSql, sessionsEndedBefore, cancellationToken);
        var audit = await DeleteAllAsync(AuditSql, auditBefore, cancellationToken);
        var idempotency = await DeleteAllAsync(IdempotencySql, now, cancellationToken);
        return new PurgeCounts(sessions, audit, idempotency);
    }

    private async Task<long> DeleteAllAsync(string sql, DateTimeOffset before, CancellationToken cancellationToken)
    {
        long total = 0;
        while (true)
        {
            await using var command = dataSource.CreateCommand(sql);
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
