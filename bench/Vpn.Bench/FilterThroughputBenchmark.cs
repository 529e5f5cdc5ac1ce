using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using Vpn.Core.Nat;
using Vpn.Core.Nat.Native;

namespace Vpn.Bench;

/// <summary>
/// Filter: what the node's filter and NAT table (NodeFirewall, as core programs it) costs a client's forwarded traffic.
/// iperf3 from a client namespace to an internet namespace through real wireguard-go on both sides and the node between
/// them, with the table applied (tunnel traffic filtered, NAT44 to the uplink) and without it (no table at all; the
/// internet routes the client pool back to the node instead of NAT). Each round measures both, in alternating order,
/// upload (client → internet: the tunnel_forward chain) and download (-R: established replies into the tunnel).
/// Prints per-round throughputs and the median ratio filtered/unfiltered per direction; no target.
/// <code>
///  client 10.64.0.2 (wireguard-go) ── 192.0.2.0/24 ── node 10.64.0.1/24 (wireguard-go) ── 203.0.113.0/24 ── internet .2 (iperf3 -s)
/// </code>
/// Run (as root, Release): dotnet run -c Release --project bench/Vpn.Bench -- filter [rounds=5] [seconds=5] [driver=cli|native]
/// </summary>
internal static class FilterThroughputBenchmark
{
    private const string NodeHome = "192.0.2.1";
    private const string ClientHome = "192.0.2.2";
    private const string NodeUplinkIp = "203.0.113.1";
    private const string InternetIp = "203.0.113.2";
    private const string ClientTunnelIp = "10.64.0.2";
    private const string Pool = "10.64.0.0/24";

