using System.Diagnostics;
using Npgsql;
using Vpn.Harness.Postgres;

namespace Vpn.Bench;

/// <summary>
/// Usage reports (quotas): a node's counters recorded by record_node_usage (migration 0008) on a throwaway PostgreSQL
/// with N live sessions of N customers on one node, every session's counters grown once per round. The batch core
/// sends (400 sessions per statement) against a baseline of one statement per session, in the same process on the same
/// database; the result is the ratio of sessions recorded per second (expected ≥ 10). A replay of the last round (the
/// same counters again, which must add nothing) is timed too, and the totals are checked against what was sent.
/// </summary>
internal static class UsageReportBenchmark
{
    private const int Batch = 400;
    private const double MinRatio = 10;

    private const string SeedSql = """
        insert into plans (code, name, max_devices, allowed_regions, monthly_data_bytes) values ('metered', 'Metered', 5, '{eu-west}', 1099511627776);
        insert into vpn_nodes (id, name, region, capacity, public_endpoint, public_key, core_endpoint, healthy)
            values (@node, 'bench-node', 'eu-west', 65535, '192.0.2.1:51820', 'bench-key', 'http://127.0.0.1:1', true);
        insert into customers (id) select gen_random_uuid() from generate_series(1, @n);
        insert into customer_subscriptions (customer_id, plan_code, status, started_at) select id, 'metered', 'active', now() - interval '3 days' from customers;
        insert into sessions (id, customer_id, device_public_key, node_id, state, session_key_hash, region, created_at, updated_at)
            select gen_random_uuid(), id, 'k' || row_number() over (), @node, 'active', sha256(id::text::bytea), 'eu-west', now(), now() from customers;
        analyze;
        """;

    public static async Task<int> RunAsync(int sessions, int rounds)
    {
        await using var server = await PostgresServer.StartNewAsync();
        var connectionString = await server.CreateDatabaseAsync("usagebench");
        await using var dataSource = NpgsqlDataSource.Create(connectionString);
        await MigrateAsync(dataSource);
        var node = Guid.NewGuid();
        await using (var seed = dataSource.CreateCommand(SeedSql))
        {
            seed.Parameters.AddWithValue("node", node);
            seed.Parameters.AddWithValue("n", sessions);
            seed.CommandTimeout = 600;
            await seed.ExecuteNonQueryAsync();
        }
        var ids = new List<Guid>();
        await using (var read = dataSource.CreateCommand("select id from sessions order by id"))
        await using (var reader = await read.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                ids.Add(reader.GetGuid(0));
            }
        }
        var counters = ids.ToDictionary(id => id, _ => (Rx: 0L, Tx: 0L));
        long sent = 0;
        double batchedRate = 0, singleRate = 0, replayRate = 0;
        for (var round = 1; round <= rounds; round++)
        {
            // Batched and single alternate on the same sessions: each grows every session by 1,000 + 500 bytes.
            batchedRate = await RoundAsync(dataSource, node, ids, counters, Batch, grow: true);
            sent += ids.Count * 1500L;
            singleRate = await RoundAsync(dataSource, node, ids, counters, 1, grow: true);
            sent += ids.Count * 1500L;
            replayRate = await RoundAsync(dataSource, node, ids, counters, Batch, grow: false);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"usage round {round}: batched {batchedRate:F0} sessions/s, one per statement {singleRate:F0} sessions/s, replay {replayRate:F0} sessions/s"));
        }
        await using var total = dataSource.CreateCommand("select coalesce(sum(used_bytes), 0)::bigint from customer_usage");
        var recorded = (long)(await total.ExecuteScalarAsync())!;
        var ratio = batchedRate / singleRate;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"usage result: {sessions} sessions, batch {Batch}: {batchedRate:F0} vs {singleRate:F0} sessions/s, ratio {ratio:F1} (target >= {MinRatio:F0}); " +
            $"replay {replayRate:F0} sessions/s; recorded {recorded} bytes of {sent} sent ({(recorded == sent ? "exact" : "MISMATCH")})"));
        return ratio >= MinRatio && recorded == sent ? 0 : 1;
    }

    private static async Task<double> RoundAsync(NpgsqlDataSource dataSource, Guid node, List<Guid> ids, Dictionary<Guid, (long Rx, long Tx)> counters,
        int batch, bool grow)
    {
        if (grow)
        {
            foreach (var id in ids)
            {
                var (rx, tx) = counters[id];
                counters[id] = (rx + 1000, tx + 500);
            }
        }
        var watch = Stopwatch.StartNew();
        await using var connection = await dataSource.OpenConnectionAsync();
        foreach (var chunk in ids.Chunk(batch))
        {
            await using var command = new NpgsqlCommand("select count(*) from record_node_usage(@node, @s, @g, @rx, @tx, now())", connection);
            command.Parameters.AddWithValue("node", node);
            command.Parameters.AddWithValue("s", chunk);
            command.Parameters.AddWithValue("g", chunk.Select(_ => 7L).ToArray());
            command.Parameters.AddWithValue("rx", chunk.Select(id => counters[id].Rx).ToArray());
            command.Parameters.AddWithValue("tx", chunk.Select(id => counters[id].Tx).ToArray());
            await command.ExecuteScalarAsync();
        }
        return ids.Count / watch.Elapsed.TotalSeconds;
    }

    /// <summary>db/migrations/*.sql in order, as entry's migrator applies them (the benchmark does not reference entry).</summary>
    private static async Task MigrateAsync(NpgsqlDataSource dataSource)
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "Vpn.slnx")))
        {
            directory = directory.Parent;
        }
        var migrations = Path.Combine(directory?.FullName ?? throw new InvalidOperationException("repository root not found"), "db", "migrations");
        foreach (var file in Directory.GetFiles(migrations, "*.sql").Order(StringComparer.Ordinal))
        {
            await using var command = dataSource.CreateCommand(await File.ReadAllTextAsync(file));
            await command.ExecuteNonQueryAsync();
        }
    }
}
