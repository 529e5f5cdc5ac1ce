using System.Text.Json;
using Npgsql;
using NpgsqlTypes;
using Vpn.Entry.Audit;

namespace Vpn.Entry.Data.Postgres;

public sealed class PostgresAuditLog(NpgsqlDataSource dataSource) : IAuditLog
{
    private const string InsertSql = "insert into audit_events (occurred_at, actor, action, subject, details) values (@at, @actor, @action, @subject, @details)";

    private const string RecentSql = "select occurred_at, actor, action, subject, details from audit_events order by occurred_at desc, id desc limit @limit";

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
