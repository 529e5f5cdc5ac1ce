using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging.Abstractions;
using Vpn.Entry.Data;
using Vpn.Harness;

namespace Vpn.Entry.Tests.Data;

/// <summary>The migrations and the <c>migrate</c> command, on PostgreSQL (each test on its own empty database).</summary>
public sealed partial class MigrationTests
{
    /// <summary>
    /// The advisory lock key every entry binary migrates under ("vpn-migr"). Pinned on purpose: if a release changed it,
    /// old and new replicas migrating during a rollout would no longer exclude each other.
    /// </summary>
    private const long MigrationLockKey = 0x76706e2d6d696772;

    private static readonly string[] ModelTables =
    [
        "customers", "oauth_identities", "plans", "customer_subscriptions", "devices", "vpn_nodes", "sessions",
        "revoked_tokens", "audit_events", "idempotency_keys",
    ];

    /// <summary>The unique indexes behind the database-enforced invariants (architecture.md 2 and 3, style.md "Data").</summary>
    private static readonly string[] InvariantIndexes =
    [
        "sessions_one_live_per_customer", "sessions_node_address", "customer_subscriptions_one_open", "devices_public_key_key",
    ];

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task IsCurrentAsync_EmptyDatabase_False()
    {
        await using var db = await TestDatabase.CreateEmptyAsync("migrate_empty");

        Assert.False(await NewMigrator(db.DataSource).IsCurrentAsync(Ct));
    }

    [Fact]
    public async Task IsCurrentAsync_MigrationTableWithoutLatestVersion_False()
    {
        await using var db = await TestDatabase.CreateEmptyAsync("migrate_partial");
        await using (var create = db.DataSource.CreateCommand(
            "create table schema_migrations (version text primary key, applied_at timestamptz not null default now())"))
        {
            await create.ExecuteNonQueryAsync(Ct);
        }

        Assert.False(await NewMigrator(db.DataSource).IsCurrentAsync(Ct));
    }

    [Fact]
    public async Task MigrateAsync_EmptyDatabase_AppliesEveryMigrationAndCreatesTheModel()
    {
        await using var db = await TestDatabase.CreateEmptyAsync("migrate_fresh");
        var migrator = NewMigrator(db.DataSource);

        var applied = await migrator.MigrateAsync(Ct);

        Assert.Equal(Migrator.Migrations.Count, applied);
        Assert.True(await migrator.IsCurrentAsync(Ct));
        var tables = await db.ColumnAsync<string>("select table_name from information_schema.tables where table_schema = 'public'");
        Assert.All(ModelTables.Append("schema_migrations"), t => Assert.Contains(t, tables));
        var uniqueIndexes = await db.ColumnAsync<string>(
            "select c.relname::text from pg_index i join pg_class c on c.oid = i.indexrelid where i.indisunique");
        Assert.All(InvariantIndexes, i => Assert.Contains(i, uniqueIndexes));
        Assert.Equal(Migrator.Migrations.Select(m => m.Version).Order(StringComparer.Ordinal),
            await db.ColumnAsync<string>("select version from schema_migrations order by version collate \"C\""));
    }

