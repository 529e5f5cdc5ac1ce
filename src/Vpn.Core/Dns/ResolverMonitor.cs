using Vpn.ServiceDefaults;

namespace Vpn.Core.Dns;

/// <summary>
/// Checks the resolver on the gateway addresses at start and every CORE_RESOLVER_CHECK_SECS, from the device's network
/// namespace, and records the verdict in <see cref="ResolverHealth"/>. Logs only when the verdict changes.
/// </summary>
public sealed partial class ResolverMonitor(CoreOptions options, ResolverProbe probe, ResolverHealth health, TimeProvider time,
    ILogger<ResolverMonitor> logger) : BackgroundService
{
    private readonly IReadOnlyList<IPAddress> _addresses = ResolverConfig.GatewayAddresses(options);
    private bool? _wasHealthy;

    protected override Task ExecuteAsync(CancellationToken stoppingToken) => PeriodicWork.RunAsync(options.ResolverCheckInterval, time, CheckOnceAsync, stoppingToken);

    internal async Task CheckOnceAsync(CancellationToken cancellationToken)
    {
        var result = await probe.CheckAsync(_addresses, cancellationToken);
        health.Record(result);
        if (_wasHealthy != result.Healthy)
        {
            if (result.Healthy)
            {
                LogHealthy(logger);
            }
            else
            {
                LogUnhealthy(logger, result.Detail);
            }
            _wasHealthy = result.Healthy;
        }
    }

    [LoggerMessage(EventId = 700, Level = LogLevel.Information, Message = "Resolver answers on every gateway address")]
    private static partial void LogHealthy(ILogger logger);

    [LoggerMessage(EventId = 701, Level = LogLevel.Warning, Message = "Resolver check failed: {Detail}")]
    private static partial void LogUnhealthy(ILogger logger, string detail);
}