    public static async Task<int> RunAsync(int rounds, int seconds, string driverName)
    {
        if (driverName is not ("cli" or "native"))
        {
            Console.WriteLine("filter: driver must be 'cli' or 'native'");
            return 2;
        }
        var namespaces = new List<NetworkNamespace>();
        var processes = new List<IAsyncDisposable>();
        try
        {
            var client = await AddAsync(namespaces, "vbfc");
            var node = await AddAsync(namespaces, "vbfn");
            var internet = await AddAsync(namespaces, "vbfi");
            await NetworkNamespace.ConnectAsync(client, ClientHome + "/24", node, NodeHome + "/24");
            var (_, uplink) = await NetworkNamespace.ConnectAsync(internet, InternetIp + "/24", node, NodeUplinkIp + "/24");
            await node.ExecCheckedAsync("sysctl", "-qw", "net.ipv4.ip_forward=1");

            var nodeWg = await WireGuardGo.StartAsync(node, NetworkNamespace.UniqueName("wgbn"));
            processes.Add(nodeWg);
            var clientWg = await WireGuardGo.StartAsync(client, NetworkNamespace.UniqueName("wgbc"));
            processes.Add(clientWg);
            var (nodeKey, nodePublic) = await KeyPairAsync();
            var (clientKey, clientPublic) = await KeyPairAsync();
            // Private keys go to wg on stdin: never in a file or on a command line.
            (await node.ExecAsync("wg", ["set", nodeWg.InterfaceName, "private-key", "/dev/stdin", "listen-port", "51820",
                "peer", clientPublic, "allowed-ips", ClientTunnelIp + "/32"], nodeKey + "\n")).EnsureSuccess("wg set (node)");
            await node.ExecCheckedAsync("ip", "addr", "add", "10.64.0.1/24", "dev", nodeWg.InterfaceName);
            await node.ExecCheckedAsync("ip", "link", "set", nodeWg.InterfaceName, "up");
            (await client.ExecAsync("wg", ["set", clientWg.InterfaceName, "private-key", "/dev/stdin",
                "peer", nodePublic, "endpoint", NodeHome + ":51820", "allowed-ips", "0.0.0.0/0"], clientKey + "\n")).EnsureSuccess("wg set (client)");
            await client.ExecCheckedAsync("ip", "addr", "add", ClientTunnelIp + "/32", "dev", clientWg.InterfaceName);
            await client.ExecCheckedAsync("ip", "link", "set", clientWg.InterfaceName, "up");
            await client.ExecCheckedAsync("ip", "route", "add", "203.0.113.0/24", "dev", clientWg.InterfaceName);
            // The unfiltered path: the internet routes the pool back (with the table applied, NAT makes this route unused).
            await internet.ExecCheckedAsync("ip", "route", "add", Pool, "via", NodeUplinkIp);

            var server = internet.Start("timeout", ["3600", "iperf3", "-s", "--forceflush", "-B", InternetIp]);
            processes.Add(server);
            var table = NodeFirewall.Build(new FirewallOptions
            {
                TunnelInterface = nodeWg.InterfaceName,
                ClientPool4 = IPNetwork.Parse(Pool),
                ClientPool6 = IPNetwork.Parse("fd64:6400::/64"),
                Gateway4 = IPAddress.Parse("10.64.0.1"),
                Gateway6 = IPAddress.Parse("fd64:6400::1"),
                UplinkInterface = uplink,
            });
            INatDriver driver = driverName == "cli"
                ? new NftNatDriver(table, NullLogger<NftNatDriver>.Instance, NftCommand.InNamespace(node.Name))
                : new NativeNatDriver(table, NullLogger<NativeNatDriver>.Instance, $"/var/run/netns/{node.Name}");

            await WaitForTunnelAsync(client);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"filter: {table.RuleCount} rules ({driverName} driver), {rounds} rounds of {seconds} s per direction and mode"));
            var upRatios = new List<double>();
            var downRatios = new List<double>();
            for (var round = 1; round <= rounds; round++)
            {
                var modes = round % 2 == 1 ? new[] { true, false } : [false, true];
                var up = new Dictionary<bool, double>();
                var down = new Dictionary<bool, double>();
                foreach (var filtered in modes)
                {
                    if (filtered)
                    {
                        await driver.ApplyAsync(CancellationToken.None);
                    }
                    else
                    {
                        await driver.RemoveAsync(CancellationToken.None);
                    }
                    up[filtered] = await IperfAsync(client, seconds, reverse: false);
                    down[filtered] = await IperfAsync(client, seconds, reverse: true);
                    await CheckSourceAsync(server, filtered);
                }
                upRatios.Add(up[true] / up[false]);
                downRatios.Add(down[true] / down[false]);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"filter round {round}: upload filtered {up[true] / 1e6:F0} / unfiltered {up[false] / 1e6:F0} Mbit/s (ratio {upRatios[^1]:F3}), " +
                    $"download filtered {down[true] / 1e6:F0} / unfiltered {down[false] / 1e6:F0} Mbit/s (ratio {downRatios[^1]:F3})"));
            }
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"filter result: median throughput ratio filtered/unfiltered = upload {BenchLab.Median(upRatios):F3}, download {BenchLab.Median(downRatios):F3}"));
            return 0;
        }
        finally
        {
            for (var i = processes.Count - 1; i >= 0; i--)
            {
                await processes[i].DisposeAsync();
            }
            for (var i = namespaces.Count - 1; i >= 0; i--)
            {
                await namespaces[i].DisposeAsync();
            }
        }
    }

    private static async Task<NetworkNamespace> AddAsync(List<NetworkNamespace> namespaces, string prefix)
    {
        var ns = await NetworkNamespace.CreateAsync(prefix);
        namespaces.Add(ns);
        return ns;
    }

    private static async Task<(string PrivateKey, string PublicKey)> KeyPairAsync()
    {
        var key = (await ProcessRunner.RunAsync("wg", "genkey")).EnsureSuccess("wg genkey").StandardOutput.Trim();
        var pub = (await ProcessRunner.RunAsync("wg", ["pubkey"], key + "\n")).EnsureSuccess("wg pubkey").StandardOutput.Trim();
        return (key, pub);
    }

    private static async Task WaitForTunnelAsync(NetworkNamespace client)
    {
        for (var i = 0; i < 30; i++)
        {
            if ((await client.ExecAsync("ping", "-c", "1", "-W", "1", InternetIp)).ExitCode == 0)
            {
                return;
            }
        }
        throw new InvalidOperationException("the client does not reach the internet namespace through the tunnel");
    }

    /// <summary>bits per second received, from iperf3's JSON (upload, or download with -R).</summary>
    private static async Task<double> IperfAsync(NetworkNamespace client, int seconds, bool reverse)
    {
        List<string> args = ["-c", InternetIp, "-t", seconds.ToString(CultureInfo.InvariantCulture), "-J"];
        if (reverse)
        {
            args.Add("-R");
        }
        // The server may still be finishing the previous test for a moment: retry a busy answer.
        for (var attempt = 1; ; attempt++)
        {
            var result = await client.ExecAsync("iperf3", args, null, TimeSpan.FromSeconds(seconds + 30));
            using var json = JsonDocument.Parse(result.StandardOutput.Length > 0 ? result.StandardOutput : "{}");
            if (result.ExitCode == 0 && json.RootElement.TryGetProperty("end", out var end))
            {
                return end.GetProperty("sum_received").GetProperty("bits_per_second").GetDouble();
            }
            if (attempt == 5)
            {
                throw new InvalidOperationException($"iperf3 failed ({result.ExitCode}): {result.StandardError.Trim()} {result.StandardOutput.Trim()}");
            }
            await Task.Delay(500);
        }
    }

    /// <summary>The mode really is what it claims: iperf3's server saw the node's address (NAT) or the client's tunnel address (routed).</summary>
    private static async Task CheckSourceAsync(BackgroundProcess server, bool filtered)
    {
        await Task.Delay(100);
        var expected = filtered ? NodeUplinkIp : ClientTunnelIp;
        var last = server.Output.Split('\n').LastOrDefault(l => l.Contains("Accepted connection from", StringComparison.Ordinal)) ?? "";
        if (!last.Contains(expected, StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"{(filtered ? "filtered" : "unfiltered")} run: iperf3's last connection was not from {expected}: '{last.Trim()}'");
        }
    }
}
