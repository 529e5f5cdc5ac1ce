using System.Text.Json;
using Npgsql;
using NpgsqlTypes;
using Vpn.Entry.Audit;

namespace Vpn.Entry.Data.Postgres;

public sealed class PostgresAuditLog(NpgsqlDataSource dataSource) : IAuditLog
{
    private const string InsertSql = "insert into audit_events (occurred_at, actor, action, subject, details) values (@at, @actor, @action, @subject, @details)";

    private const string RecentSql = "select occurred_at, actor, action, subject, details from audit_events order by occurred_at desc, id desc limit @limit";

    private const string ExportSql = """
        select occurred_at, actor, action, subject, details from audit_events
        where (@since::timestamptz is null or occurred_at >= @since) and (@until::timestamptz is null or occurred_at < @until)
          and (@kind::text is null or action = @kind or starts_with(action, @kind || '.'))
        order by occurred_at, id
        """;

    public async IAsyncEnumerable<AuditEvent> ExportAsync(AuditQuery query, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(query);
        await using var command = dataSource.CreateCommand(ExportSql);
        command.Parameters.Add(new NpgsqlParameter("since", NpgsqlDbType.TimestampTz) { Value = (object?)query.Since ?? DBNull.Value });
        command.Parameters.Add(new NpgsqlParameter("until", NpgsqlDbType.TimestampTz) { Value = (object?)query.Until ?? DBNull.Value });
        command.Parameters.Add(new NpgsqlParameter("kind", NpgsqlDbType.Text) { Value = (object?)query.Kind ?? DBNull.Value });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            yield return Read(reader);
        }
    }

    private static AuditEvent Read(NpgsqlDataReader reader) => new(reader.GetFieldValue<DateTimeOffset>(0), reader.GetString(1), reader.GetString(2),
        reader.IsDBNull(3) ? null : reader.GetString(3),
        JsonSerializer.Deserialize<Dictionary<string, string?>>(reader.GetString(4)) ?? []);

    public async Task WriteAsync(AuditEvent auditEvent, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(auditEvent);
        await using var command = dataSource.CreateCommand(InsertSql);
        command.Parameters.AddWithValue("at", auditEvent.OccurredAt);
        command.Parameters.AddWithValue("actor", auditEvent.Actor);
        command.Parameters.AddWithValue("action", auditEvent.Action);
        command.Parameters.AddWithValue("subject", (object?)auditEvent.Subject ?? DBNull.Value);
        command.Parameters.AddWithValue("details", NpgsqlDbType.Jsonb, JsonSerializer.Serialize(auditEvent.Details));
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    public async Task<IReadOnlyList<AuditEvent>> RecentAsync(int limit, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(RecentSql);
        command.Parameters.AddWithValue("limit", limit);
        return await command.ReadAllAsync(reader => new AuditEvent(reader.GetFieldValue<DateTimeOffset>(0), reader.GetString(1), reader.GetString(2),
            reader.IsDBNull(3) ? null : reader.GetString(3),
            JsonSerializer.Deserialize<Dictionary<string, string?>>(reader.GetString(4)) ?? []), cancellationToken);
    }
}