    /// <summary>
    /// A database at 0002 with a live session in it is upgraded by 0003 (dual stack) while that session stays usable:
    /// it answers IPv4 only with both families routed, and the desired peers list it without an IPv6 address.
    /// </summary>
    [Fact]
    public async Task MigrateAsync_From0002WithLiveSession_SessionStillAnswersIpv4OnlyAndListedWithoutIpv6()
    {
        await using var db = await TestDatabase.CreateEmptyAsync("migrate_upgrade_0003");
        await ApplyUpToAsync(db, "0002_revocation_feed");
        var customer = Guid.NewGuid();
        var nodeId = Guid.NewGuid();
        var sessionId = Guid.NewGuid();
        var sessionKey = RandomNumberGenerator.GetBytes(32);
        var nodeKey = TestStack.NewKey();
        await using (var seed = db.DataSource.CreateCommand(Seed0002Sql))
        {
            seed.Parameters.AddWithValue("customer", customer);
            seed.Parameters.AddWithValue("device", Guid.NewGuid());
            seed.Parameters.AddWithValue("device_key", TestStack.NewKey());
            seed.Parameters.AddWithValue("node", nodeId);
            seed.Parameters.AddWithValue("node_key", nodeKey);
            seed.Parameters.AddWithValue("core", TestStack.DefaultCoreEndpoint);
            seed.Parameters.AddWithValue("session", sessionId);
            seed.Parameters.AddWithValue("hash", SHA256.HashData(sessionKey));
            await seed.ExecuteNonQueryAsync(Ct);
        }

        var applied = await NewMigrator(db.DataSource).MigrateAsync(Ct);

        Assert.Equal(Migrator.Migrations.Count(m => string.CompareOrdinal(m.Version, "0002_revocation_feed") > 0), applied);
        Assert.Contains("sessions_node_address_v6", await db.ColumnAsync<string>(
            "select c.relname::text from pg_index i join pg_class c on c.oid = i.indexrelid where i.indisunique"));
        Assert.Equal(1L, await db.ScalarAsync<long>("select count(*) from sessions where state = 'active' and assigned_address_v6 is null"));
        await using var stack = await TestStack.StartAsync(StoreKind.InMemory, new Dictionary<string, string?>
        {
            ["DATABASE_URL"] = PostgresServer.ToUrl(db.ConnectionString),
        });
        var current = await stack.SendJsonAsync(TestStack.AsCustomer(customer, HttpMethod.Get, "/v1/sessions/current"), 200);
        Assert.Equal(sessionId, current.GetProperty("session_id").GetGuid());
        var iface = current.GetProperty("interface");
        Assert.Equal("10.64.0.2/32", iface.GetProperty("address").GetString());
        Assert.Equal(["10.64.0.2/32"], iface.GetProperty("addresses").EnumerateArray().Select(a => a.GetString()));
        Assert.Equal(["10.64.0.1"], iface.GetProperty("dns").EnumerateArray().Select(a => a.GetString()));
        Assert.Equal(["0.0.0.0/0", "::/0"], current.GetProperty("peer").GetProperty("allowed_ips").EnumerateArray().Select(a => a.GetString()));
        Assert.Equal(
            "[Interface]\nPrivateKey = <your device private key>\nAddress = 10.64.0.2/32\nDNS = 10.64.0.1\n\n" +
            $"[Peer]\nPublicKey = {nodeKey}\nEndpoint = 203.0.113.7:51820\nAllowedIPs = 0.0.0.0/0, ::/0\nPersistentKeepalive = 25\n",
            current.GetProperty("wireguard_config").GetString());
        var peers = (await stack.SendJsonAsync(stack.Admin(HttpMethod.Get, $"/v1/internal/nodes/{nodeId}/peers"), 200)).GetProperty("peers");
        var peer = Assert.Single(peers.EnumerateArray());
        Assert.Equal((sessionId, "10.64.0.2/32", "active"),
            (peer.GetProperty("session_id").GetGuid(), peer.GetProperty("address").GetString(), peer.GetProperty("state").GetString()));
        Assert.Equal(JsonValueKind.Null, peer.GetProperty("address_v6").ValueKind);
        // Its session key from before the upgrade still reconnects (the node is healthy and fresh, so it stays there).
        var key = Convert.ToBase64String(sessionKey).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        var reconnected = await stack.SendJsonAsync(TestStack.AsCustomer(customer, HttpMethod.Post, "/v1/sessions/reconnect", new { session_key = key }), 200);
        Assert.Equal(iface.GetRawText(), reconnected.GetProperty("interface").GetRawText());
    }

    [Fact]
    public async Task MigrateAsync_SecondRun_AppliesNothing()
    {
        await using var db = await TestDatabase.CreateEmptyAsync("migrate_twice");
        await NewMigrator(db.DataSource).MigrateAsync(Ct);

        var second = await NewMigrator(db.DataSource).MigrateAsync(Ct);

        Assert.Equal(0, second);
        Assert.True(await NewMigrator(db.DataSource).IsCurrentAsync(Ct));
        Assert.Equal(Migrator.Migrations.Count, await db.ScalarAsync<long>("select count(*) from schema_migrations"));
    }

