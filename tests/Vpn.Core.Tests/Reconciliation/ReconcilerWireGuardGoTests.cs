using static Vpn.Core.Tests.Reconciliation.ReconcileRig;

namespace Vpn.Core.Tests.Reconciliation;

/// <summary>
/// The reconciler with the real dataplane against wireguard-go in a network namespace: hand edits with <c>wg</c> are
/// undone, and a restarted wireguard-go gets its whole configuration back. Every test ends by comparing
/// <c>wg show dump</c> with the desired set.
/// </summary>
public class ReconcilerWireGuardGoTests
{
    private const int ListenPort = 51820;
    private static readonly Ipv4Network Pool = Ipv4Network.Parse("10.77.0.0/24");

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task RunPass_RoguePeerAddedByHand_IsRemoved()
    {
        await using var node = await Node.StartAsync();
        var (a, b) = (Key(), Key());
        node.Rig.Desired.Set(Active(a, "10.77.0.2"), Active(b, "10.77.0.3"));
        await node.Rig.PassAsync();
        var rogue = Key();
        await node.WgAsync("set", node.Interface, "peer", rogue.ToBase64(), "allowed-ips", "10.77.0.66/32");

        var outcome = await node.Rig.PassAsync();

        Assert.Equal((true, 0, 1, 0), (outcome.Succeeded, outcome.Added, outcome.Removed, outcome.Corrected));
        Assert.Equal(Dump((a, "10.77.0.2"), (b, "10.77.0.3")), await node.DumpPeersAsync());
    }

    [Fact]
    public async Task RunPass_DesiredPeerRemovedByHand_IsRestored()
    {
        await using var node = await Node.StartAsync();
        var (a, b) = (Key(), Key());
        node.Rig.Desired.Set(Active(a, "10.77.0.2"), Active(b, "10.77.0.3"));
        await node.Rig.PassAsync();
        await node.WgAsync("set", node.Interface, "peer", a.ToBase64(), "remove");

        var outcome = await node.Rig.PassAsync();

        Assert.Equal((true, 1, 0, 0), (outcome.Succeeded, outcome.Added, outcome.Removed, outcome.Corrected));
        Assert.Equal(Dump((a, "10.77.0.2"), (b, "10.77.0.3")), await node.DumpPeersAsync());
    }

    [Fact]
    public async Task RunPass_AllowedIpsChangedByHand_AreRestoredAndOtherPeersUntouched()
    {
        await using var node = await Node.StartAsync();
        var (a, b) = (Key(), Key());
        node.Rig.Desired.Set(Active(a, "10.77.0.2"), Active(b, "10.77.0.3"));
        await node.Rig.PassAsync();
        // An endpoint only the device knows (as one learnt from a live client): lost if the peer were removed and re-added.
        await node.WgAsync("set", node.Interface, "peer", b.ToBase64(), "endpoint", "192.0.2.7:40000");
        await node.WgAsync("set", node.Interface, "peer", a.ToBase64(), "allowed-ips", "10.77.0.50/32,10.99.0.0/16");

        var outcome = await node.Rig.PassAsync();

        Assert.Equal((true, 0, 0, 1), (outcome.Succeeded, outcome.Added, outcome.Removed, outcome.Corrected));
        Assert.Equal(Dump((a, "10.77.0.2"), (b, "10.77.0.3")), await node.DumpPeersAsync());
        Assert.Equal("192.0.2.7:40000", (await node.DumpAsync()).Peers[b.ToBase64()][2]);
    }

    [Fact]
    public async Task RunPass_WireGuardGoRestarted_ReinitializesTheDeviceAndRestoresEveryPeer()
    {
        await using var node = await Node.StartAsync();
        var keys = Enumerable.Range(0, 50).Select(_ => Key()).ToArray();
        node.Rig.Desired.Set([.. keys.Select((k, i) => Active(k, $"10.77.0.{i + 2}"))]);
        await node.Rig.PassAsync();

        await node.RestartWireGuardAsync();
        // Make the rest of the node's setup visibly lost too, so the test proves it is applied again.
        await node.Namespace.ExecCheckedAsync("nft", "delete", "table", "inet", "vpn_core");
        await node.Namespace.ExecCheckedAsync("sysctl", "-q", "-w", "net.ipv4.ip_forward=0");
        Assert.True((await node.Rig.Dataplane.ReadAsync(Token)).NeedsInitialization);

        var outcome = await node.Rig.PassAsync();

        Assert.Equal((true, 50), (outcome.Succeeded, outcome.Added));
        Assert.Equal(1, node.Rig.Metrics.Snapshot().DeviceReinitializations);
        var dump = await node.DumpAsync();
        Assert.Equal([node.PrivateKey.ToBase64(), ListenPort.ToString()], [dump.Device[0], dump.Device[2]]);
        Assert.Equal(Dump([.. keys.Select((k, i) => (k, $"10.77.0.{i + 2}"))]), await node.DumpPeersAsync());
        Assert.Contains("inet 10.77.0.1/24", await node.Namespace.ExecCheckedAsync("ip", "-4", "addr", "show", "dev", node.Interface));
        Assert.Contains(",UP", await node.Namespace.ExecCheckedAsync("ip", "link", "show", "dev", node.Interface));
        Assert.Contains("masquerade", await node.Namespace.ExecCheckedAsync("nft", "list", "table", "inet", "vpn_core"));
        Assert.Equal("1", (await node.Namespace.ExecCheckedAsync("cat", "/proc/sys/net/ipv4/ip_forward")).Trim());
    }

