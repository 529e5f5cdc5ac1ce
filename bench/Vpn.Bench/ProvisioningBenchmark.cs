using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Grpc.Net.Client;
using Vpn.Contracts.Core.V1;
using Vpn.Core.WireGuard;
using Vpn.Domain.Addressing;
using Vpn.Domain.WireGuard;
using Vpn.TestSupport;

namespace Vpn.Bench;

/// <summary>
/// P1 provisioning: N concurrent Connect calls through core (gRPC over a unix socket → registry → coalesced UAPI
/// writes) against the raw limit: one UAPI set carrying the same N peers on the same wireguard-go device.
/// Reports rate(core) / rate(raw); the target is ≥ 0.5 at N = 10,000.
/// </summary>
internal static class ProvisioningBenchmark
{
    public static async Task<int> RunAsync(int peers, int rounds)
    {
        await using var lab = await BenchLab.StartAsync();
        var pool = Ipv4Network.Parse("10.64.0.0/16");
        var privateKey = WireGuardKey.Generate();
        var ratios = new List<double>();
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

            // Through core: an empty device again, core started on it, N concurrent Connects.
            await lab.RestartDeviceAsync();
            await using var core = await StartCoreAsync(lab, privateKey);
            using var channel = CoreChannel(Path.Combine(lab.WorkDirectory, "core.sock"));
            var client = new VpnControl.VpnControlClient(channel);
            await client.GetNodeStatusAsync(new GetNodeStatusRequest());
            var viaCore = await BenchLab.TimeAsync(() => Task.WhenAll(keys.Select(k =>
                client.ConnectAsync(new ConnectRequest { SessionId = Guid.NewGuid().ToString(), DevicePublicKey = k.ToBase64() }).ResponseAsync)));
            var live = (await uapi.GetAsync()).Peers.Count;
            if (live != peers)
            {
                Console.Error.WriteLine($"p1: expected {peers} peers on the device after the Connects, found {live}");
                return 1;
            }
            var ratio = raw.TotalSeconds / viaCore.TotalSeconds;
            ratios.Add(ratio);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"p1 round {round}: N={peers} raw set {raw.TotalMilliseconds:F0} ms ({peers / raw.TotalSeconds:F0} peers/s), " +
                $"core {viaCore.TotalMilliseconds:F0} ms ({peers / viaCore.TotalSeconds:F0} peers/s), ratio {ratio:F2}"));
        }
        var median = BenchLab.Median(ratios);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"p1 result: N={peers} median rate ratio core/raw = {median:F2} (target >= 0.50)"));
        return 0;
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
