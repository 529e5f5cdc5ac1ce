using Npgsql;
using Vpn.Harness.Postgres;

namespace Vpn.Bench.Fleet;

/// <summary>
/// The database's own limit for a start: pgbench running the minimal claim — one statement, one round trip — on the
/// same server and database as entry, at the same client concurrency: the node's row locked with its capacity checked
/// (a conditional counter update) and the customer's slot claimed (an insert under a unique index). Scratch tables
/// pgb_nodes / pgb_claims, so entry's own tables are untouched.
/// </summary>
internal static class PgBench
{
    private const string Script = """
        \set node random(1, :nodes)
        with n as (update pgb_nodes set live = live + 1 where id = :node and live < capacity returning id)
        insert into pgb_claims (customer_id, node_id, claimed_at) select gen_random_uuid(), id, now() from n;
        """;

    public static async Task PrepareAsync(FleetRig rig, int nodes)
    {
        await rig.ExecuteAsync($"""
            drop table if exists pgb_claims; drop table if exists pgb_nodes;
            create table pgb_nodes (id int primary key, capacity int not null, live int not null default 0);
            create table pgb_claims (customer_id uuid not null, node_id int not null references pgb_nodes (id), claimed_at timestamptz not null);
            create unique index pgb_claims_one_per_customer on pgb_claims (customer_id);
            insert into pgb_nodes (id, capacity) select g, 1000000000 from generate_series(1, {nodes}) g;
            """);
    }

    /// <summary>pgbench -M prepared at <paramref name="clients"/> connections for <paramref name="seconds"/>; TPS without connection time.</summary>
    public static async Task<double> RunAsync(FleetRig rig, int clients, int seconds, int nodes)
    {
        var script = Path.Combine(rig.WorkDirectory, "claim.sql");
        await File.WriteAllTextAsync(script, Script);
        var pgbench = Path.Combine(Environment.GetEnvironmentVariable("TEST_POSTGRES_BIN_DIR") ?? "/usr/lib/postgresql/15/bin", "pgbench");
        var settings = new NpgsqlConnectionStringBuilder(rig.ConnectionString);
        var result = await ProcessRunner.RunAsync(pgbench,
            ["-n", "-M", "prepared", "-f", script, "-D", $"nodes={nodes}", "-c", clients.ToString(CultureInfo.InvariantCulture),
             "-j", Math.Min(clients, 2).ToString(CultureInfo.InvariantCulture), "-T", seconds.ToString(CultureInfo.InvariantCulture),
             "-h", settings.Host!, "-p", settings.Port.ToString(CultureInfo.InvariantCulture), "-U", settings.Username ?? "postgres", settings.Database!],
            timeout: TimeSpan.FromSeconds(seconds + 60));
        result.EnsureSuccess("pgbench");
        var line = result.StandardOutput.Split('\n').First(l => l.StartsWith("tps = ", StringComparison.Ordinal));
        return double.Parse(line.Split(' ')[2], CultureInfo.InvariantCulture);
    }
}