    /// <summary>
    /// Two real <c>migrate</c> processes and four in-process migrators start while the test holds the migration lock,
    /// so all six are provably queued on it at once; then the lock is released.
    /// </summary>
    [Fact]
    public async Task Migrate_TwoProcessesAndFourInProcessConcurrently_EachVersionAppliedOnce()
    {
        RequireEntryBinary();
        await using var db = await TestDatabase.CreateEmptyAsync("migrate_race");
        await using var gate = new NpgsqlConnection(db.ConnectionString);
        await gate.OpenAsync(Ct);
        await ExecuteAsync(gate, $"select pg_advisory_lock({MigrationLockKey})");

        var url = PostgresServer.ToUrl(db.ConnectionString);
        var processes = Enumerable.Range(0, 2).Select(_ => RunMigrateCommandAsync(url)).ToArray();
        var inProcess = Enumerable.Range(0, 4).Select(_ => Task.Run(async () =>
        {
            await using var dataSource = NpgsqlDataSource.Create(db.ConnectionString);
            return await NewMigrator(dataSource).MigrateAsync(Ct);
        })).ToArray();
        var all = processes.Cast<Task>().Concat(inProcess).ToArray();
        var waiting = await WaitForLockWaitersAsync(gate, 6, all);
        await ExecuteAsync(gate, $"select pg_advisory_unlock({MigrationLockKey})");
        try
        {
            await Task.WhenAll(all).WaitAsync(TimeSpan.FromSeconds(60), Ct);
        }
        catch (Exception) when (all.Any(t => t.IsFaulted))
        {
            // Reported below with every result.
        }

        var report = string.Join("\n", processes.Select((p, i) => $"process {i}: " + (p.IsCompletedSuccessfully
            ? $"exit {p.Result.ExitCode}\n{p.Result.StandardOutput}\n{p.Result.StandardError}" : p.Exception?.ToString())));
        Assert.True(waiting == 6, $"{waiting} of 6 migrators were waiting on the lock.\n{report}");
        Assert.All(inProcess, t => Assert.True(t.IsCompletedSuccessfully, t.Exception?.ToString()));
        Assert.All(processes, p => Assert.True(p.IsCompletedSuccessfully && p.Result.ExitCode == 0, report));
        Assert.All(processes, p => Assert.Contains($"schema at {Migrator.LatestVersion}.", p.Result.StandardOutput, StringComparison.Ordinal));
        var appliedByProcesses = processes.Sum(p => int.Parse(AppliedCount().Match(p.Result.StandardOutput).Groups[1].Value));
        Assert.Equal(Migrator.Migrations.Count, appliedByProcesses + inProcess.Sum(t => t.Result));
        var versions = await db.ColumnAsync<string>("select version from schema_migrations");
        Assert.Equal(Migrator.Migrations.Select(m => m.Version).Order(StringComparer.Ordinal), versions.Order(StringComparer.Ordinal));
        Assert.True(await NewMigrator(db.DataSource).IsCurrentAsync(Ct));
    }

    [Fact]
    public async Task MigrateCommand_NoDatabaseUrl_ExitsNonZeroNamingItWithoutEchoingSecrets()
    {
        RequireEntryBinary();
        const string AdminToken = "admin-token-sentinel-5b0d1c7e9a2f4e31";
        const string JwtKey = "jwt-signing-key-sentinel-9c1e7a03b5d84f62";

        var result = await RunMigrateCommandAsync(null, new Dictionary<string, string>
        {
            ["ADMIN_API_TOKEN"] = AdminToken,
            ["APP_JWT_SIGNING_KEY"] = JwtKey,
        });

        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("DATABASE_URL", result.StandardError, StringComparison.Ordinal);
        Assert.Contains("required", result.StandardError, StringComparison.OrdinalIgnoreCase);
        var output = result.StandardOutput + result.StandardError;
        Assert.DoesNotContain(AdminToken, output, StringComparison.Ordinal);
        Assert.DoesNotContain(JwtKey, output, StringComparison.Ordinal);
    }

