using Vpn.Core.EntryApi;
using Vpn.ServiceDefaults;

namespace Vpn.Core.Health;

/// <summary>
/// Posts <see cref="NodeHealth"/> (healthy + active peer count) to entry's /v1/internal/nodes/health on an interval, and
/// a last one saying unhealthy when core stops (SIGTERM), so entry stops placing sessions here at once instead of when
/// the last heartbeat goes stale (APP_NODE_FRESHNESS_SECS, 60 by default).
/// </summary>
public sealed partial class HeartbeatService(CoreOptions options, NodeHealth health, EntryClient entry, TimeProvider time,
    ILogger<HeartbeatService> logger) : BackgroundService
{
    /// <summary>The bound of the final heartbeat: a stopping core never waits longer for an entry that does not answer.</summary>
    public static readonly TimeSpan FinalHeartbeatTimeout = TimeSpan.FromSeconds(2);

    private int _lastActivePeers;

    protected override Task ExecuteAsync(CancellationToken stoppingToken) => PeriodicWork.RunAsync(options.HeartbeatInterval, time, BeatAsync, stoppingToken);

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        // The loop first: once it has ended, no healthy beat can follow the final one.
        await base.StopAsync(cancellationToken);
        using var bound = new CancellationTokenSource(FinalHeartbeatTimeout, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, bound.Token);
        try
        {
            var status = await entry.PostHeartbeatAsync(false, Volatile.Read(ref _lastActivePeers), linked.Token);
            if (status != HttpStatusCode.NoContent && status != HttpStatusCode.OK)
            {
                LogRejected(logger, (int)status);
            }
            else
            {
                LogFinalSent(logger);
            }
        }
        catch (Exception e) when (e is HttpRequestException or OperationCanceledException)
        {
            LogFinalFailed(logger, e.GetType().Name);
        }
    }

    private async Task BeatAsync(CancellationToken cancellationToken)
    {
        var reading = await health.ReadAsync(cancellationToken);
        Volatile.Write(ref _lastActivePeers, reading.ActivePeers);
        try
        {
            var status = await entry.PostHeartbeatAsync(reading.Healthy, reading.ActivePeers, cancellationToken);
            if (status != HttpStatusCode.NoContent && status != HttpStatusCode.OK)
            {
                LogRejected(logger, (int)status);
            }
        }
        catch (Exception e) when (e is HttpRequestException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            LogUnreachable(logger, e.GetType().Name);
        }
    }

    [LoggerMessage(EventId = 500, Level = LogLevel.Warning, Message = "Entry rejected the heartbeat with {Status}")]
    private static partial void LogRejected(ILogger logger, int status);

    [LoggerMessage(EventId = 501, Level = LogLevel.Warning, Message = "Entry unreachable for heartbeat: {Reason}")]
    private static partial void LogUnreachable(ILogger logger, string reason);

    [LoggerMessage(EventId = 502, Level = LogLevel.Information, Message = "Stopping: told entry this node is unhealthy")]
    private static partial void LogFinalSent(ILogger logger);

    [LoggerMessage(EventId = 503, Level = LogLevel.Warning,
        Message = "Stopping: the final unhealthy heartbeat failed ({Reason}); entry skips this node once its heartbeat is stale")]
    private static partial void LogFinalFailed(ILogger logger, string reason);
}
