using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using Npgsql;
using Vpn.Domain.WireGuard;
using Vpn.Harness.Postgres;

namespace Vpn.Bench.Fleet;

/// <summary>
/// The whole control plane as real processes for the fleet benchmarks (p3, p4, p5): a private throwaway PostgreSQL,
/// N entry replicas (Release build, `dotnet Vpn.Entry.dll`, migrated by the first one), M cores each in its own network
/// namespace on its own wireguard-go device, reporting heartbeats and reconciling with entry over entry's unix socket.
/// Customers, subscriptions and devices are seeded by SQL (thousands per second); extra idle nodes too.
/// </summary>
internal sealed class FleetRig : IAsyncDisposable
{
    public const string Region = "bench";
    public const string PlanCode = "bench";

    private readonly List<EntryReplica> _entries = [];
    private readonly List<CoreNode> _cores = [];
    private readonly string _workDirectory = Directory.CreateTempSubdirectory("vpn-fleet-").FullName;

    private FleetRig(PostgresServer? server, PostgresReplicationPair? pair, string connectionString, int coreReconcileSeconds)
    {
        Server = server;
        Pair = pair;
        ConnectionString = connectionString;
        CoreReconcileSeconds = coreReconcileSeconds;
    }

    /// <summary>The single server, unless the rig runs on a replication pair.</summary>
    public PostgresServer? Server { get; }

    /// <summary>Primary + synchronous standby (entry's DATABASE_URL names both hosts), for switchover runs.</summary>
    public PostgresReplicationPair? Pair { get; }

    /// <summary>CORE_RECONCILE_SECS of every core.</summary>
    public int CoreReconcileSeconds { get; }

    /// <summary>DATABASE_URL as entry gets it.</summary>
    public string DatabaseUrl => Pair is null ? PostgresServer.ToUrl(ConnectionString) : PostgresReplicationPair.ToUrl(ConnectionString);

    public string ConnectionString { get; }

    public string DatabaseName => new NpgsqlConnectionStringBuilder(ConnectionString).Database!;

    public string AdminToken { get; } = Convert.ToHexString(RandomNumberGenerator.GetBytes(16)).ToLowerInvariant();

    public IReadOnlyList<EntryReplica> Entries => _entries;

    public IReadOnlyList<CoreNode> Cores => _cores;

    /// <summary>Starts PostgreSQL, <paramref name="replicas"/> entries and <paramref name="cores"/> cores, registers the plan and the nodes and waits until every node is healthy.</summary>
    public static async Task<FleetRig> StartAsync(int replicas, int cores, IDictionary<string, string?>? entrySettings = null,
        bool replicated = false, int coreReconcileSeconds = 30)
    {
        FleetRig rig;
        if (replicated)
        {
            var pair = await PostgresReplicationPair.StartAsync(synchronous: true);
            rig = new FleetRig(null, pair, await pair.CreateDatabaseAsync("fleet"), coreReconcileSeconds);
        }
        else
        {
            var server = await PostgresServer.StartNewAsync();
            rig = new FleetRig(server, null, await server.CreateDatabaseAsync("fleet"), coreReconcileSeconds);
        }
        try
        {
            // FLEET_ENTRY_SETTINGS="K=V;K2=V2": extra environment for every entry replica (experiments, e.g. runtime knobs).
            var settings = new Dictionary<string, string?>(entrySettings ?? new Dictionary<string, string?>());
            foreach (var pair in (Environment.GetEnvironmentVariable("FLEET_ENTRY_SETTINGS") ?? "").Split(';', StringSplitOptions.RemoveEmptyEntries))
            {
                var kv = pair.Split('=', 2);
                settings[kv[0]] = kv.Length == 2 ? kv[1] : null;
            }
            for (var i = 0; i < replicas; i++)
            {
                rig._entries.Add(await EntryReplica.StartAsync(rig, i, settings));
            }
            using var admin = rig.AdminClient();
            (await admin.PostAsJsonAsync("/v1/admin/plans", new { code = PlanCode, name = "Bench", max_devices = 5, allowed_regions = new[] { Region } }))
                .EnsureSuccessStatusCode();
            for (var i = 0; i < cores; i++)
            {
                rig._cores.Add(await CoreNode.StartAsync(rig, i));
            }
            await rig.WaitForHealthyNodesAsync(cores);
            return rig;
        }
        catch
        {
            await rig.DisposeAsync();
            throw;
        }
    }

