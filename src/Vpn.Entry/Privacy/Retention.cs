using Vpn.Entry.Audit;

namespace Vpn.Entry.Privacy;

/// <summary>Rows deleted by one cleanup pass.</summary>
public sealed record PurgeCounts(long Sessions, long AuditEvents, long IdempotencyRecords)
{
    public long Total => Sessions + AuditEvents + IdempotencyRecords;
}

/// <summary>Deletes what the retention windows no longer allow to keep.</summary>
public interface IRetentionStore
{
    /// <summary>
    /// Deletes terminated/failed sessions that ended before <paramref name="sessionsEndedBefore"/>, audit events before
    /// <paramref name="auditBefore"/> and Idempotency-Key records (they hold a session's answer, key included) expired
    /// before <paramref name="now"/>. Live sessions are never touched. One runner at a time across replicas: null when
    /// another replica's pass holds the store's cleanup lock (nothing was deleted by this call).
    /// </summary>
    Task<PurgeCounts?> PurgeAsync(DateTimeOffset sessionsEndedBefore, DateTimeOffset auditBefore, DateTimeOffset now, CancellationToken cancellationToken);
}

/// <summary>What the last cleanup passes did, for the privacy policy endpoint and readiness.</summary>
public sealed class RetentionStatus
{
    private readonly Lock _gate = new();
    private DateTimeOffset? _lastSuccessAt;
    private PurgeCounts? _lastPurged;
    private DateTimeOffset? _lastFailureAt;
    private string? _lastFailure;

    public (DateTimeOffset? LastSuccessAt, PurgeCounts? LastPurged, DateTimeOffset? LastFailureAt, string? LastFailure) Snapshot()
    {
        lock (_gate)
        {
            return (_lastSuccessAt, _lastPurged, _lastFailureAt, _lastFailure);
        }
    }

    internal void Succeeded(DateTimeOffset at, PurgeCounts purged)
    {
        lock (_gate)
        {
            _lastSuccessAt = at;
            _lastPurged = purged;
            _lastFailure = null;
            _lastFailureAt = null;
        }
    }

    /// <summary>Another replica's pass was running: cleanup is alive, the last counts stay those this replica saw.</summary>
    internal void RanElsewhere(DateTimeOffset at)
    {
        lock (_gate)
        {
            _lastSuccessAt = at;
            _lastFailure = null;
            _lastFailureAt = null;
        }
    }

    internal void Failed(DateTimeOffset at, string reason)
    {
        lock (_gate)
        {
            _lastFailureAt = at;
            _lastFailure = reason;
        }
    }
}

/// <summary>Runs the retention cleanup shortly after start and then every APP_PRIVACY_CLEANUP_SECS.</summary>
public sealed partial class RetentionCleanupService(IRetentionStore store, PrivacyOptions privacy, RetentionStatus status, IAuditLog audit,
    EntryMetrics metrics, TimeProvider time, ILogger<RetentionCleanupService> logger) : BackgroundService
{
    private static readonly TimeSpan RetryAfterFailure = TimeSpan.FromMinutes(1);

    /// <summary>One pass; also what tests call. Null when another replica's pass was running (this one did nothing).</summary>
    public async Task<PurgeCounts?> RunOnceAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        if (await store.PurgeAsync(now - privacy.SessionRetention, now - privacy.AuditRetention, now, cancellationToken) is not { } purged)
        {
            status.RanElsewhere(now);
            LogRanElsewhere(logger);
            return null;
        }
        status.Succeeded(now, purged);
        metrics.RecordRetentionPurge(purged);
        if (purged.Total > 0)
        {
            LogPurged(logger, purged.Sessions, purged.AuditEvents, purged.IdempotencyRecords);
            await audit.WriteAsync(new AuditEvent(now, "system", "privacy.retention_purge", null, new Dictionary<string, string?>
            {
                ["sessions"] = purged.Sessions.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["audit_events"] = purged.AuditEvents.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["idempotency_records"] = purged.IdempotencyRecords.ToString(System.Globalization.CultureInfo.InvariantCulture),
            }), cancellationToken);
        }
        return purged;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // A moment after start: migrations and the first requests go first.
        var delay = TimeSpan.FromSeconds(5);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(delay, time, stoppingToken);
                await RunOnceAsync(stoppingToken);
                delay = privacy.CleanupInterval;
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                status.Failed(time.GetUtcNow(), e.GetType().Name);
                LogFailed(logger, e.GetType().Name);
                delay = privacy.CleanupInterval < RetryAfterFailure ? privacy.CleanupInterval : RetryAfterFailure;
            }
        }
    }

    [LoggerMessage(EventId = 500, Level = LogLevel.Information, Message = "Retention cleanup deleted {Sessions} ended session(s), {AuditEvents} audit event(s), {IdempotencyRecords} idempotency record(s)")]
    private static partial void LogPurged(ILogger logger, long sessions, long auditEvents, long idempotencyRecords);

    [LoggerMessage(EventId = 502, Level = LogLevel.Debug, Message = "Retention cleanup skipped: another replica's pass holds the cleanup lock")]
    private static partial void LogRanElsewhere(ILogger logger);

    [LoggerMessage(EventId = 501, Level = LogLevel.Warning, Message = "Retention cleanup failed ({Reason}); retrying")]
    private static partial void LogFailed(ILogger logger, string reason);
}