    /// <summary>
    /// The entry image sets APP_ENV=production and a deployment's migration step gets only the database URL: migrate
    /// validates only what it uses, so it runs without the service's other production settings.
    /// </summary>
    [Fact]
    public async Task MigrateCommand_ProductionWithOnlyTheDatabaseUrl_Migrates()
    {
        RequireEntryBinary();
        await using var db = await TestDatabase.CreateEmptyAsync("migrate_prod");

        var result = await RunMigrateCommandAsync(PostgresServer.ToUrl(db.ConnectionString), new Dictionary<string, string> { ["APP_ENV"] = "production" });

        Assert.True(result.ExitCode == 0, $"exit {result.ExitCode}: {result.StandardError}");
        Assert.Contains($"schema at {Migrator.LatestVersion}.", result.StandardOutput, StringComparison.Ordinal);
    }

    [Fact]
    public async Task MigrateCommand_MalformedDatabaseUrl_ExitsNonZeroWithoutEchoingPassword()
    {
        RequireEntryBinary();
        const string Password = "pw-sentinel-3f9a61c2d8e74b05";

        var result = await RunMigrateCommandAsync($"postgres://migrator:{Password}@127.0.0.1:99999/vpn");

        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("DATABASE_URL", result.StandardError, StringComparison.Ordinal);
        Assert.DoesNotContain(Password, result.StandardOutput + result.StandardError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task MigrateCommand_UnreachableDatabase_ExitsNonZeroWithoutEchoingPassword()
    {
        RequireEntryBinary();
        const string Password = "pw-sentinel-8e2b47d1a6c05f93";
        int port;
        using (var listener = new TcpListener(IPAddress.Loopback, 0))
        {
            listener.Start();
            port = ((IPEndPoint)listener.LocalEndpoint).Port;
        }

        var result = await RunMigrateCommandAsync($"postgres://migrator:{Password}@127.0.0.1:{port}/vpn");

        Assert.NotEqual(0, result.ExitCode);
        Assert.DoesNotContain(Password, result.StandardOutput + result.StandardError, StringComparison.Ordinal);
    }

    // ---- Helpers -----------------------------------------------------------------------------------------------

    /// <summary>One live session as entry wrote it at schema 0002: no IPv6 column yet.</summary>
    private const string Seed0002Sql = """
        insert into customers (id) values (@customer);
        insert into plans (code, name, max_devices, allowed_regions) values ('basic', 'Basic', 5, '{eu-west}');
        insert into customer_subscriptions (customer_id, plan_code, status, started_at) values (@customer, 'basic', 'active', now());
        insert into devices (id, customer_id, name, public_key) values (@device, @customer, 'laptop', @device_key);
        insert into vpn_nodes (id, name, region, country_code, city_code, pool, capacity, public_endpoint, public_key, core_endpoint,
                               healthy, active_peer_count, last_heartbeat_at)
        values (@node, 'node-eu-west', 'eu-west', 'DE', 'fra', 'default', 100, '203.0.113.7:51820', @node_key, @core, true, 1, now());
        insert into sessions (id, customer_id, device_id, device_public_key, node_id, state, assigned_address, session_key_hash, dns,
                              region, country_code, city_code, pool, created_at, activated_at, updated_at)
        values (@session, @customer, @device, @device_key, @node, 'active', '10.64.0.2/32', @hash, '{10.64.0.1}',
                'eu-west', 'DE', 'fra', 'default', now(), now(), now());
        """;

    /// <summary>What the migrator does, stopped after <paramref name="lastVersion"/>: the schema an older release left.</summary>
    private static async Task ApplyUpToAsync(TestDatabase db, string lastVersion)
    {
        await using var connection = await db.DataSource.OpenConnectionAsync(Ct);
        await ExecuteAsync(connection, "create table schema_migrations (version text primary key, applied_at timestamptz not null default now())");
        foreach (var (version, sql) in Migrator.Migrations.Where(m => string.CompareOrdinal(m.Version, lastVersion) <= 0))
        {
            await ExecuteAsync(connection, sql);
            await ExecuteAsync(connection, $"insert into schema_migrations (version) values ('{version}')");
        }
    }

    [GeneratedRegex(@"migrate: (\d+) migration\(s\) applied")]
    private static partial Regex AppliedCount();

    private static Migrator NewMigrator(NpgsqlDataSource dataSource) => new(dataSource, NullLogger<Migrator>.Instance);

    private static async Task ExecuteAsync(NpgsqlConnection connection, string sql)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync(Ct);
    }

    /// <summary>Polls pg_locks until <paramref name="expected"/> sessions wait on this database's advisory lock (or a migrator ended early).</summary>
    private static async Task<long> WaitForLockWaitersAsync(NpgsqlConnection gate, int expected, Task[] migrators)
    {
        const string Sql = """
            select count(*) from pg_locks
            where locktype = 'advisory' and not granted and database = (select oid from pg_database where datname = current_database())
            """;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            await using var command = new NpgsqlCommand(Sql, gate);
            var waiting = (long)(await command.ExecuteScalarAsync(Ct))!;
            if (waiting >= expected || DateTime.UtcNow > deadline || migrators.Any(t => t.IsCompleted))
            {
                return waiting;
            }
            await Task.Delay(25, Ct);
        }
    }