    public HttpClient AdminClient(int replica = 0)
    {
        var client = new HttpClient { BaseAddress = _entries[replica].BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
        client.DefaultRequestHeaders.Add("x-admin-token", AdminToken);
        return client;
    }

    public string WorkDirectory => _workDirectory;

    /// <summary>Customers with an active subscription to the bench plan and one device each, inserted in one statement.</summary>
    public async Task<IReadOnlyList<(Guid Customer, Guid Device)>> SeedCustomersAsync(int count)
    {
        var customers = Enumerable.Range(0, count).Select(_ => Guid.NewGuid()).ToArray();
        var devices = Enumerable.Range(0, count).Select(_ => Guid.NewGuid()).ToArray();
        var keys = Enumerable.Range(0, count).Select(_ => WireGuardKey.Generate().ToBase64()).ToArray();
        await using var connection = new NpgsqlConnection(ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("""
            insert into customers (id) select unnest(@customers);
            insert into customer_subscriptions (customer_id, plan_code, status, started_at) select unnest(@customers), @plan, 'active', now();
            insert into devices (id, customer_id, name, public_key) select t.d, t.c, 'bench', t.k from unnest(@devices, @customers, @keys) as t(d, c, k);
            """, connection);
        command.Parameters.AddWithValue("customers", customers);
        command.Parameters.AddWithValue("devices", devices);
        command.Parameters.AddWithValue("keys", keys);
        command.Parameters.AddWithValue("plan", PlanCode);
        command.CommandTimeout = 300;
        await command.ExecuteNonQueryAsync();
        return [.. customers.Zip(devices)];
    }

    /// <summary>
    /// Registers <paramref name="count"/> idle nodes by SQL: healthy with a fresh heartbeat, but in other regions (100 of
    /// them), so every start's selection has them to consider and none to pick. Their core endpoints lead nowhere.
    /// </summary>
    public async Task RegisterIdleNodesAsync(int count)
    {
        await ExecuteAsync($"""
            insert into vpn_nodes (id, name, region, country_code, capacity, public_endpoint, public_key, core_endpoint, healthy, last_heartbeat_at)
            select gen_random_uuid(), 'idle-' || g, 'idle-' || (g % 100), 'DE', 1000, '192.0.2.1:51820',
                   encode(sha256(('idle-' || g)::bytea), 'base64'), 'http://192.0.2.1:50051', true, now() + interval '1 hour'
            from generate_series(1, {count}) g
            """);
        await ExecuteAsync("analyze vpn_nodes");
    }

    public Task RemoveIdleNodesAsync() => ExecuteAsync("delete from vpn_nodes where name like 'idle-%'");

    public async Task ExecuteAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection) { CommandTimeout = 300 };
        await command.ExecuteNonQueryAsync();
    }

    public async Task<long> ScalarAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection) { CommandTimeout = 300 };
        return Convert.ToInt64(await command.ExecuteScalarAsync(), CultureInfo.InvariantCulture);
    }

    private async Task WaitForHealthyNodesAsync(int expected)
    {
        var deadline = DateTime.UtcNow.AddSeconds(90);
        while (await ScalarAsync("select count(*) from vpn_nodes where healthy and name like 'core-%'") < expected)
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new InvalidOperationException("cores never reported healthy:\n" + string.Join("\n", _cores.Select(c => c.Output)));
            }
            await Task.Delay(200);
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var core in _cores)
        {
            await core.DisposeAsync();
        }
        foreach (var entry in _entries)
        {
            await entry.DisposeAsync();
        }
        if (Server is not null)
        {
            await Server.DisposeAsync();
        }
        if (Pair is not null)
        {
            await Pair.DisposeAsync();
        }
        try
        {
            Directory.Delete(_workDirectory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    /// <summary>utime + stime of a process in seconds (from /proc/&lt;pid&gt;/stat; clock ticks of 100 Hz).</summary>
    public static double CpuSeconds(int pid, bool withReapedChildren = false)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            var ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
            if (withReapedChildren)
            {
                ticks += long.Parse(fields[13], CultureInfo.InvariantCulture) + long.Parse(fields[14], CultureInfo.InvariantCulture);
            }
            return ticks / 100.0;
        }
        catch (IOException)
        {
            return 0; // gone meanwhile
        }
    }

    /// <summary>
    /// CPU seconds so far of each part: the entry replicas, the cores, the wireguard-go devices, PostgreSQL (the
    /// postmaster and its live backends, plus backends already gone) and this process (the load driver).
    /// </summary>
    public IReadOnlyDictionary<string, double> CpuByPart()
    {
        var dataDirectory = Server?.DataDirectory ?? throw new InvalidOperationException("CPU by part needs the single-server rig.");
        var postmaster = int.Parse(File.ReadLines(Path.Combine(dataDirectory, "postmaster.pid")).First(), CultureInfo.InvariantCulture);
        var postgres = CpuSeconds(postmaster, withReapedChildren: true);
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(dir), CultureInfo.InvariantCulture, out var pid) && ParentOf(pid) == postmaster)
            {
                postgres += CpuSeconds(pid);
            }
        }
        return new Dictionary<string, double>
        {
            ["entry"] = _entries.Sum(e => CpuSeconds(e.Pid)),
            ["core"] = _cores.Sum(c => CpuSeconds(c.CorePid)),
            ["wireguard-go"] = _cores.Sum(c => CpuSeconds(c.WireGuardPid)),
            ["postgres"] = postgres,
            ["driver"] = Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds,
        };
    }

    private static int ParentOf(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1], CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
            return -1;
        }
    }

    /// <summary>VmRSS of a process in KiB.</summary>
    public static long RssKib(int pid) =>
        long.Parse(File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1],
            CultureInfo.InvariantCulture);

    internal static string ServiceDll(string project) =>
        Path.Combine(BenchLab.RepoRoot(), "src", project, "bin", "Release", "net10.0", project + ".dll");

    internal static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    internal static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };
}
