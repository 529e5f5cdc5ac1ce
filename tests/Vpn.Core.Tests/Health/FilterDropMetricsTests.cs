using Vpn.Core.Health;

namespace Vpn.Core.Tests.Health;

/// <summary>The filter's drop counters as observable counters: read by the poller, served from its cache, tagged by reason.</summary>
public class FilterDropMetricsTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Poll_CountersRead_ObservedByReasonFromTheCache()
    {
        using var meters = new TestMeterFactory();
        var dataplane = new CounterDataplane { Counters = [new("tunnel_to_private", 3, 180), new("tunnel_to_tunnel", 0, 0)] };
        var metrics = new FilterDropMetrics(dataplane, meters, new ManualClock(), new ListLogger<FilterDropMetrics>());
        Assert.Empty(Observe(meters));

        await metrics.PollAsync(Token);
        var first = Observe(meters);
        var second = Observe(meters);

        Assert.Equal(1, dataplane.Reads);
        Assert.Equal(
            ["vpn.core.filter.dropped_bytes reason=tunnel_to_private 180", "vpn.core.filter.dropped_bytes reason=tunnel_to_tunnel 0",
             "vpn.core.filter.dropped_packets reason=tunnel_to_private 3", "vpn.core.filter.dropped_packets reason=tunnel_to_tunnel 0"],
            first);
        Assert.Equal(first, second);
    }

    [Fact]
    public async Task Poll_ReadFails_SeriesDroppedAndLoggedOnceUntilItRecovers()
    {
        using var meters = new TestMeterFactory();
        var dataplane = new CounterDataplane { Counters = [new("tunnel_to_node", 1, 60)] };
        var log = new ListLogger<FilterDropMetrics>();
        var metrics = new FilterDropMetrics(dataplane, meters, new ManualClock(), log);
        await metrics.PollAsync(Token);

        dataplane.Failure = new NatException("table gone");
        await metrics.PollAsync(Token);
        await metrics.PollAsync(Token);

        Assert.Empty(Observe(meters));
        Assert.Equal([800], log.Entries.Select(e => e.Id.Id));

        dataplane.Failure = null;
        await metrics.PollAsync(Token);

        Assert.Equal(2, Observe(meters).Count);
    }

    private static List<string> Observe(TestMeterFactory meters)
    {
        var seen = new List<string>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Name.StartsWith("vpn.core.filter.", StringComparison.Ordinal) && meters.Owns(instrument.Meter))
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
            seen.Add($"{instrument.Name} {string.Join(',', tags.ToArray().Select(t => $"{t.Key}={t.Value}"))} {value}"));
        listener.Start();
        listener.RecordObservableInstruments();
        seen.Sort(StringComparer.Ordinal);
        return seen;
    }

    /// <summary>The noop dataplane with filter counters (or a failure) the test sets.</summary>
    private sealed class CounterDataplane : IDataplane
    {
        private readonly NoopDataplane _inner = new();
        private int _reads;

        public IReadOnlyList<FirewallCounter> Counters { get; set; } = [];

        public Exception? Failure { get; set; }

        public int Reads => Volatile.Read(ref _reads);

        public string Mode => "linux";

        public string NatDriver => "cli";

        public IReadOnlyList<string> NativeFeatures => [];

        public Task<IReadOnlyList<FirewallCounter>> ReadFilterCountersAsync(CancellationToken cancellationToken)
        {
            Interlocked.Increment(ref _reads);
            return Failure is { } failure ? Task.FromException<IReadOnlyList<FirewallCounter>>(failure) : Task.FromResult(Counters);
        }

        public Task InitializeAsync(CancellationToken cancellationToken) => _inner.InitializeAsync(cancellationToken);

        public Task AddPeerAsync(WireGuardKey publicKey, IPAddress clientAddress, IPAddress clientAddress6, CancellationToken cancellationToken) =>
            _inner.AddPeerAsync(publicKey, clientAddress, clientAddress6, cancellationToken);

        public Task RemovePeerAsync(WireGuardKey publicKey, CancellationToken cancellationToken) => _inner.RemovePeerAsync(publicKey, cancellationToken);

        public Task ApplyPeerChangesAsync(IReadOnlyList<PeerConfig> changes, CancellationToken cancellationToken) => _inner.ApplyPeerChangesAsync(changes, cancellationToken);

        public Task<DeviceSnapshot> ReadAsync(CancellationToken cancellationToken) => _inner.ReadAsync(cancellationToken);

        public Task ProbeAsync(CancellationToken cancellationToken) => _inner.ProbeAsync(cancellationToken);
    }
}
