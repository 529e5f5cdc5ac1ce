using static Vpn.Core.Tests.Reconciliation.ReconcileRig;

namespace Vpn.Core.Tests.Reconciliation;

/// <summary>
/// The idle wipe against real wireguard-go: a node's device driven by core's dataplane, registry and reconciler, and two
/// clients (wireguard-go each, in namespaces of their own) that handshake with it over veth links. What the node holds
/// is read with <c>wg show</c>. Idleness is judged by a clock the test sets relative to the handshake times the device
/// reports, so the outcome does not depend on how fast the machine is.
/// </summary>
public class IdlePeerWiperWireGuardGoTests
{
    private const int ListenPort = 51820;
    private static readonly TimeSpan Window = TimeSpan.FromSeconds(2);
    private static readonly Ipv4Network Pool = Ipv4Network.Parse("10.78.0.0/24");
    private static readonly Ipv6ClientNetwork Pool6 = Pool6For(Pool);

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task RunPass_ClientIdleForTheWindow_EndpointGonePeerKeptTunnelWorksAgainRecentClientKeepsItsEndpoint()
    {
        await using var lab = await Lab.StartAsync();
        var (idle, recent) = (lab.Clients[0], lab.Clients[1]);
        lab.Rig.Desired.Set(Active(idle.PublicKey, idle.TunnelAddress), Active(recent.PublicKey, recent.TunnelAddress));
        Assert.Equal(2, (await lab.Rig.PassAsync()).Added);
        var allowedBefore = await lab.WgShowAsync("allowed-ips");

        Assert.True(await idle.PingGatewayAsync(attempts: 10), "the idle client could not reach the node at first");
        var idleHandshake = await lab.HandshakeOfAsync(idle);
        Assert.True(await recent.PingGatewayAsync(attempts: 10), "the recent client could not reach the node");
        var recentHandshake = await lab.HandshakeOfAsync(recent);
        Assert.True(recentHandshake > idleHandshake);
        var endpoints = await lab.WgShowAsync("endpoints");
        Assert.StartsWith($"{idle.UnderlayAddress}:", endpoints[idle.PublicKey.ToBase64()], StringComparison.Ordinal);
        Assert.StartsWith($"{recent.UnderlayAddress}:", endpoints[recent.PublicKey.ToBase64()], StringComparison.Ordinal);
        // The window has passed since the idle client's handshake, not since the recent one's.
        lab.WipeClock.Now = idleHandshake + Window;

        var outcome = await lab.Rig.PassAsync();

        Assert.True(outcome.Succeeded);
        Assert.Equal([idle.PublicKey], outcome.WipedKeys);
        var after = await lab.WgShowAsync("endpoints");
        Assert.Equal("(none)", after[idle.PublicKey.ToBase64()]);
        Assert.Equal(endpoints[recent.PublicKey.ToBase64()], after[recent.PublicKey.ToBase64()]);
        Assert.Equal(allowedBefore, await lab.WgShowAsync("allowed-ips"));
        Assert.Equal([$"{idle.TunnelAddress}/32", $"{Pool6.AddressFor(IPAddress.Parse(idle.TunnelAddress))}/128"],
            allowedBefore[idle.PublicKey.ToBase64()].Split(' ').Order(StringComparer.Ordinal));
        Assert.Equal("0", (await lab.WgShowAsync("latest-handshakes"))[idle.PublicKey.ToBase64()]);
        Assert.Equal(1, lab.Rig.Metrics.Snapshot().EndpointsWiped);
        Assert.True(await recent.PingGatewayAsync(attempts: 1), "the recent client's tunnel broke");

        // The client still holds session keys the node forgot: after 15 s without an answer wireguard-go handshakes
        // again (with the default window the client's keys have expired by then, and it handshakes at once).
        Assert.True(await idle.PingGatewayAsync(attempts: 40), "the idle client could not reach the node after the wipe");
        Assert.StartsWith($"{idle.UnderlayAddress}:", (await lab.WgShowAsync("endpoints"))[idle.PublicKey.ToBase64()], StringComparison.Ordinal);
        Assert.True(await lab.HandshakeOfAsync(idle) > idleHandshake);
        Assert.Equal(allowedBefore, await lab.WgShowAsync("allowed-ips"));
        Assert.Empty(lab.Rig.Log.Errors);
    }

    /// <summary>A wall clock the test sets; the registry keeps the rig's manual clock.</summary>
    private sealed class SetClock : TimeProvider
    {
        private long _ticks = DateTimeOffset.UnixEpoch.UtcTicks;

        public DateTimeOffset Now
        {
            get => new(Interlocked.Read(ref _ticks), TimeSpan.Zero);
            set => Interlocked.Exchange(ref _ticks, value.UtcTicks);
        }

        public override DateTimeOffset GetUtcNow() => Now;
    }

    /// <summary>A client: wireguard-go in its own namespace, linked to the node by a veth pair.</summary>
    private sealed record Client(NetworkNamespace Namespace, WireGuardGo Device, WireGuardKey PublicKey, string TunnelAddress, string UnderlayAddress)
    {
        /// <summary>Pings the node's tunnel address once a second until it answers; false after <paramref name="attempts"/>.</summary>
        public async Task<bool> PingGatewayAsync(int attempts)
        {
            for (var i = 0; i < attempts; i++)
            {
                if ((await Namespace.ExecAsync("ping", "-c", "1", "-W", "1", "-n", "10.78.0.1")).ExitCode == 0)
                {
                    return true;
                }
                await Task.Delay(200, Token);
            }
            return false;
        }
    }

