using Vpn.Core.EntryApi;
using Vpn.ServiceDefaults;

namespace Vpn.Core.Health;

/// <summary>Posts <see cref="NodeHealth"/> (healthy + active peer count) to entry's /v1/internal/nodes/health on an interval.</summary>
public sealed partial class HeartbeatService(CoreOptions options, NodeHealth health, EntryClient entry, TimeProvider time,
    ILogger<HeartbeatService> logger) : BackgroundService
{
    protected override Task ExecuteAsync(CancellationToken stoppingToken) => PeriodicWork.RunAsync(options.HeartbeatInterval, time, BeatAsync, stoppingToken);

    private async Task BeatAsync(CancellationToken cancellationToken)
    {
        var reading = await health.ReadAsync(cancellationToken);
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
}
