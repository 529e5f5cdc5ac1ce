using System.Net;
using Vpn.Core.Configuration;
using Vpn.Core.Control;
using Vpn.Core.Dataplane;
using Vpn.Core.Dns;
using Vpn.Core.EntryApi;

namespace Vpn.Core.Health;

/// <summary>
/// Posts healthy + active peer count to entry's /v1/internal/nodes/health on an interval. Healthy means the device
/// answers, the leases reflect the database (before the first sync Connect is refused, so selection must skip us) and,
/// when it is checked, the resolver answers on the gateway addresses.
/// </summary>
public sealed partial class HeartbeatService(CoreOptions options, IDataplane dataplane, PeerRegistry registry, EntryClient entry,
    ResolverHealth resolver, ILogger<HeartbeatService> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.HeartbeatInterval);
        try
        {
            do
            {
                await BeatAsync(stoppingToken);
            }
            while (await timer.WaitForNextTickAsync(stoppingToken));
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private async Task BeatAsync(CancellationToken cancellationToken)
    {
        // A checked resolver that does not answer means "connected but no internet" for every client: selection must skip us.
        var healthy = registry.IsSynced && resolver.Healthy;
        var peers = 0;
        try
        {
            peers = await dataplane.CountPeersAsync(cancellationToken);
        }
        catch (IOException)
        {
            healthy = false;
        }
        try
        {
            var status = await entry.PostHeartbeatAsync(healthy, peers, cancellationToken);
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
