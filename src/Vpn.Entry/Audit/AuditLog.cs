using System.Collections.Concurrent;
using System.Text.Json;
using Npgsql;
using NpgsqlTypes;

namespace Vpn.Entry.Audit;

/// <summary>One audit event: who (actor), what (action), on what (subject), when. Details never carry secrets.</summary>
public sealed record AuditEvent(DateTimeOffset OccurredAt, string Actor, string Action, string? Subject, IReadOnlyDictionary<string, string?> Details);

public interface IAuditLog
{
    Task WriteAsync(AuditEvent auditEvent, CancellationToken cancellationToken);

    /// <summary>Most recent first, for support tooling and tests.</summary>
    Task<IReadOnlyList<AuditEvent>> RecentAsync(int limit, CancellationToken cancellationToken);
}

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
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var events = new List<AuditEvent>();
        while (await reader.ReadAsync(cancellationToken))
        {
            events.Add(new AuditEvent(reader.GetFieldValue<DateTimeOffset>(0), reader.GetString(1), reader.GetString(2),
                reader.IsDBNull(3) ? null : reader.GetString(3),
                JsonSerializer.Deserialize<Dictionary<string, string?>>(reader.GetString(4)) ?? []));
        }
        return events;
    }
}

public sealed class InMemoryAuditLog : IAuditLog
{
    private readonly ConcurrentQueue<AuditEvent> _events = new();
    private readonly Lock _purge = new();

    /// <summary>Drops events before <paramref name="before"/> (the queue is in write order); returns how many.</summary>
    public int Purge(DateTimeOffset before)
    {
        lock (_purge)
        {
            var removed = 0;
            while (_events.TryPeek(out var oldest) && oldest.OccurredAt < before && _events.TryDequeue(out _))
            {
                removed++;
            }
            return removed;
        }
    }

    public Task WriteAsync(AuditEvent auditEvent, CancellationToken cancellationToken)
    {
        // Under the purge lock so an erasure's rebuild (below) never drops an event written meanwhile.
        lock (_purge)
        {
            _events.Enqueue(auditEvent);
        }
        return Task.CompletedTask;
    }

    /// <summary>Drops every event that names any of <paramref name="ids"/> as actor, subject or a detail's value (erasure); returns how many.</summary>
    public int EraseNaming(IReadOnlyCollection<string> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        lock (_purge)
        {
            var kept = new List<AuditEvent>();
            var removed = 0;
            while (_events.TryDequeue(out var e))
            {
                if (ids.Contains(e.Actor) || (e.Subject is { } subject && ids.Contains(subject)) || e.Details.Values.Any(v => v is not null && ids.Contains(v)))
                {
                    removed++;
                }
                else
                {
                    kept.Add(e);
                }
            }
            kept.ForEach(_events.Enqueue);
            return removed;
        }
    }

    public Task<IReadOnlyList<AuditEvent>> RecentAsync(int limit, CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyList<AuditEvent>>([.. _events.Reverse().Take(limit)]);
}

/// <summary>
/// Writes each event to the store and one line to the log, the people in it (actor, subject) as
/// <see cref="Privacy.LogIdentifiers"/> allows (APP_LOG_REDACTION_MODE); details stay in the store only.
/// </summary>
public sealed partial class LoggingAuditLog(IAuditLog inner, Privacy.LogIdentifiers identifiers, ILogger<LoggingAuditLog> logger) : IAuditLog
{
    // Actors that are roles, not people.
    private static readonly HashSet<string> Roles = new(StringComparer.Ordinal) { "admin", "system", "core", "customer", "anonymous" };

    public async Task WriteAsync(AuditEvent auditEvent, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(auditEvent);
        await inner.WriteAsync(auditEvent, cancellationToken);
        if (logger.IsEnabled(LogLevel.Information))
        {
            var actor = Roles.Contains(auditEvent.Actor) ? auditEvent.Actor : identifiers.Of(auditEvent.Actor);
            // Subjects of operator objects (a node, a plan) are no person's; customers, sessions and devices are.
            var subject = auditEvent.Action.StartsWith("node.", StringComparison.Ordinal) || auditEvent.Action.StartsWith("plan.", StringComparison.Ordinal)
                ? auditEvent.Subject ?? "-"
                : identifiers.Of(auditEvent.Subject);
            LogAudit(logger, auditEvent.Action, actor, subject);
        }
    }

    public Task<IReadOnlyList<AuditEvent>> RecentAsync(int limit, CancellationToken cancellationToken) => inner.RecentAsync(limit, cancellationToken);

    [LoggerMessage(EventId = 600, Level = LogLevel.Information, Message = "Audit {Action} by {Actor} on {Subject}")]
    private static partial void LogAudit(ILogger logger, string action, string actor, string subject);
}
