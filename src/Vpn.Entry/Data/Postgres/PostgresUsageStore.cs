using Npgsql;
using NpgsqlTypes;
using Vpn.Domain.Usage;
using Vpn.Entry.Usage;

namespace Vpn.Entry.Data.Postgres;

/// <summary>Usage on record_node_usage and the billing period functions of migration 0008: one statement per call.</summary>
public sealed class PostgresUsageStore(NpgsqlDataSource dataSource) : IUsageStore
{
    private const string RecordSql = "select * from record_node_usage(@node, @sessions, @generations, @rx, @tx, @now)";

    private const string GetSql = """
        with p as (select a.anchor, billing_period_start(a.anchor, @now) as period_start from (select billing_anchor_day(@customer) as anchor) a)
        select p.period_start, billing_period_end(p.anchor, p.period_start),
               coalesce((select u.used_bytes from customer_usage u where u.customer_id = @customer and u.period_start = p.period_start), 0),
               customer_monthly_data_bytes(@customer)
        from p
        """;

    private const string ResetSql = """
        delete from customer_usage where customer_id = @customer and period_start = billing_period_start(billing_anchor_day(@customer), @now)
        """;

    public async Task<IReadOnlyList<QuotaReached>> RecordAsync(Guid nodeId, IReadOnlyList<SessionCounters> counters, DateTimeOffset now,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(counters);
        if (counters.Count == 0)
        {
            return [];
        }
        await using var command = dataSource.CreateCommand(RecordSql);
        command.Parameters.AddWithValue("node", nodeId);
        command.Parameters.AddWithValue("sessions", counters.Select(c => c.SessionId).ToArray());
        command.Parameters.AddWithValue("generations", counters.Select(c => c.Generation).ToArray());
        command.Parameters.AddWithValue("rx", counters.Select(c => c.ReceivedBytes).ToArray());
        command.Parameters.AddWithValue("tx", counters.Select(c => c.SentBytes).ToArray());
        command.Parameters.AddWithValue("now", now);
        return await command.ReadAllAsync(reader => new QuotaReached(reader.GetGuid(0), reader.IsDBNull(1) ? null : reader.GetGuid(1),
            reader.GetInt64(2), reader.GetInt64(3), reader.GetFieldValue<DateTimeOffset>(5)), cancellationToken);
    }

    public Task<DataUsage> GetAsync(Guid customerId, DateTimeOffset now, CancellationToken cancellationToken) =>
        ReadAsync(GetSql, customerId, now, cancellationToken);

    public async Task<DataUsage> ResetAsync(Guid customerId, DateTimeOffset now, CancellationToken cancellationToken)
    {
        await using (var command = dataSource.CreateCommand(ResetSql))
        {
            command.Parameters.AddWithValue("customer", customerId);
            command.Parameters.AddWithValue("now", NpgsqlDbType.TimestampTz, now);
            await command.ExecuteNonQueryAsync(cancellationToken);
        }
        return await ReadAsync(GetSql, customerId, now, cancellationToken);
    }

    private async Task<DataUsage> ReadAsync(string sql, Guid customerId, DateTimeOffset now, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(sql);
        command.Parameters.AddWithValue("customer", customerId);
        command.Parameters.AddWithValue("now", NpgsqlDbType.TimestampTz, now);
        var usage = await command.ReadFirstOrDefaultAsync(reader => new DataUsage(reader.GetInt64(2), reader.IsDBNull(3) ? null : reader.GetInt64(3),
            new BillingPeriod(reader.GetFieldValue<DateTimeOffset>(0), reader.GetFieldValue<DateTimeOffset>(1))), cancellationToken);
        return usage ?? throw new InvalidOperationException("The usage query answered no row.");
    }
}
