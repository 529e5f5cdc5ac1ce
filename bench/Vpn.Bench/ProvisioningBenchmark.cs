using Google.Protobuf;
using Grpc.Net.Client;
using Vpn.Contracts.Core.V1;
using Vpn.Core.WireGuard;
using Vpn.Domain.Addressing;
using Vpn.Domain.WireGuard;

namespace Vpn.Bench;

/// <summary>
/// P1 provisioning: N concurrent Connect calls through core (gRPC over a unix socket → registry → coalesced UAPI
/// writes) against the raw limit: one UAPI set carrying the same N peers on the same wireguard-go device.
/// Reports rate(core) / rate(raw); the target is ≥ 0.5 at N = 10,000. The headline drives core with a light HTTP/2 load
/// generator (<see cref="H2UnaryBurst"/>): the calls come from entry, which runs elsewhere, so its CPU is not the node's.
/// The same burst from Grpc.Net.Client, as entry sends it, is measured too: that one also pays for the client on the
/// node's two cores.
/// </summary>
internal static class ProvisioningBenchmark
{
    public static async Task<int> RunAsync(int peers, int rounds)
    {
        await using var lab = await BenchLab.StartAsync();
        var pool = Ipv4Network.Parse("10.64.0.0/16");
        var privateKey = WireGuardKey.Generate();
        var light = new List<double>();
        var grpc = new List<double>();
        for (var round = 1; round <= rounds; round++)
        {
            var keys = Enumerable.Range(0, peers).Select(_ => WireGuardKey.Generate()).ToArray();

            // Baseline: the same peers in one set on an empty device.
            await lab.RestartDeviceAsync();
            var uapi = new UapiClient(lab.Device.SocketPath);
            await uapi.SetAsync(new DeviceConfig { PrivateKey = privateKey, ListenPort = 51820 });
            var raw = await BenchLab.TimeAsync(() => uapi.SetAsync(new DeviceConfig
            {
                Peers = [.. keys.Select((k, i) => new PeerConfig
                {
                    PublicKey = k,
                    ReplaceAllowedIps = true,
                    AllowedIps = [new IPNetwork(Ipv4Network.ToAddress(pool.Base + 2 + (uint)i), 32)],
                })],
            }));

            // Through core, twice, each on an empty device with core started on it: N concurrent Connects from a light
            // HTTP/2 load generator (the node's own cost), then from Grpc.Net.Client as entry calls core (entry's CPU, on
            // this box, competing with core and wireguard-go for the same two cores).
            var viaLight = await ThroughCoreAsync(lab, privateKey, keys, async socket =>
            {
                var messages = keys.Select(k => new ConnectRequest { SessionId = Guid.NewGuid().ToString(), DevicePublicKey = k.ToBase64() }.ToByteArray()).ToArray();
                var burst = H2UnaryBurst.Encode($"/{VpnControl.Descriptor.FullName}/Connect", messages);
                await using var client = await H2UnaryBurst.ConnectAsync(socket);
                var failed = 0;
                var elapsed = await BenchLab.TimeAsync(async () => failed = (await client.SendAsync(burst, TimeSpan.FromMinutes(2))).Failed);
                return failed == 0 ? elapsed : throw new InvalidOperationException($"{failed} of {peers} Connects failed");
            });
            var viaGrpc = await ThroughCoreAsync(lab, privateKey, keys, async socket =>
            {
                using var channel = CoreChannel(socket);
                var client = new VpnControl.VpnControlClient(channel);
                await client.GetNodeStatusAsync(new GetNodeStatusRequest());
                return await BenchLab.TimeAsync(() => Task.WhenAll(keys.Select(k =>
                    client.ConnectAsync(new ConnectRequest { SessionId = Guid.NewGuid().ToString(), DevicePublicKey = k.ToBase64() }).ResponseAsync)));
            });
            light.Add(raw.TotalSeconds / viaLight.TotalSeconds);
            grpc.Add(raw.TotalSeconds / viaGrpc.TotalSeconds);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"p1 round {round}: N={peers} raw set {raw.TotalMilliseconds:F0} ms ({peers / raw.TotalSeconds:F0} peers/s); " +
                $"core {viaLight.TotalMilliseconds:F0} ms ({peers / viaLight.TotalSeconds:F0} peers/s), ratio {light[^1]:F2}; " +
                $"core with Grpc.Net.Client on the box {viaGrpc.TotalMilliseconds:F0} ms, ratio {grpc[^1]:F2}"));
        }
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"p1 result: N={peers} median rate ratio core/raw = {BenchLab.Median(light):F2} (target >= 0.50); " +
            $"with the Grpc.Net.Client load generator on the same cores: {BenchLab.Median(grpc):F2}"));
        return 0;
    }

    /// <summary>Restarts the device empty, starts core on it, times <paramref name="burst"/> and checks every peer is live.</summary>
    private static async Task<TimeSpan> ThroughCoreAsync(BenchLab lab, WireGuardKey privateKey, WireGuardKey[] keys, Func<string, Task<TimeSpan>> burst)
    {
        await lab.RestartDeviceAsync();
        await using var core = await StartCoreAsync(lab, privateKey);
        var elapsed = await burst(Path.Combine(lab.WorkDirectory, "core.sock"));
        var live = (await new UapiClient(lab.Device.SocketPath).GetAsync()).Peers.Select(p => p.PublicKey).ToHashSet();
        if (live.Count != keys.Length || !keys.All(live.Contains))
        {
            throw new InvalidOperationException($"expected the {keys.Length} peers on the device after the Connects, found {live.Count}");
        }
        return elapsed;
    }

    private static async Task<BackgroundProcess> StartCoreAsync(BenchLab lab, WireGuardKey privateKey)
    {
        var keyFile = Path.Combine(lab.WorkDirectory, "node.key");
        await File.WriteAllTextAsync(keyFile, privateKey.ToBase64());
        var socket = Path.Combine(lab.WorkDirectory, "core.sock");
        File.Delete(socket);
        var dll = Path.Combine(BenchLab.RepoRoot(), "src", "Vpn.Core", "bin", BenchLab.Configuration, "net10.0", "Vpn.Core.dll");
        var core = lab.Namespace.Start("dotnet", [dll], new Dictionary<string, string?>
        {
            ["CORE_GRPC_LISTEN"] = "unix:" + socket,
            ["WG_DATAPLANE"] = "linux",
            ["WG_INTERFACE"] = lab.Device.InterfaceName,
            ["WG_PRIVATE_KEY_FILE"] = keyFile,
            ["WG_CLIENT_POOL"] = "10.64.0.0/16",
            ["WG_NAT_DRIVER"] = "cli",
            ["Logging__LogLevel__Default"] = "Warning",
        });
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!File.Exists(socket))
        {
            if (core.HasExited || DateTime.UtcNow > deadline)
            {
                throw new InvalidOperationException("core did not start: " + core.Output);
            }
            await Task.Delay(50);
        }
        return core;
    }

    private static GrpcChannel CoreChannel(string socketPath) => GrpcChannel.ForAddress("http://localhost", new GrpcChannelOptions
    {
        HttpHandler = new SocketsHttpHandler
        {
            EnableMultipleHttp2Connections = true,
            ConnectCallback = async (_, ct) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), ct);
                return new NetworkStream(socket, ownsSocket: true);
            },
        },
    });
}
