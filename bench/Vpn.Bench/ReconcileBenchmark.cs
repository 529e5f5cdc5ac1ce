using System.Text;
using Vpn.Core.WireGuard;
using Vpn.Domain.Addressing;
using Vpn.Domain.Reconciliation;
using Vpn.Domain.WireGuard;

namespace Vpn.Bench;

/// <summary>
/// P2 reconcile: one full pass (UAPI get of the live state → PeerDiff against the desired set held in memory → one
/// minimal UAPI set) over N live peers with a fraction of drift, against `wg syncconf` applying the same change to the
/// same device. These are the reconciler's own pieces (UapiClient, PeerDiff); the pass leaves out only the fetch from
/// entry. Reports time(pass) / time(syncconf); the target is ≤ 0.6 at N = 64,000 with 1 % drift.
/// </summary>
internal static class ReconcileBenchmark
{
    public static async Task<int> RunAsync(int peers, double drift, int rounds)
    {
        await using var lab = await BenchLab.StartAsync();
        var pool = Ipv4Network.Parse("10.64.0.0/16");
        var privateKey = WireGuardKey.Generate();
        var desired = new Dictionary<WireGuardKey, IPAddress>(peers);
        for (var i = 0; i < peers; i++)
        {
            desired[WireGuardKey.Generate()] = Ipv4Network.ToAddress(pool.Base + 2 + (uint)i);
        }
        var configFile = Path.Combine(lab.WorkDirectory, "desired.conf");
        await File.WriteAllTextAsync(configFile, SyncConf(privateKey, desired));
        var uapi = new UapiClient(lab.Device.SocketPath);
        await uapi.SetAsync(new DeviceConfig
        {
            PrivateKey = privateKey,
            ListenPort = 51820,
            Peers = [.. desired.Select(p => Add(p.Key, p.Value))],
        });

        var changes = (int)Math.Round(peers * drift);
        var ratios = new List<double>();
        for (var round = 1; round <= rounds; round++)
        {
            await ApplyDriftAsync(uapi, desired, changes, pool, round);
            var pass = await BenchLab.TimeAsync(async () =>
            {
                var live = await uapi.GetAsync();
                var diff = PeerDiff.Compute(desired, live.Peers.Select(p => new LivePeer(p.PublicKey, p.AllowedIps)));
                await uapi.SetAsync(new DeviceConfig
                {
                    Peers = [.. diff.Removes.Select(k => new PeerConfig { PublicKey = k, Remove = true }),
                        .. diff.Adds.Concat(diff.Corrections).Select(p => Add(p.PublicKey, p.Address))],
                });
            });
            await AssertConvergedAsync(uapi, desired);

            await ApplyDriftAsync(uapi, desired, changes, pool, round + 1000);
            var syncconf = await BenchLab.TimeAsync(async () =>
                (await ProcessRunner.RunAsync("wg", ["syncconf", lab.Device.InterfaceName, configFile], null, TimeSpan.FromMinutes(5)))
                    .EnsureSuccess("wg syncconf"));
            await AssertConvergedAsync(uapi, desired);

            var ratio = pass.TotalSeconds / syncconf.TotalSeconds;
            ratios.Add(ratio);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"p2 round {round}: N={peers} drift={changes} pass {pass.TotalMilliseconds:F0} ms, wg syncconf {syncconf.TotalMilliseconds:F0} ms, ratio {ratio:F2}"));
        }
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"p2 result: N={peers} drift={drift:P0} median time ratio pass/syncconf = {BenchLab.Median(ratios):F2} (target <= 0.60)"));
        return 0;
    }

    // A third each: desired peers removed by hand, rogue peers added, allowed IPs changed.
    private static async Task ApplyDriftAsync(UapiClient uapi, Dictionary<WireGuardKey, IPAddress> desired, int changes, Ipv4Network pool, int seed)
    {
        var random = new Random(seed);
        var keys = desired.Keys.OrderBy(_ => random.Next()).Take(2 * (changes / 3)).ToArray();
        var third = changes / 3;
        var drift = new List<PeerConfig>();
        drift.AddRange(keys.Take(third).Select(k => new PeerConfig { PublicKey = k, Remove = true }));
        drift.AddRange(Enumerable.Range(0, changes - 2 * third).Select(i =>
            Add(WireGuardKey.Generate(), Ipv4Network.ToAddress(pool.Broadcast - 1 - (uint)i))));
        drift.AddRange(keys.Skip(third).Select((k, i) => new PeerConfig
        {
            PublicKey = k,
            ReplaceAllowedIps = true,
            AllowedIps = [new IPNetwork(Ipv4Network.ToAddress(pool.Broadcast - 10_000 - (uint)i), 32)],
        }));
        await uapi.SetAsync(new DeviceConfig { Peers = drift });
    }

    private static async Task AssertConvergedAsync(UapiClient uapi, Dictionary<WireGuardKey, IPAddress> desired)
    {
        var live = await uapi.GetAsync();
        var diff = PeerDiff.Compute(desired, live.Peers.Select(p => new LivePeer(p.PublicKey, p.AllowedIps)));
        if (!diff.IsEmpty)
        {
            throw new InvalidOperationException($"device not converged: {diff.ChangeCount} differences");
        }
    }

    private static PeerConfig Add(WireGuardKey key, IPAddress address) => new()
    {
        PublicKey = key,
        ReplaceAllowedIps = true,
        AllowedIps = [new IPNetwork(address, 32)],
    };

    private static string SyncConf(WireGuardKey privateKey, Dictionary<WireGuardKey, IPAddress> desired)
    {
        var text = new StringBuilder();
        text.Append("[Interface]\nPrivateKey = ").Append(privateKey.ToBase64()).Append("\nListenPort = 51820\n");
        foreach (var (key, address) in desired)
        {
            text.Append("\n[Peer]\nPublicKey = ").Append(key.ToBase64()).Append("\nAllowedIPs = ").Append(address).Append("/32\n");
        }
        return text.ToString();
    }
}
