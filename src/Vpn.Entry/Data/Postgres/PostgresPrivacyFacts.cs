using Npgsql;
using Vpn.Entry.Privacy;

namespace Vpn.Entry.Data.Postgres;

/// <summary>The conformance facts in one round trip: the counts on the retention indexes and the schema's columns from the catalog.</summary>
public sealed class PostgresPrivacyFacts(NpgsqlDataSource dataSource) : IPrivacyFactsStore
{
    private const string CountsSql = """
        select
            (select count(*) from sessions where state in ('terminated', 'failed') and coalesce(terminated_at, updated_at) < @sessions),
            (select count(*) from audit_events where occurred_at < @audit),
            (select count(*) from idempotency_keys where expires_at < @expired),
            (select count(*) from customer_usage where updated_at < @usage);
        select c.table_name, c.column_name, c.udt_name
        from information_schema.columns c
        join information_schema.tables t on t.table_schema = c.table_schema and t.table_name = c.table_name and t.table_type = 'BASE TABLE'
        where c.table_schema = current_schema()
        order by c.table_name, c.ordinal_position
        """;

    public async Task<PrivacyFacts> ReadAsync(DateTimeOffset sessionsEndedBefore, DateTimeOffset auditBefore, DateTimeOffset expiredBefore,
        CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(CountsSql);
        command.Parameters.AddWithValue("sessions", sessionsEndedBefore);
        command.Parameters.AddWithValue("audit", auditBefore);
        command.Parameters.AddWithValue("expired", expiredBefore);
        command.Parameters.AddWithValue("usage", expiredBefore - Usage.UsageRetention.KeptFor);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        var (sessions, audit, idempotency, usage) = (reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3));
        await reader.NextResultAsync(cancellationToken);
        var columns = new List<StoredColumn>();
        while (await reader.ReadAsync(cancellationToken))
        {
            columns.Add(new StoredColumn(reader.GetString(0), reader.GetString(1), reader.GetString(2)));
        }
        return new PrivacyFacts(sessions, audit, idempotency, columns, usage);
    }
}
