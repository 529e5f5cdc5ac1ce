using System.Diagnostics.Metrics;
using Vpn.Core.Dataplane;
using Vpn.Core.Nat;
using Vpn.Core.Reconciliation;
using Vpn.ServiceDefaults;

namespace Vpn.Core.Health;

/// <summary>
/// The filter's named drop counters as observable counters <c>vpn.core.filter.dropped_packets</c> and
/// <c>vpn.core.filter.dropped_bytes</c>, tagged <c>reason</c> (the counter's name, e.g. tunnel_to_private). The table
/// is read every <see cref="PollInterval"/> and the last reading served to scrapes: never per packet, never per scrape,
/// and nothing but totals per reason (no addresses). A reading that fails drops the series until one succeeds; they
/// restart from zero when the table is applied again (a counter reset to Prometheus).
/// </summary>
public sealed partial class FilterDropMetrics : BackgroundService
{
    public static readonly TimeSpan PollInterval = TimeSpan.FromSeconds(10);

    private readonly IDataplane _dataplane;
    private readonly TimeProvider _time;
    private readonly ILogger<FilterDropMetrics> _logger;
    private volatile IReadOnlyList<FirewallCounter> _last = [];
    private bool _failing;

    public FilterDropMetrics(IDataplane dataplane, IMeterFactory meters, TimeProvider time, ILogger<FilterDropMetrics> logger)
    {
        ArgumentNullException.ThrowIfNull(dataplane);
        ArgumentNullException.ThrowIfNull(meters);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(logger);
        _dataplane = dataplane;
        _time = time;
        _logger = logger;
        var meter = meters.Create(ReconcileMetrics.MeterName);
        meter.CreateObservableCounter("vpn.core.filter.dropped_packets", () => Measure(c => c.Packets), "{packet}",
            "Packets the node's filter dropped or refused, by reason, since its table was applied.");
        meter.CreateObservableCounter("vpn.core.filter.dropped_bytes", () => Measure(c => c.Bytes), "By",
            "Bytes of those packets, by reason.");
    }

    /// <summary>The last reading (empty before the first, after a failed one, or without a filter).</summary>
    public IReadOnlyList<FirewallCounter> Last => _last;

    protected override Task ExecuteAsync(CancellationToken stoppingToken) => PeriodicWork.RunAsync(PollInterval, _time, PollAsync, stoppingToken);

    internal async Task PollAsync(CancellationToken cancellationToken)
    {
        try
        {
            _last = await _dataplane.ReadFilterCountersAsync(cancellationToken);
            _failing = false;
        }
        catch (Exception e) when (e is NatException or IOException)
        {
            _last = [];
            if (!_failing)
            {
                LogReadFailed(_logger, e.GetType().Name);
                _failing = true;
            }
        }
    }

    private IEnumerable<Measurement<long>> Measure(Func<FirewallCounter, ulong> value) =>
        _last.Select(c => new Measurement<long>((long)Math.Min(value(c), long.MaxValue), new KeyValuePair<string, object?>("reason", c.Name)));

    [LoggerMessage(EventId = 800, Level = LogLevel.Warning, Message = "Reading the filter's drop counters failed: {Reason}")]
    private static partial void LogReadFailed(ILogger logger, string reason);
}