    private sealed class Lab : IAsyncDisposable
    {
        private readonly List<NetworkNamespace> _namespaces = [];
        private readonly List<WireGuardGo> _devices = [];
        private LinuxDataplane? _dataplane;
        private ReconcileRig? _rig;

        public string Interface { get; } = NetworkNamespace.UniqueName("wgi");

        public SetClock WipeClock { get; } = new();

        public ReconcileRig Rig => _rig ?? throw new InvalidOperationException("The lab is not set up.");

        public List<Client> Clients { get; } = [];

        private NetworkNamespace Node => _namespaces[0];

        public static async Task<Lab> StartAsync()
        {
            Prerequisites.RequireNetworkLab();
            Prerequisites.RequireExecutable("ping");
            var lab = new Lab();
            try
            {
                await lab.SetUpAsync();
                return lab;
            }
            catch
            {
                await lab.DisposeAsync();
                throw;
            }
        }

        private async Task SetUpAsync()
        {
            _namespaces.Add(await NetworkNamespace.CreateAsync("idn"));
            var nodeKey = WireGuardKey.Generate().ClampPrivateKey();
            var options = new CoreOptions
            {
                Dataplane = "linux",
                InterfaceName = Interface,
                PrivateKey = nodeKey,
                ListenPort = ListenPort,
                ClientPool = Pool,
                ClientPool6 = Pool6,
                NatDriver = "cli",
                NetworkNamespace = Node.Name,
                EntryUrl = new Uri("unix:/nonexistent/entry.sock"),
                NodeId = Guid.NewGuid(),
                AdminToken = "unused",
                ReconcileGrace = Grace,
                AddressQuarantine = Quarantine,
                PeerIdleWipe = Window,
            };
            _devices.Add(await WireGuardGo.StartAsync(Node, Interface));
            _dataplane = new LinuxDataplane(options, NullLoggerFactory.Instance, TimeProvider.System);
            _rig = new ReconcileRig(_dataplane, options, WipeClock);
            await _dataplane.InitializeAsync(Token);
            var nodePublic = X25519.PublicKeyOf(nodeKey);
            for (var i = 0; i < 2; i++)
            {
                Clients.Add(await StartClientAsync(nodePublic, $"10.78.0.{i + 2}", $"10.{203 + i}.0"));
            }
        }

        private async Task<Client> StartClientAsync(WireGuardKey nodePublic, string tunnelAddress, string underlay)
        {
            var ns = await NetworkNamespace.CreateAsync("idc");
            _namespaces.Add(ns);
            await NetworkNamespace.ConnectAsync(Node, $"{underlay}.1/24", ns, $"{underlay}.2/24");
            var name = NetworkNamespace.UniqueName("wgc");
            var device = await WireGuardGo.StartAsync(ns, name);
            _devices.Add(device);
            var key = WireGuardKey.Generate().ClampPrivateKey();
            await new UapiClient(device.SocketPath).SetAsync(new DeviceConfig
            {
                PrivateKey = key,
                Peers = [new PeerConfig
                {
                    PublicKey = nodePublic,
                    Endpoint = IPEndPoint.Parse($"{underlay}.1:{ListenPort}"),
                    AllowedIps = [IPNetwork.Parse("10.78.0.1/32")],
                }],
            }, Token);
            await ns.ExecCheckedAsync("ip", "addr", "add", $"{tunnelAddress}/32", "dev", name);
            await ns.ExecCheckedAsync("ip", "link", "set", name, "up");
            await ns.ExecCheckedAsync("ip", "route", "add", "10.78.0.1/32", "dev", name);
            return new Client(ns, device, X25519.PublicKeyOf(key), tunnelAddress, $"{underlay}.2");
        }

        /// <summary>`wg show IFACE what` on the node: the value by peer (base64 key); several values joined by a space.</summary>
        public async Task<Dictionary<string, string>> WgShowAsync(string what) =>
            (await Node.ExecCheckedAsync("wg", "show", Interface, what))
                .Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .Select(line => line.Split('\t', 2))
                .ToDictionary(f => f[0], f => f[1].Trim());

        /// <summary>The client's last handshake as the node's device reports it.</summary>
        public async Task<DateTimeOffset> HandshakeOfAsync(Client client)
        {
            var state = await new UapiClient(UapiClient.SocketPathFor(Interface)).GetAsync(Token);
            return state.Peers.Single(p => p.PublicKey == client.PublicKey).LastHandshake
                ?? throw new InvalidOperationException("No handshake with the client yet.");
        }

        public async ValueTask DisposeAsync()
        {
            if (_dataplane is not null)
            {
                await _dataplane.DisposeAsync();
            }
            _rig?.Dispose();
            foreach (var device in _devices)
            {
                await device.DisposeAsync();
            }
            foreach (var ns in _namespaces)
            {
                await ns.DisposeAsync();
            }
        }
    }
}
