using Vpn.Contracts.Core.V1;

namespace Vpn.Core.Tests.Dns;

/// <summary>
/// The probe and the monitor against real unbound running the rendered configuration, on gateway addresses of an
/// interface (a veth end) inside a test namespace; a second namespace, joined by a veth pair, asks from outside the client pools.
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

    /// <summary>
    /// The whole path as deployed: the core binary renders the config (resolver-config), unbound serves it, and the core
    /// service — running in the node's namespace with the resolver check on — reports it in GetNodeStatus and /metrics,
    /// unhealthy before unbound starts and healthy once it answers.
    /// </summary>
    [Fact]
    public async Task CoreProcess_ResolverDownThenUp_GetNodeStatusAndMetricsFollow()
    {
        var dll = ResolverConfigTests.CoreDll();
        Prerequisites.Require(File.Exists(dll), $"built core at {dll}");
        Prerequisites.RequireExecutable("curl");
        await using var lab = await UnboundLab.StartAsync(startUnbound: false);
        var settings = new Dictionary<string, string>
        {
            ["WG_DATAPLANE"] = "noop",
            ["WG_CLIENT_POOL"] = "10.77.0.0/24",
            ["WG_CLIENT_POOL_V6"] = "fd77:7700::/64",
            ["CORE_RESOLVER_CHECK"] = "true",
            ["CORE_RESOLVER_CHECK_SECS"] = "1",
        };
        var config = Path.Combine(lab.Directory, "run", "unbound.conf");
        var rendered = await ProcessRunner.RunAsync("dotnet", [dll, "resolver-config", "--out", config], null, TimeSpan.FromSeconds(60), settings);
        Assert.True(rendered.ExitCode == 0, rendered.StandardError);
        var socket = Path.Combine(lab.Directory, "core.sock");
        await using var core = lab.Node.Start("dotnet", [dll], new Dictionary<string, string?>(settings.Select(s => KeyValuePair.Create(s.Key, (string?)s.Value)))
        {
            ["CORE_GRPC_LISTEN"] = "unix:" + socket,
            ["CORE_METRICS_LISTEN"] = "127.0.0.1:9464",
        });
        using var channel = Grpc.Net.Client.GrpcChannel.ForAddress("http://localhost", new Grpc.Net.Client.GrpcChannelOptions
        {
            HttpHandler = new SocketsHttpHandler
            {
                ConnectCallback = async (_, ct) =>
                {
                    var s = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
                    await s.ConnectAsync(new System.Net.Sockets.UnixDomainSocketEndPoint(socket), ct);
                    return new System.Net.Sockets.NetworkStream(s, ownsSocket: true);
                },
            },
        });
        var client = new VpnControl.VpnControlClient(channel);

        var down = await WaitForStatusAsync(client, core, s => s.Resolver is { Checked: true, LastCheckUnixMs: > 0 });
        Assert.False(down.Resolver.Healthy);
        Assert.False(down.Healthy);
        Assert.Equal(["10.77.0.1", "fd77:7700::1"], down.Resolver.Addresses);
        Assert.Equal("10.77.0.1: refused: nothing listens on port 53; fd77:7700::1: refused: nothing listens on port 53", down.Resolver.Detail);
        Assert.Equal("0", await GaugeValueAsync(lab, "vpn_core_resolver_healthy"));

        await lab.StartUnboundAsync(config);

        var up = await WaitForStatusAsync(client, core, s => s.Resolver.Healthy);
        Assert.True(up.Healthy);
        Assert.Equal("", up.Resolver.Detail);
        // The exporter may serve a cached scrape for a moment: poll briefly.
        for (var deadline = DateTime.UtcNow.AddSeconds(10); await GaugeValueAsync(lab, "vpn_core_resolver_healthy") != "1";)
        {
            Assert.True(DateTime.UtcNow < deadline, await ScrapeAsync(lab));
            await Task.Delay(200, Token);
        }
    }

    private static async Task<NodeStatus> WaitForStatusAsync(VpnControl.VpnControlClient client, BackgroundProcess core, Func<NodeStatus, bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            Assert.False(core.HasExited, "core exited: " + core.Output);
            try
            {
                var status = await client.GetNodeStatusAsync(new GetNodeStatusRequest(), deadline: DateTime.UtcNow.AddSeconds(5), cancellationToken: Token);
                if (condition(status))
                {
                    return status;
                }
                Assert.True(DateTime.UtcNow < deadline, $"status never matched: {status}\n{core.Output}");
            }
            catch (Grpc.Core.RpcException) when (DateTime.UtcNow < deadline)
            {
                // Not listening yet.
            }
            await Task.Delay(200, Token);
        }
    }

    private static async Task<string> ScrapeAsync(UnboundLab lab) =>
        await lab.Node.ExecCheckedAsync("curl", "--silent", "--fail", "--max-time", "5", "http://127.0.0.1:9464/metrics");

    /// <summary>The sample's value in Prometheus text ("name{labels} value [timestamp]"); null when absent.</summary>
    private static async Task<string?> GaugeValueAsync(UnboundLab lab, string name)
    {
        var line = (await ScrapeAsync(lab)).Split('\n').FirstOrDefault(l => l.StartsWith(name + "{", StringComparison.Ordinal) || l.StartsWith(name + " ", StringComparison.Ordinal));
        return line?[(line.LastIndexOf('}') + 1)..].Trim().Split(' ')[0];
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
    /// Namespace "node": an interface with the gateways 10.77.0.1/24 and fd77:7700::1/64 (pools 10.77.0.0/24,
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

        public static async Task<UnboundLab> StartAsync(bool startUnbound = true)
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
            var lab = new UnboundLab(node, outside, System.IO.Directory.CreateTempSubdirectory("unbound-lab-").FullName);
            try
            {
                // The tunnel interface's stand-in (not every kernel has the dummy type): one end of a veth pair inside the node.
                var gateway = NetworkNamespace.UniqueName("gw");
                var peer = NetworkNamespace.UniqueName("gp");
                await node.ExecCheckedAsync("ip", "link", "add", gateway, "type", "veth", "peer", "name", peer);
                await node.ExecCheckedAsync("ip", "addr", "add", "10.77.0.1/24", "dev", gateway);
                await node.ExecCheckedAsync("ip", "addr", "add", "fd77:7700::1/64", "dev", gateway, "nodad");
                await node.ExecCheckedAsync("ip", "link", "set", peer, "up");
                await node.ExecCheckedAsync("ip", "link", "set", gateway, "up");
                var (nodeVeth, outsideVeth) = await NetworkNamespace.ConnectAsync(node, "192.0.2.1/30", outside, "192.0.2.2/30");
                await node.ExecCheckedAsync("ip", "addr", "add", "2001:db8:77::1/64", "dev", nodeVeth, "nodad");
                await outside.ExecCheckedAsync("ip", "addr", "add", "2001:db8:77::2/64", "dev", outsideVeth, "nodad");
                await outside.ExecCheckedAsync("ip", "route", "add", "10.77.0.0/24", "via", "192.0.2.1");
                await outside.ExecCheckedAsync("ip", "route", "add", "fd77:7700::/64", "via", "2001:db8:77::1");
                if (startUnbound)
                {
                    var path = Path.Combine(lab.Directory, "unbound.conf");
                    await File.WriteAllTextAsync(path, ResolverConfig.Render(lab.Options(check: true)), Token);
                    await lab.StartUnboundAsync(path);
                }
                return lab;
            }
            catch
            {
                await lab.DisposeAsync();
                throw;
            }
        }

        /// <summary>A working directory of the lab's own, deleted with it.</summary>
        public string Directory => _directory;

        /// <summary>Starts unbound on <paramref name="path"/> in the node and waits until it answers on both gateways.</summary>
        public async Task StartUnboundAsync(string path)
        {
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
            System.IO.Directory.Delete(_directory, recursive: true);
        }
    }
}
