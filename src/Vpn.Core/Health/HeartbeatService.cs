using System.Net.Http.Json;
using System.Text.Json.Serialization;
using Vpn.Core.Configuration;
using Vpn.Core.Dataplane;

namespace Vpn.Core.Health;

/// <summary>Posts healthy + active peer count to entry's /v1/internal/nodes/health on an interval, when configured.</summary>
public sealed partial class HeartbeatService(CoreOptions options, IDataplane dataplane, IHttpClientFactory httpClients, ILogger<HeartbeatService> logger)
    : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (options.EntryUrl is null || options.NodeId is null)
        {
            return;
        }
        using var timer = new PeriodicTimer(options.HeartbeatInterval);
        do
        {
            await BeatAsync(stoppingToken);
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    private async Task BeatAsync(CancellationToken cancellationToken)
    {
        var healthy = true;
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
            using var client = httpClients.CreateClient("entry");
            using var request = new HttpRequestMessage(HttpMethod.Post, new Uri(options.EntryUrl!, "/v1/internal/nodes/health"))
            {
                Content = JsonContent.Create(new Heartbeat(options.NodeId!.Value, healthy, peers)),
            };
            request.Headers.Add("x-admin-token", options.AdminToken);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(5));
            using var response = await client.SendAsync(request, timeout.Token);
            if (!response.IsSuccessStatusCode)
            {
                LogRejected(logger, (int)response.StatusCode);
            }
        }
        catch (Exception e) when (e is HttpRequestException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
        {
            LogUnreachable(logger, e.GetType().Name);
        }
    }

    private sealed record Heartbeat(
        [property: JsonPropertyName("node_id")] Guid NodeId,
        [property: JsonPropertyName("healthy")] bool Healthy,
        [property: JsonPropertyName("active_peer_count")] int ActivePeerCount);

    [LoggerMessage(EventId = 500, Level = LogLevel.Warning, Message = "Entry rejected the heartbeat with {Status}")]
    private static partial void LogRejected(ILogger logger, int status);

    [LoggerMessage(EventId = 501, Level = LogLevel.Warning, Message = "Entry unreachable for heartbeat: {Reason}")]
    private static partial void LogUnreachable(ILogger logger, string reason);
}
