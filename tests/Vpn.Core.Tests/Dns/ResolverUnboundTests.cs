using System.Diagnostics.Metrics;
using System.Net;
using Microsoft.Extensions.Logging;
using Vpn.Contracts.Core.V1;
using Vpn.Core.Configuration;
using Vpn.Core.Dns;
using Vpn.Core.Tests.Reconciliation;
using Vpn.Domain.Addressing;
using Vpn.TestSupport;

namespace Vpn.Core.Tests.Dns;

/// <summary>
/// The probe and the monitor against real unbound running the rendered configuration, on gateway addresses of a dummy
/// interface inside a test namespace; a second namespace, joined by a veth pair, asks from outside the client pools.
/// </summary>
public class ResolverUnboundTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Probe_UnboundServingTheGateways_Healthy()
    {
        await using var lab = await UnboundLab.StartAsync();

        var result = await lab.ProbeFrom(lab.Node).CheckAsync(lab.Gateways, Token);

        Assert.True(result.Healthy, result.Detail + "\n" + lab.UnboundOutput);
        Assert.Equal(["10.77.0.1", "fd77:7700::1"], result.Answers.Select(a => a.Address.ToString()));
    }

    [Fact]
    public async Task Probe_UnboundStopped_UnhealthyPerAddress()
    {
        await using var lab = await UnboundLab.StartAsync();
        lab.StopUnbound();

        var result = await lab.ProbeFrom(lab.Node).CheckAsync(lab.Gateways, Token);

        Assert.False(result.Healthy);
        Assert.Equal("10.77.0.1: refused: nothing listens on port 53; fd77:7700::1: refused: nothing listens on port 53", result.Detail);
    }

    [Fact]
    public async Task Probe_FromOutsideTheClientPools_RefusedByAccessControl()
    {
        await using var lab = await UnboundLab.StartAsync();

        var result = await lab.ProbeFrom(lab.Outside).CheckAsync(lab.Gateways, Token);

        Assert.False(result.Healthy);
        Assert.Equal("10.77.0.1: answered REFUSED; fd77:7700::1: answered REFUSED", result.Detail);
        // verbosity 0 and no query or local-action logging: neither the refused asker nor the clients show up.
        var output = lab.UnboundOutput;
        Assert.DoesNotContain("192.0.2.2", output, StringComparison.Ordinal);
        Assert.DoesNotContain("2001:db8:77::2", output, StringComparison.Ordinal);
        Assert.DoesNotContain("localhost", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Monitor_UnboundUpThenDown_StatusGaugeAndOneLogPerChange()
    {
        await using var lab = await UnboundLab.StartAsync();
        using var meters = new TestMeterFactory();
        var clock = new ManualClock();
        var options = lab.Options(check: true);
        var health = new ResolverHealth(options, meters, clock);
        var log = new ListLogger<ResolverMonitor>();
        var monitor = new ResolverMonitor(options, lab.ProbeFrom(lab.Node), health, clock, log);
        Assert.Equal((true, false, "no check yet", 0L), (health.ToStatus().Checked, health.ToStatus().Healthy, health.ToStatus().Detail, health.ToStatus().LastCheckUnixMs));

        await monitor.CheckOnceAsync(Token);
        await monitor.CheckOnceAsync(Token);

        var up = health.ToStatus();
        Assert.True(up.Healthy, up.Detail + "\n" + lab.UnboundOutput);
        Assert.True(health.Healthy);
        Assert.Equal(new ResolverStatus { Checked = true, Healthy = true, Detail = "", LastCheckUnixMs = clock.GetUtcNow().ToUnixTimeMilliseconds(), Addresses = { "10.77.0.1", "fd77:7700::1" } }, up);
        Assert.Equal(1, Gauge(meters));

        lab.StopUnbound();
        clock.Advance(TimeSpan.FromSeconds(10));
        await monitor.CheckOnceAsync(Token);
        await monitor.CheckOnceAsync(Token);

        var down = health.ToStatus();
        Assert.False(down.Healthy);
        Assert.False(health.Healthy);
        Assert.Contains("10.77.0.1: refused", down.Detail, StringComparison.Ordinal);
        Assert.Equal(clock.GetUtcNow().ToUnixTimeMilliseconds(), down.LastCheckUnixMs);
        Assert.Equal(0, Gauge(meters));
        Assert.Equal([(LogLevel.Information, 700), (LogLevel.Warning, 701)], log.Entries.Select(e => (e.Level, e.Id.Id)));
    }

    [Fact]
    public void Health_NotChecked_HealthyWithNothingReported()
    {
        using var meters = new TestMeterFactory();
        var health = new ResolverHealth(new CoreOptions(), meters, TimeProvider.System);

        Assert.True(health.Healthy);
        Assert.Equal(new ResolverStatus { Checked = false, Healthy = false, Detail = "", Addresses = { "10.64.0.1", "fd64:6400::1" } }, health.ToStatus());
        Assert.Null(Gauge(meters));
    }

    /// <summary>The gauge's value now; null when it reports nothing.</summary>
    private static int? Gauge(TestMeterFactory meters)
    {
        int? value = null;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Name == "vpn.core.resolver.healthy" && meters.Owns(instrument.Meter))
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<int>((_, measurement, _, _) => value = measurement);
        listener.Start();
        listener.RecordObservableInstruments();
        return value;
    }

    /// <summary>
    /// Namespace "node": dummy interface with the gateways 10.77.0.1/24 and fd77:7700::1/64 (pools 10.77.0.0/24,
    /// fd77:7700::/64), unbound on the rendered config. Namespace "outside": 192.0.2.2 / 2001:db8:77::2 on a veth to the
    /// node, routed to the gateways — an asker outside the client pools.
    /// </summary>
    private sealed class UnboundLab : IAsyncDisposable
    {
        private readonly string _directory;
        private BackgroundProcess? _unbound;

        private UnboundLab(NetworkNamespace node, NetworkNamespace outside, string directory)
        {
            Node = node;
            Outside = outside;
            _directory = directory;
        }

        public NetworkNamespace Node { get; }

        public NetworkNamespace Outside { get; }

        public IReadOnlyList<IPAddress> Gateways { get; } = [IPAddress.Parse("10.77.0.1"), IPAddress.Parse("fd77:7700::1")];

        public string UnboundOutput => _unbound?.Output ?? "";

        public CoreOptions Options(bool check)
        {
            var pool = Ipv4Network.Parse("10.77.0.0/24");
            Assert.True(Ipv6ClientNetwork.TryCreate("fd77:7700::/64", pool, out var pool6, out _));
            return new CoreOptions { ClientPool = pool, ClientPool6 = pool6, ResolverCheck = check, NetworkNamespace = Node.Name };
        }

        public ResolverProbe ProbeFrom(NetworkNamespace ns) => new(ns.Name, TimeSpan.FromSeconds(2));

        public static async Task<UnboundLab> StartAsync()
        {
            Prerequisites.Require(Prerequisites.IsRoot, "root (network namespaces)");
            Prerequisites.RequireExecutable("ip");
            Prerequisites.RequireExecutable("unbound");
            Prerequisites.Require(File.Exists("/usr/share/dns/root.key"), "/usr/share/dns/root.key (dns-root-data)");
            var node = await NetworkNamespace.CreateAsync("dns");
            NetworkNamespace outside;
            try
            {
                outside = await NetworkNamespace.CreateAsync("dno");
            }
            catch
            {
                await node.DisposeAsync();
                throw;
            }
            var lab = new UnboundLab(node, outside, Directory.CreateTempSubdirectory("unbound-lab-").FullName);
            try
            {
                var dummy = NetworkNamespace.UniqueName("gw");
                await node.ExecCheckedAsync("ip", "link", "add", dummy, "type", "dummy");
                await node.ExecCheckedAsync("ip", "addr", "add", "10.77.0.1/24", "dev", dummy);
                await node.ExecCheckedAsync("ip", "addr", "add", "fd77:7700::1/64", "dev", dummy, "nodad");
                await node.ExecCheckedAsync("ip", "link", "set", dummy, "up");
                await NetworkNamespace.ConnectAsync(node, "192.0.2.1/30", outside, "192.0.2.2/30");
                var nodeVeth = $"v{node.Name}"[..Math.Min(15, node.Name.Length + 1)];
                var outsideVeth = $"v{outside.Name}"[..Math.Min(15, outside.Name.Length + 1)];
                await node.ExecCheckedAsync("ip", "addr", "add", "2001:db8:77::1/64", "dev", nodeVeth, "nodad");
                await outside.ExecCheckedAsync("ip", "addr", "add", "2001:db8:77::2/64", "dev", outsideVeth, "nodad");
                await outside.ExecCheckedAsync("ip", "route", "add", "10.77.0.0/24", "via", "192.0.2.1");
                await outside.ExecCheckedAsync("ip", "route", "add", "fd77:7700::/64", "via", "2001:db8:77::1");
                await lab.StartUnboundAsync();
                return lab;
            }
            catch
            {
                await lab.DisposeAsync();
                throw;
            }
        }

        private async Task StartUnboundAsync()
        {
            var path = Path.Combine(_directory, "unbound.conf");
            await File.WriteAllTextAsync(path, ResolverConfig.Render(Options(check: true)), Token);
            _unbound = Node.Start(Prerequisites.FindExecutable("unbound")!, ["-d", "-p", "-c", path]);
            var probe = ProbeFrom(Node);
            for (var deadline = DateTime.UtcNow.AddSeconds(15); ;)
            {
                var result = await probe.CheckAsync(Gateways, Token);
                if (result.Healthy)
                {
                    return;
                }
                Assert.True(!_unbound.HasExited && DateTime.UtcNow < deadline, $"unbound did not answer: {result.Detail}\n{_unbound.Output}");
                await Task.Delay(100, Token);
            }
        }

        public void StopUnbound() => _unbound?.Kill();

        public async ValueTask DisposeAsync()
        {
            if (_unbound is not null)
            {
                await _unbound.DisposeAsync();
            }
            await Outside.DisposeAsync();
            await Node.DisposeAsync();
            Directory.Delete(_directory, recursive: true);
        }
    }
}