    private static void RequireEntryBinary()
    {
        Prerequisites.Require(DotnetHost is not null, "'dotnet' host (DOTNET_HOST_PATH or PATH)");
        Prerequisites.Require(File.Exists(EntryBinary.Dll), $"entry built at {EntryBinary.Dll}");
    }

    private static string? DotnetHost =>
        Environment.ProcessPath is { } self && Path.GetFileNameWithoutExtension(self) == "dotnet" ? self
        : Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host
        : Prerequisites.FindExecutable("dotnet");

    /// <summary>
    /// <c>dotnet Vpn.Entry.dll migrate</c> with DATABASE_URL set to <paramref name="databaseUrl"/> or absent (never
    /// inherited from the test's own environment).
    /// </summary>
    private static async Task<ProcessResult> RunMigrateCommandAsync(string? databaseUrl, IReadOnlyDictionary<string, string>? environment = null)
    {
        var info = new ProcessStartInfo(DotnetHost!)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(EntryBinary.Dll);
        info.ArgumentList.Add("migrate");
        foreach (var name in new[] { "DATABASE_URL", "DATABASE_URL_FILE", "APP_ENV" })
        {
            info.Environment.Remove(name);
        }
        if (databaseUrl is not null)
        {
            info.Environment["DATABASE_URL"] = databaseUrl;
        }
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            info.Environment[name] = value;
        }
        using var process = Process.Start(info) ?? throw new InvalidOperationException($"Could not start {info.FileName}.");
        var stdout = process.StandardOutput.ReadToEndAsync(Ct);
        var stderr = process.StandardError.ReadToEndAsync(Ct);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"entry migrate did not finish in time: {(stdout.IsCompleted ? stdout.Result : "")}");
        }
        return new ProcessResult(process.ExitCode, await stdout, await stderr);
    }
}

/// <summary>
/// The entry binary this test assembly was built against: the repository root is found by walking up to Vpn.slnx, the
/// configuration is read from this assembly's own output path (<c>bin/&lt;Configuration&gt;/&lt;tfm&gt;/</c>).
/// </summary>
internal static class EntryBinary
{
    private static readonly Lazy<string> s_dll = new(Locate);

    public static string Dll => s_dll.Value;

    private static string Locate()
    {
        var output = new DirectoryInfo(Path.TrimEndingDirectorySeparator(AppContext.BaseDirectory));
        var isBinLayout = output.Parent?.Parent?.Name == "bin";
        var configuration = isBinLayout ? output.Parent!.Name : "Debug";
        var framework = isBinLayout ? output.Name : "net10.0";
        for (var dir = output; dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Vpn.slnx")))
            {
                return Path.Combine(dir.FullName, "src", "Vpn.Entry", "bin", configuration, framework, "Vpn.Entry.dll");
            }
        }
        throw new InvalidOperationException($"No Vpn.slnx above {AppContext.BaseDirectory}.");
    }
}
