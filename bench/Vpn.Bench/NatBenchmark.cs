using Microsoft.Extensions.Logging.Abstractions;
using Vpn.Core.Nat;
using Vpn.Core.Nat.Native;
using Vpn.Core.Netlink;

namespace Vpn.Bench;

/// <summary>
/// NAT: the cost of one apply of the node's full table (NodeFirewall with an uplink, egress allow and deny lists and
/// IPv6 egress off) with the native driver (one nf_tables netlink batch plus the read-back) against the cli driver
/// (<c>nft -f -</c>). Each round gives each driver a fresh namespace and times N applies after one untimed warm-up.
/// Both run the way core runs them, from inside the namespace (the bench thread enters it, so nft is started there
/// directly and the native driver opens its socket there and keeps it); the native driver is also timed the way a
/// namespaced core calls it (a socket opened through the namespace path on every apply, whose close waits for the
/// kernel to finish destroying the replaced table). Reports median ratios over rounds, never a target.
/// Run (as root, Release): dotnet run -c Release --project bench/Vpn.Bench -- nat [applies=200] [rounds=5]
/// </summary>
internal static class NatBenchmark
{
    public static async Task<int> RunAsync(int applies, int rounds)
    {
        var table = NodeFirewall.Build(new FirewallOptions
        {
            TableName = "vpn_bench",
            TunnelInterface = "wg0",
            ClientPool4 = IPNetwork.Parse("10.64.0.0/16"),
            ClientPool6 = IPNetwork.Parse("fd64:6400::/64"),
            Gateway4 = IPAddress.Parse("10.64.0.1"),
            Gateway6 = IPAddress.Parse("fd64:6400::1"),
            UplinkInterface = "eth0",
            EgressAllow = [IPNetwork.Parse("10.1.2.0/24"), IPNetwork.Parse("fd00:1::/48")],
            EgressDeny = [IPNetwork.Parse("203.0.113.0/25"), IPNetwork.Parse("2001:db8::/32")],
            Ipv6Egress = false,
        });
        var nativeRatios = new List<double>();
        var pathRatios = new List<double>();
        for (var round = 1; round <= rounds; round++)
        {
            await using var cliNs = await NetworkNamespace.CreateAsync("vbnat");
            await using var nativeNs = await NetworkNamespace.CreateAsync("vbnat");
            await using var pathNs = await NetworkNamespace.CreateAsync("vbnat");
            AssertChildrenStartInside(cliNs);

            var cli = new NftNatDriver(table, NullLogger<NftNatDriver>.Instance, NftCommand.Default);
            using var native = new NativeNatDriver(table, NullLogger<NativeNatDriver>.Instance);
            using var viaPath = new NativeNatDriver(table, NullLogger<NativeNatDriver>.Instance, PathOf(pathNs));
            // Alternate which driver goes first, so neither always runs on a cooler or warmer machine.
            TimeSpan cliTime, nativeTime;
            if (round % 2 == 1)
            {
                cliTime = TimeInside(cliNs, cli, applies);
                nativeTime = TimeInside(nativeNs, native, applies);
            }
            else
            {
                nativeTime = TimeInside(nativeNs, native, applies);
                cliTime = TimeInside(cliNs, cli, applies);
            }
            var pathTime = Time(viaPath, applies);
            await AssertSameTableAsync(cliNs, nativeNs, table.Name);
            await AssertSameTableAsync(cliNs, pathNs, table.Name);

            nativeRatios.Add(nativeTime / cliTime);
            pathRatios.Add(pathTime / cliTime);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"nat round {round}: {table.RuleCount} rules x {applies} applies: cli {PerApply(cliTime, applies):F3} ms/apply, native {PerApply(nativeTime, applies):F3} ms/apply "
                + $"(ratio {nativeRatios[^1]:F3}), native via namespace path {PerApply(pathTime, applies):F3} ms/apply (ratio {pathRatios[^1]:F3})"));
        }
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"nat result: {table.RuleCount} rules, median per-apply time ratio native/cli = {BenchLab.Median(nativeRatios):F3}, "
            + $"native via namespace path/cli = {BenchLab.Median(pathRatios):F3}"));
        return 0;
    }

    /// <summary>Warm-up plus <paramref name="applies"/> timed applies, run from a thread inside the namespace.</summary>
    private static TimeSpan TimeInside(NetworkNamespace ns, INatDriver driver, int applies) =>
        NetworkNamespaceThread.Run(PathOf(ns), () => Time(driver, applies));

    private static TimeSpan Time(INatDriver driver, int applies)
    {
        driver.ApplyAsync(CancellationToken.None).GetAwaiter().GetResult();
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < applies; i++)
        {
            // Blocking on purpose: the cli driver starts nft on this thread, so nft inherits the namespace.
            driver.ApplyAsync(CancellationToken.None).GetAwaiter().GetResult();
        }
        return clock.Elapsed;
    }

    private static double PerApply(TimeSpan total, int applies) => total.TotalMilliseconds / applies;

    /// <summary>
    /// Guards the host's firewall: a child started from a thread inside the namespace must run inside it (fork copies
    /// the calling thread's namespaces). A fresh namespace has only "lo"; the bench stops before any nft run otherwise.
    /// </summary>
    private static void AssertChildrenStartInside(NetworkNamespace ns)
    {
        var links = NetworkNamespaceThread.Run(PathOf(ns), () => ProcessRunner.RunAsync("ip", "-o", "link", "show").GetAwaiter().GetResult());
        var names = links.EnsureSuccess("ip -o link show").StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        if (names.Length != 1 || !names[0].Contains(" lo:", StringComparison.Ordinal))
        {
            throw new InvalidOperationException("A child process started inside the namespace saw the host's links; refusing to run nft.");
        }
    }

    /// <summary>Both drivers must have done the same work: nft lists the same table.</summary>
    private static async Task AssertSameTableAsync(NetworkNamespace a, NetworkNamespace b, string table)
    {
        if (await a.ExecCheckedAsync("nft", "list", "table", "inet", table) != await b.ExecCheckedAsync("nft", "list", "table", "inet", table))
        {
            throw new InvalidOperationException($"The drivers left different tables in {a.Name} and {b.Name}.");
        }
    }

    private static string PathOf(NetworkNamespace ns) => $"/var/run/netns/{ns.Name}";
}
