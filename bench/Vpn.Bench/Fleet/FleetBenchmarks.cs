using Npgsql;

namespace Vpn.Bench.Fleet;

/// <summary>
/// p3: session starts end to end (HTTP → entry → PostgreSQL → gRPC → core → UAPI on wireguard-go) across R entry replicas
/// against pgbench's minimal claim on the same database at the same concurrency. p4: the same start with 10 and with
/// 10,000 registered nodes. p5: entry's and core's memory per 10k live sessions / peers.
/// </summary>
internal static class FleetBenchmarks
{
    private const int PgBenchSeconds = 10;

    // Entry runs with tiered compilation (as deployed): its start path reaches final code after a few thousand calls.
    private const int WarmUpStarts = 2000;

    public static async Task<int> P3Async(int customers, IReadOnlyList<int> concurrencies, int replicas, int cores)
    {
        await using var rig = await FleetRig.StartAsync(replicas, cores);
        var uris = rig.Entries.Select(e => e.BaseAddress).ToArray();
        Console.WriteLine($"p3: {replicas} entry replicas, {cores} cores, {Environment.ProcessorCount} CPUs; load: {Load()}");
        // Warm-up (tiered JIT to its final code, pools, HTTP/2 connections to core): not counted.
        var warm = await StartLoad.RunAsync(uris, await rig.SeedCustomersAsync(WarmUpStarts), concurrencies.Max());
        Console.WriteLine($"p3 warm-up: {warm.Describe()}");
        await PgBench.PrepareAsync(rig, cores);
        foreach (var c in concurrencies)
        {
            var work = await rig.SeedCustomersAsync(customers);
            var cpuBefore = rig.CpuByPart();
            var result = await StartLoad.RunAsync(uris, work, c);
            var cpuAfter = rig.CpuByPart();
            var loadAfterStarts = Load();
            var tps = await PgBench.RunAsync(rig, c, PgBenchSeconds, cores);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"p3 c={c}: starts {result.Describe()}; pgbench minimal claim {tps:F0} TPS; ratio {result.PerSecond / tps:F3} (target >= 0.5); load {loadAfterStarts}"));
            Console.WriteLine($"p3 c={c} CPU ms per start: " + string.Join(", ", cpuAfter.Select(p =>
                string.Create(CultureInfo.InvariantCulture, $"{p.Key} {(p.Value - cpuBefore[p.Key]) * 1000 / Math.Max(1, result.Started):F2}"))) +
                string.Create(CultureInfo.InvariantCulture, $" (wall {result.Elapsed.TotalMilliseconds / Math.Max(1, result.Started):F2} ms per start on 2 CPUs)"));
        }
        return 0;
    }

    public static async Task<int> P4Async(int starts, int concurrency, int idleNodes)
    {
        await using var rig = await FleetRig.StartAsync(replicas: 2, cores: 1);
        var uris = rig.Entries.Select(e => e.BaseAddress).ToArray();
        Console.WriteLine($"p4: 2 entry replicas, 1 core; {starts} starts per round at c={concurrency}; load: {Load()}");
        var warm = await StartLoad.RunAsync(uris, await rig.SeedCustomersAsync(WarmUpStarts), concurrency);
        Console.WriteLine($"p4 warm-up: {warm.Describe()}");
        var few = new List<(double Rate, double Cpu)>();
        var many = new List<(double Rate, double Cpu)>();
        foreach (var withMany in new[] { false, true, false, true })
        {
            await rig.RemoveIdleNodesAsync();
            await rig.RegisterIdleNodesAsync(withMany ? idleNodes : 9);
            await Task.Delay(TimeSpan.FromSeconds(6)); // every replica's node cache has seen the change
            var work = await rig.SeedCustomersAsync(starts);
            var cpuBefore = rig.Entries.Sum(e => FleetRig.CpuSeconds(e.Pid));
            var result = await StartLoad.RunAsync(uris, work, concurrency);
            var cpu = rig.Entries.Sum(e => FleetRig.CpuSeconds(e.Pid)) - cpuBefore;
            var nodes = await rig.ScalarAsync("select count(*) from vpn_nodes");
            (withMany ? many : few).Add((result.PerSecond, cpu));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"p4 {nodes} nodes: {result.Describe()}; entry CPU {cpu:F1} s; load {Load()}"));
            if (withMany && many.Count == 1)
            {
                await ExplainClaimAsync(rig);
            }
        }
        var rate = few.Average(f => f.Rate) / many.Average(m => m.Rate);
        var cpuRatio = many.Average(m => m.Cpu) / few.Average(f => f.Cpu);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"p4 result: cost with {idleNodes + 1} nodes / with 10 nodes: throughput {rate:F2}x, entry CPU {cpuRatio:F2}x (target <= 1.2)"));
        return 0;
    }

    public static async Task<int> P5Async(int sessions)
    {
        await using var rig = await FleetRig.StartAsync(replicas: 1, cores: 1);
        var uris = rig.Entries.Select(e => e.BaseAddress).ToArray();
        var entry = rig.Entries[0];
        var core = rig.Cores[0];
        await StartLoad.RunAsync(uris, await rig.SeedCustomersAsync(100), 8); // warm-up: JIT and pools, 100 sessions
        await Task.Delay(TimeSpan.FromSeconds(5));
        // Two steps of N sessions each: memory that grows with sessions grows in both; a heap growing once to its working size does not.
        var steps = new List<(long Entry, long Core, long Wg)> { (FleetRig.RssKib(entry.Pid), FleetRig.RssKib(core.CorePid), FleetRig.RssKib(core.WireGuardPid)) };
        for (var step = 1; step <= 2; step++)
        {
            var result = await StartLoad.RunAsync(uris, await rig.SeedCustomersAsync(sessions), 32);
            await Task.Delay(TimeSpan.FromSeconds(35)); // one reconcile pass of core over the full set
            steps.Add((FleetRig.RssKib(entry.Pid), FleetRig.RssKib(core.CorePid), FleetRig.RssKib(core.WireGuardPid)));
            var (before, after) = (steps[^2], steps[^1]);
            var per10k = 10_000.0 / Math.Max(1, result.Started) / 1024.0;
            Console.WriteLine($"p5 step {step}: {result.Describe()}; load {Load()}");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"p5 step {step} VmRSS (MiB): entry {before.Entry / 1024.0:F1} -> {after.Entry / 1024.0:F1}, core {before.Core / 1024.0:F1} -> {after.Core / 1024.0:F1}, " +
                $"wireguard-go {before.Wg / 1024.0:F1} -> {after.Wg / 1024.0:F1}; per 10k live sessions: entry +{(after.Entry - before.Entry) * per10k:F1} MiB, " +
                $"core +{(after.Core - before.Core) * per10k:F1} MiB beyond wireguard-go's own +{(after.Wg - before.Wg) * per10k:F1} MiB"));
        }
        // Entry keeps a rate-limit window per customer who started in the last minute: once they expire, what is left.
        await Task.Delay(TimeSpan.FromSeconds(75));
        var idle = FleetRig.RssKib(entry.Pid);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"p5 75 s later (rate-limit windows expired): entry VmRSS {idle / 1024.0:F1} MiB, +{(idle - steps[0].Entry) / 2.0 * 10_000 / sessions / 1024.0:F1} MiB per 10k live sessions over both steps"));
        return 0;
    }

    /// <summary>EXPLAIN (ANALYZE, BUFFERS) of every statement inside one claim, through auto_explain's nested statements (sent to this client as LOG notices).</summary>
    private static async Task ExplainClaimAsync(FleetRig rig)
    {
        var (customer, device) = (await rig.SeedCustomersAsync(1))[0];
        var node = rig.Cores[0].NodeId;
        await using var connection = new NpgsqlConnection(rig.ConnectionString);
        var plans = new List<string>();
        connection.Notice += (_, e) => plans.Add(e.Notice.MessageText);
        await connection.OpenAsync();
        await using (var setup = new NpgsqlCommand("""
            load 'auto_explain'; set auto_explain.log_min_duration = 0; set auto_explain.log_analyze = on; set auto_explain.log_buffers = on;
            set auto_explain.log_nested_statements = on; set client_min_messages = log;
            """, connection))
        {
            await setup.ExecuteNonQueryAsync();
        }
        // Twice, the plans of the second only: the first call in a backend also compiles the plpgsql functions.
        for (var round = 0; round < 2; round++)
        {
            plans.Clear();
            await using var claim = new NpgsqlCommand(ClaimProbeSql, connection);
            claim.Parameters.AddWithValue("customer", customer);
            claim.Parameters.AddWithValue("device", device);
            claim.Parameters.AddWithValue("node", node);
            await claim.ExecuteNonQueryAsync();
        }
        Console.WriteLine("p4 plans of one claim with " + await rig.ScalarAsync("select count(*) from vpn_nodes") + " nodes:\n" + string.Join("\n", plans));
    }

    /// <summary>
    /// One start's claim as entry sends it (rolled back): claim_session_start, one statement; auto_explain shows the plan
    /// of each statement inside it. (Before migration 0007 a claim was a node lock, a count, an insert and a commit, after
    /// a read of every node with its live count.)
    /// </summary>
    internal const string ClaimProbeSql = """
        begin;
        select status from claim_session_start(gen_random_uuid(), @customer, @device, @node, sha256(gen_random_uuid()::text::bytea), 'bench',
            null, null, null, now(), false, true, now() - interval '60 seconds', null);
        rollback;
        """;

    private static string Load() => File.ReadAllText("/proc/loadavg").Trim();
}