    [Fact]
    public async Task RunPass_WireGuardGoDown_FailsThenConvergesWhenItIsBack()
    {
        await using var node = await Node.StartAsync();
        var a = Key();
        node.Rig.Desired.Set(Active(a, "10.77.0.2"));
        await node.Rig.PassAsync();
        await node.StopWireGuardAsync();

        var down = await node.Rig.PassAsync();
        Assert.Equal("device_error", down.FailureReason);

        await node.StartWireGuardAsync();
        var back = await node.Rig.PassAsync();

        Assert.True(back.Succeeded);
        Assert.Equal(Dump((a, "10.77.0.2")), await node.DumpPeersAsync());
    }

    /// <summary>Each peer with exactly its /32 and the /128 paired with it, as <see cref="Node.DumpPeersAsync"/> lists them.</summary>
    private static string[] Dump(params (WireGuardKey Key, string Address)[] peers) =>
        [.. peers.Select(p => $"{p.Key.ToBase64()} {p.Address}/32,{Pool6For(Pool).AddressFor(System.Net.IPAddress.Parse(p.Address))}/128").Order(StringComparer.Ordinal)];

    private sealed record WgDump(string[] Device, Dictionary<string, string[]> Peers);

    /// <summary>A namespace with wireguard-go and a core's dataplane, registry and reconciler driving it from outside.</summary>
    private sealed class Node : IAsyncDisposable
    {
        private WireGuardGo? _go;

        private Node(NetworkNamespace ns, string interfaceName, WireGuardKey privateKey, LinuxDataplane dataplane, ReconcileRig rig)
        {
            Namespace = ns;
            Interface = interfaceName;
            PrivateKey = privateKey;
            Dataplane = dataplane;
            Rig = rig;
        }

        public NetworkNamespace Namespace { get; }

        public string Interface { get; }

        public WireGuardKey PrivateKey { get; }

        public LinuxDataplane Dataplane { get; }

        public ReconcileRig Rig { get; }

        public static async Task<Node> StartAsync()
        {
            Prerequisites.RequireNetworkLab();
            var ns = await NetworkNamespace.CreateAsync("rec");
            var interfaceName = NetworkNamespace.UniqueName("wgr");
            var privateKey = ClampedPrivateKey();
            var options = new CoreOptions
            {
                Dataplane = "linux",
                InterfaceName = interfaceName,
                PrivateKey = privateKey,
                ListenPort = ListenPort,
                ClientPool = Pool,
                ClientPool6 = Pool6For(Pool),
                NatDriver = "cli",
                NetworkNamespace = ns.Name,
                EntryUrl = new Uri("unix:/nonexistent/entry.sock"),
                NodeId = Guid.NewGuid(),
                AdminToken = "unused",
                ReconcileGrace = Grace,
                AddressQuarantine = Quarantine,
            };
            var dataplane = new LinuxDataplane(options, NullLoggerFactory.Instance, TimeProvider.System);
            var node = new Node(ns, interfaceName, privateKey, dataplane, new ReconcileRig(dataplane, options));
            try
            {
                await node.StartWireGuardAsync();
                await dataplane.InitializeAsync(Token);
                return node;
            }
            catch
            {
                await node.DisposeAsync();
                throw;
            }
        }

        /// <summary>Starts wireguard-go and waits until it accepts UAPI connections (its socket file appears a moment earlier).</summary>
        public async Task StartWireGuardAsync()
        {
            _go = await WireGuardGo.StartAsync(Namespace, Interface);
            var uapi = new UapiClient(_go.SocketPath);
            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (true)
            {
                try
                {
                    await uapi.GetAsync(Token);
                    return;
                }
                catch (UapiUnavailableException) when (DateTime.UtcNow < deadline)
                {
                    await Task.Delay(20, Token);
                }
            }
        }

        /// <summary>SIGKILL; the stale socket is removed so the next start waits for the new one.</summary>
        public async Task StopWireGuardAsync()
        {
            if (_go is not null)
            {
                await _go.DisposeAsync();
                _go = null;
            }
        }

        public async Task RestartWireGuardAsync()
        {
            await StopWireGuardAsync();
            await StartWireGuardAsync();
        }

        public Task<string> WgAsync(params string[] arguments) => Namespace.ExecCheckedAsync("wg", arguments);

        public async Task<WgDump> DumpAsync()
        {
            var lines = (await WgAsync("show", Interface, "dump"))
                .Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .Select(line => line.Split('\t'))
                .ToArray();
            return new WgDump(lines[0], lines.Skip(1).ToDictionary(fields => fields[0]));
        }

        /// <summary>"public-key allowed-ips" of every peer in `wg show dump` (its allowed IPs sorted), sorted.</summary>
        public async Task<string[]> DumpPeersAsync() =>
            [.. (await DumpAsync()).Peers.Values.Select(p => $"{p[0]} {string.Join(',', p[3].Split(',').Order(StringComparer.Ordinal))}").Order(StringComparer.Ordinal)];

        public async ValueTask DisposeAsync()
        {
            await Dataplane.DisposeAsync();
            Rig.Dispose();
            await StopWireGuardAsync();
            await Namespace.DisposeAsync();
        }

        private static WireGuardKey ClampedPrivateKey() => WireGuardKey.Generate().ClampPrivateKey();
    }
}
