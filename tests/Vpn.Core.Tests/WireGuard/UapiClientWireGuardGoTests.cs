using System.Diagnostics;

namespace Vpn.Core.Tests.WireGuard;

/// <summary>The same client against a real wireguard-go in its own network namespace.</summary>
public class UapiClientWireGuardGoTests(ITestOutputHelper output)
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task GetAsync_FreshDevice_HasNoKeyAndNoPeers()
    {
        await using var device = await RealDevice.StartAsync();

        var state = await device.Client.GetAsync(Token);

        Assert.Null(state.PrivateKey);
        Assert.Empty(state.Peers);
    }

    [Fact]
    public async Task SetAsync_KeyPortAndThreePeers_GetAndWgShowAgree()
    {
        await using var device = await RealDevice.StartAsync();
        var privateKey = ClampedPrivateKey();
        var psk = WireGuardKey.Generate();
        PeerConfig[] peers =
        [
            new()
            {
                PublicKey = WireGuardKey.Generate(),
                PresharedKey = psk,
                Endpoint = IPEndPoint.Parse("192.0.2.10:51820"),
                PersistentKeepaliveInterval = TimeSpan.FromSeconds(25),
                AllowedIps = [IPNetwork.Parse("10.8.0.2/32"), IPNetwork.Parse("fd00:8::2/128")],
            },
            new()
            {
                PublicKey = WireGuardKey.Generate(),
                Endpoint = IPEndPoint.Parse("[2001:db8::1]:51821"),
                AllowedIps = [IPNetwork.Parse("10.8.1.0/24")],
            },
            new() { PublicKey = WireGuardKey.Generate() },
        ];

        await device.Client.SetAsync(new DeviceConfig { PrivateKey = privateKey, ListenPort = 43210, FirewallMark = 0x1234, Peers = peers }, Token);
        var state = await device.Client.GetAsync(Token);

        Assert.Equal(privateKey, state.PrivateKey);
        Assert.Equal(43210, state.ListenPort);
        Assert.Equal(0x1234u, state.FirewallMark);
        Assert.Equal(3, state.Peers.Count);
        foreach (var expected in peers)
        {
            var actual = Assert.Single(state.Peers, p => p.PublicKey == expected.PublicKey);
            Assert.Equal(expected.PresharedKey, actual.PresharedKey);
            Assert.Equal(expected.Endpoint, actual.Endpoint);
            Assert.Equal(expected.PersistentKeepaliveInterval ?? TimeSpan.Zero, actual.PersistentKeepaliveInterval);
            Assert.Equal(Sorted(expected.AllowedIps ?? []), Sorted(actual.AllowedIps));
            Assert.Null(actual.LastHandshake);
            Assert.Equal(1, actual.ProtocolVersion);
        }

        var dump = await device.WgDumpAsync();
        Assert.Equal([privateKey.ToBase64(), "43210", "0x1234"], [dump.Device[0], dump.Device[2], dump.Device[3]]);
        Assert.Equal(3, dump.Peers.Count);
        Assert.Equal([psk.ToBase64(), "192.0.2.10:51820", "10.8.0.2/32,fd00:8::2/128", "25"], Columns(dump.Peers[peers[0].PublicKey.ToBase64()]));
        Assert.Equal(["(none)", "[2001:db8::1]:51821", "10.8.1.0/24", "off"], Columns(dump.Peers[peers[1].PublicKey.ToBase64()]));
        Assert.Equal(["(none)", "(none)", "(none)", "off"], Columns(dump.Peers[peers[2].PublicKey.ToBase64()]));
    }

    [Fact]
    public async Task SetAsync_RemovePeer_OnlyThatPeerIsGone()
    {
        await using var device = await RealDevice.StartAsync();
        var keys = Enumerable.Range(0, 3).Select(_ => WireGuardKey.Generate()).ToArray();
        await device.Client.SetAsync(new DeviceConfig { Peers = [.. keys.Select(k => new PeerConfig { PublicKey = k })] }, Token);

        await device.Client.SetAsync(new DeviceConfig { Peers = [new PeerConfig { PublicKey = keys[1], Remove = true }] }, Token);

        var state = await device.Client.GetAsync(Token);
        Assert.Equal(Sorted([keys[0], keys[2]]), Sorted(state.Peers.Select(p => p.PublicKey)));
        Assert.Equal(new[] { keys[0], keys[2] }.Select(k => k.ToBase64()).Order(StringComparer.Ordinal), (await device.WgDumpAsync()).Peers.Keys.Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task SetAsync_ReplaceAllowedIps_ReplacesOnlyThatPeersList()
    {
        await using var device = await RealDevice.StartAsync();
        var first = WireGuardKey.Generate();
        var second = WireGuardKey.Generate();
        var absent = WireGuardKey.Generate();
        await device.Client.SetAsync(new DeviceConfig
        {
            Peers =
            [
                new PeerConfig { PublicKey = first, AllowedIps = [IPNetwork.Parse("10.1.0.1/32"), IPNetwork.Parse("fd00:1::1/128")] },
                new PeerConfig { PublicKey = second, AllowedIps = [IPNetwork.Parse("10.2.0.1/32")] },
            ],
        }, Token);

        await device.Client.SetAsync(new DeviceConfig
        {
            Peers =
            [
                new PeerConfig { PublicKey = first, ReplaceAllowedIps = true, AllowedIps = [IPNetwork.Parse("10.1.0.9/32")] },
                new PeerConfig { PublicKey = second, AllowedIps = [IPNetwork.Parse("10.2.0.2/32")] },
                new PeerConfig { PublicKey = absent, UpdateOnly = true, AllowedIps = [IPNetwork.Parse("10.3.0.1/32")] },
            ],
        }, Token);

        var state = await device.Client.GetAsync(Token);
        Assert.Equal(2, state.Peers.Count);
        Assert.Equal([IPNetwork.Parse("10.1.0.9/32")], state.Peers.Single(p => p.PublicKey == first).AllowedIps);
        Assert.Equal(Sorted([IPNetwork.Parse("10.2.0.1/32"), IPNetwork.Parse("10.2.0.2/32")]), Sorted(state.Peers.Single(p => p.PublicKey == second).AllowedIps));
        var dump = await device.WgDumpAsync();
        Assert.Equal("10.1.0.9/32", dump.Peers[first.ToBase64()][3]);
        Assert.Equal(2, dump.Peers.Count);
    }

    [Fact]
    public async Task SetAsync_ReplacePeers_LeavesOnlyNewPeers()
    {
        await using var device = await RealDevice.StartAsync();
        await device.Client.SetAsync(new DeviceConfig { Peers = [new PeerConfig { PublicKey = WireGuardKey.Generate() }] }, Token);
        var replacement = WireGuardKey.Generate();

        await device.Client.SetAsync(new DeviceConfig { ReplacePeers = true, Peers = [new PeerConfig { PublicKey = replacement }] }, Token);

        Assert.Equal(replacement, Assert.Single((await device.Client.GetAsync(Token)).Peers).PublicKey);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(10_000)]
    public async Task SetAsync_ListenPortInUse_ThrowsAddressInUseAndKeepsEarlierLines(int peerCount)
    {
        // Two devices in one namespace: the second cannot bind the port the first holds. A bind only
        // happens while the device is up.
        await using var holder = await RealDevice.StartAsync();
        await using var device = await RealDevice.StartAsync(holder.Namespace);
        var heldPort = await holder.BringUpAsync();
        await device.BringUpAsync();
        var privateKey = ClampedPrivateKey();
        var config = new DeviceConfig
        {
            PrivateKey = privateKey,
            ListenPort = heldPort,
            Peers = [.. Enumerable.Range(0, peerCount).Select(_ => new PeerConfig { PublicKey = WireGuardKey.Generate() })],
        };

        var exception = await Assert.ThrowsAsync<UapiException>(() => device.Client.SetAsync(config, Token));

        // -EADDRINUSE. The set is not atomic: the private key line before it was applied, the peers after it were not.
        Assert.Equal(-98, exception.Errno);
        var state = await device.Client.GetAsync(Token);
        Assert.Equal(privateKey, state.PrivateKey);
        Assert.Empty(state.Peers);
    }

    [Fact]
    public async Task GetAsync_DeviceKilled_ThrowsUnavailable()
    {
        await using var device = await RealDevice.StartAsync();
        await device.Client.GetAsync(Token);

        device.Go.Kill();

        await Assert.ThrowsAsync<UapiUnavailableException>(() => device.Client.GetAsync(Token));
    }

    [Fact]
    public async Task SetAsync_UnclampedPrivateKey_ReadsBackAsClampPrivateKey()
    {
        await using var device = await RealDevice.StartAsync();
        var unclamped = WireGuardKey.FromBytes([0xff, .. WireGuardKey.Generate().Bytes[1..31], 0xbf]);

        await device.Client.SetAsync(new DeviceConfig { PrivateKey = unclamped }, Token);

        Assert.Equal(unclamped.ClampPrivateKey(), (await device.Client.GetAsync(Token)).PrivateKey);
    }

    [Fact]
    public async Task PingAsync_DeviceWithPeer_AnswersAndChangesNothing_KilledThrowsUnavailable()
    {
        await using var device = await RealDevice.StartAsync();
        var privateKey = ClampedPrivateKey();
        var peer = new PeerConfig { PublicKey = WireGuardKey.Generate(), AllowedIps = [IPNetwork.Parse("10.8.0.2/32")] };
        await device.Client.SetAsync(new DeviceConfig { PrivateKey = privateKey, ListenPort = 43212, Peers = [peer] }, Token);

        await device.Client.PingAsync(Token);

        var state = await device.Client.GetAsync(Token);
        Assert.Equal((privateKey, 43212), (state.PrivateKey, state.ListenPort));
        Assert.Equal(["10.8.0.2/32"], Sorted(Assert.Single(state.Peers, p => p.PublicKey == peer.PublicKey).AllowedIps));
        device.Go.Kill();
        await Assert.ThrowsAsync<UapiUnavailableException>(() => device.Client.PingAsync(Token));
    }

    [Fact]
    public async Task SetAsync_TenThousandPeers_GetReadsThemAllBack()
    {
        await using var device = await RealDevice.StartAsync();
        var peers = Enumerable.Range(0, 10_000)
            .Select(i => new PeerConfig
            {
                PublicKey = WireGuardKey.Generate(),
                AllowedIps = [new IPNetwork(new IPAddress([10, 100, (byte)(i >> 8), (byte)i]), 32)],
            })
            .ToArray();
        var config = new DeviceConfig { PrivateKey = ClampedPrivateKey(), ListenPort = 43211, ReplacePeers = true, Peers = peers };

        var set = Stopwatch.StartNew();
        await device.Client.SetAsync(config, Token);
        set.Stop();
        var get = Stopwatch.StartNew();
        var state = await device.Client.GetAsync(Token);
        get.Stop();
        output.WriteLine($"10,000 peers: set {set.ElapsedMilliseconds} ms, get {get.ElapsedMilliseconds} ms");

        Assert.Equal(10_000, state.Peers.Count);
        var byKey = state.Peers.ToDictionary(p => p.PublicKey);
        foreach (var peer in peers)
        {
            Assert.Equal(peer.AllowedIps, byKey[peer.PublicKey].AllowedIps);
        }
        Assert.Equal(10_000, (await device.WgDumpAsync()).Peers.Count);
    }

    // wireguard-go clamps a private key when it is set, so only a clamped key reads back unchanged.
    private static WireGuardKey ClampedPrivateKey() => WireGuardKey.Generate().ClampPrivateKey();

    private static string[] Sorted(IEnumerable<IPNetwork> networks) => [.. networks.Select(n => n.ToString()).Order(StringComparer.Ordinal)];

    private static string[] Sorted(IEnumerable<WireGuardKey> keys) => [.. keys.Select(k => k.ToHex()).Order(StringComparer.Ordinal)];

    // preshared key, endpoint, allowed IPs, keepalive of a `wg show dump` peer line.
    private static string[] Columns(string[] peerLine) => [peerLine[1], peerLine[2], peerLine[3], peerLine[7]];

    private sealed record WgDump(string[] Device, Dictionary<string, string[]> Peers);

    private sealed class RealDevice : IAsyncDisposable
    {
        private readonly bool _ownsNamespace;

        private RealDevice(NetworkNamespace ns, bool ownsNamespace, WireGuardGo go)
        {
            Namespace = ns;
            _ownsNamespace = ownsNamespace;
            Go = go;
            Client = new UapiClient(UapiClient.SocketPathFor(go.InterfaceName));
        }

        public NetworkNamespace Namespace { get; }

        public WireGuardGo Go { get; }

        public UapiClient Client { get; }

        public static async Task<RealDevice> StartAsync(NetworkNamespace? shared = null)
        {
            Prerequisites.RequireNetworkLab();
            var ns = shared ?? await NetworkNamespace.CreateAsync("uapi");
            try
            {
                var go = await WireGuardGo.StartAsync(ns, NetworkNamespace.UniqueName("wgu"));
                return new RealDevice(ns, shared is null, go);
            }
            catch
            {
                if (shared is null)
                {
                    await ns.DisposeAsync();
                }
                throw;
            }
        }

        /// <summary>Sets the link up and waits until the device has bound its UDP port; returns the port.</summary>
        public async Task<int> BringUpAsync()
        {
            await Namespace.ExecCheckedAsync("ip", "link", "set", Go.InterfaceName, "up");
            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (true)
            {
                var port = (await Client.GetAsync(Token)).ListenPort;
                if (port != 0)
                {
                    return port;
                }
                Assert.True(DateTime.UtcNow < deadline, "wireguard-go did not bind a port after link up");
                await Task.Delay(20, Token);
            }
        }

        public async Task<WgDump> WgDumpAsync()
        {
            var lines = (await Namespace.ExecCheckedAsync("wg", "show", Go.InterfaceName, "dump"))
                .Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .Select(line => line.Split('\t'))
                .ToArray();
            return new WgDump(lines[0], lines.Skip(1).ToDictionary(fields => fields[0]));
        }

        public async ValueTask DisposeAsync()
        {
            await Go.DisposeAsync();
            if (_ownsNamespace)
            {
                await Namespace.DisposeAsync();
            }
        }
    }
}
