using Vpn.Bench;

// Benchmarks report ratios measured in one run against a baseline on the same device, never absolute times:
// machines here are shared and noisy. Run as root (network namespace + wireguard-go), in Release.
var command = args.Length > 0 ? args[0] : "help";
return command switch
{
    "p1" => await ProvisioningBenchmark.RunAsync(args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 10_000,
        args.Length > 2 ? int.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture) : 3),
    "export" => await ExportMemoryBenchmark.RunAsync(args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 10_000, args.Length > 2 ? int.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture) : 100_000),
    "p2" => await ReconcileBenchmark.RunAsync(args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 64_000,
        args.Length > 2 ? double.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture) : 0.01,
        args.Length > 3 ? int.Parse(args[3], System.Globalization.CultureInfo.InvariantCulture) : 3),
    // nat [applies=200] [rounds=5]: per-apply time of the native nftables driver against the cli (nft) driver.
    "nat" => await NatBenchmark.RunAsync(args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 200,
        args.Length > 2 ? int.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture) : 5),
    // filter [rounds=5] [seconds=5] [driver=cli]: a client's forwarded throughput through the node with its filter table vs without.
    "filter" => await FilterThroughputBenchmark.RunAsync(args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 5,
        args.Length > 2 ? int.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture) : 5, args.Length > 3 ? args[3] : "cli"),
    // p3 [customers=3200] [concurrencies=8,32] [replicas=2] [cores=1]: starts/s end to end vs pgbench's minimal claim.
    "p3" => await Vpn.Bench.Fleet.FleetBenchmarks.P3Async(Arg(1, 3200), args.Length > 2 ? [.. args[2].Split(',').Select(int.Parse)] : [8, 32], Arg(3, 2), Arg(4, 1)),
    // p4 [starts=3200] [concurrency=32] [idle=9990]: the same start with 10 and with 10,000 registered nodes.
    "p4" => await Vpn.Bench.Fleet.FleetBenchmarks.P4Async(Arg(1, 3200), Arg(2, 32), Arg(3, 9990)),
    // p5 [sessions=10000]: entry RSS per 10k live sessions, core RSS per 10k peers beyond wireguard-go's.
    "p5" => await Vpn.Bench.Fleet.FleetBenchmarks.P5Async(Arg(1, 10_000)),
    // storm [customers=10000] [mode=all|plain|core-kill|switchover] [window=60]: a reconnect storm over 2 replicas and 3 nodes, invariants checked.
    "storm" => await Vpn.Bench.Fleet.StormBenchmark.RunAsync(Arg(1, 10_000), args.Length > 2 ? args[2] : "all", Arg(3, 60)),
    // usage [sessions=10000] [rounds=3]: usage reports recorded 400 sessions per statement vs one per statement.
    "usage" => await UsageReportBenchmark.RunAsync(Arg(1, 10_000), Arg(2, 3)),
    _ => Usage(),
};

int Arg(int index, int fallback) => args.Length > index ? int.Parse(args[index], System.Globalization.CultureInfo.InvariantCulture) : fallback;

static int Usage()
{
    Console.WriteLine("usage: dotnet run -c Release --project bench/Vpn.Bench -- p1 [peers=10000] [rounds=3] | p2 [peers=64000] [drift=0.01] [rounds=3] | export [small=10000] [large=100000] | nat [applies=200] [rounds=5] | filter [rounds=5] [seconds=5] [driver=cli|native] | p3 [customers=3200] [concurrencies=8,32] [replicas=2] [cores=1] | p4 [starts=3200] [concurrency=32] [idle=9990] | p5 [sessions=10000] | storm [customers=10000] [mode=all|plain|core-kill|switchover] [window=60] | usage [sessions=10000] [rounds=3]");
    return 2;
}
