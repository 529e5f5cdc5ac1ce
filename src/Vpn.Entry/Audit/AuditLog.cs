namespace Vpn.Entry.Audit;

/// <summary>One audit event: who (actor), what (action), on what (subject), when. Details never carry secrets.</summary>
public sealed record AuditEvent(DateTimeOffset OccurredAt, string Actor, string Action, string? Subject, IReadOnlyDictionary<string, string?> Details);

public interface IAuditLog
{
    Task WriteAsync(AuditEvent auditEvent, CancellationToken cancellationToken);

    /// <summary>Most recent first, for support tooling and tests.</summary>
    Task<IReadOnlyList<AuditEvent>> RecentAsync(int limit, CancellationToken cancellationToken);

    /// <summary>Oldest first, streamed: events at or after <see cref="AuditQuery.Since"/>, before <see cref="AuditQuery.Until"/>, of one kind.</summary>
    IAsyncEnumerable<AuditEvent> ExportAsync(AuditQuery query, CancellationToken cancellationToken);
}

/// <summary>
/// A time window (either end open) and a kind: an action (<c>session.started</c>) or the family before its dot
/// (<c>session</c>), null for all.
/// </summary>
public sealed record AuditQuery(DateTimeOffset? Since, DateTimeOffset? Until, string? Kind)
{
    public bool Matches(AuditEvent auditEvent)
    {
        ArgumentNullException.ThrowIfNull(auditEvent);
        return (Since is not { } since || auditEvent.OccurredAt >= since) && (Until is not { } until || auditEvent.OccurredAt < until)
            && (Kind is null || auditEvent.Action == Kind || auditEvent.Action.StartsWith(Kind + ".", StringComparison.Ordinal));
    }
}

/// <summary>Who in an audit event is a person, for the log line and the export: the rule both apply.</summary>
public static class AuditPeople
{
    // Actors that are roles, not people.
    private static readonly HashSet<string> Roles = new(StringComparer.Ordinal) { "admin", "system", "core", "customer", "anonymous" };

    /// <summary>The actor as <paramref name="identifiers"/> shows a person (a role as it is).</summary>
    public static string Actor(AuditEvent auditEvent, Privacy.LogIdentifiers identifiers)
    {
        ArgumentNullException.ThrowIfNull(auditEvent);
        ArgumentNullException.ThrowIfNull(identifiers);
        return Roles.Contains(auditEvent.Actor) ? auditEvent.Actor : identifiers.Of(auditEvent.Actor);
    }

    /// <summary>Subjects of operator objects (a node, a plan) are no person's; customers, sessions and devices are.</summary>
    public static bool SubjectIsOperatorObject(AuditEvent auditEvent)
    {
        ArgumentNullException.ThrowIfNull(auditEvent);
        return auditEvent.Action.StartsWith("node.", StringComparison.Ordinal) || auditEvent.Action.StartsWith("plan.", StringComparison.Ordinal);
    }
}

/// <summary>
/// Writes each event to the store and one line to the log, the people in it (actor, subject) as
/// <see cref="Privacy.LogIdentifiers"/> allows (APP_LOG_REDACTION_MODE); details stay in the store only.
/// </summary>
public sealed partial class LoggingAuditLog(IAuditLog inner, Privacy.LogIdentifiers identifiers, ILogger<LoggingAuditLog> logger) : IAuditLog
{
    public async Task WriteAsync(AuditEvent auditEvent, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(auditEvent);
        await inner.WriteAsync(auditEvent, cancellationToken);
        if (logger.IsEnabled(LogLevel.Information))
        {
            var actor = AuditPeople.Actor(auditEvent, identifiers);
            var subject = AuditPeople.SubjectIsOperatorObject(auditEvent) ? auditEvent.Subject ?? "-" : identifiers.Of(auditEvent.Subject);
            LogAudit(logger, auditEvent.Action, actor, subject);
        }
    }

    public Task<IReadOnlyList<AuditEvent>> RecentAsync(int limit, CancellationToken cancellationToken) => inner.RecentAsync(limit, cancellationToken);

    public IAsyncEnumerable<AuditEvent> ExportAsync(AuditQuery query, CancellationToken cancellationToken) => inner.ExportAsync(query, cancellationToken);

    [LoggerMessage(EventId = 600, Level = LogLevel.Information, Message = "Audit {Action} by {Actor} on {Subject}")]
    private static partial void LogAudit(ILogger logger, string action, string actor, string subject);
}
