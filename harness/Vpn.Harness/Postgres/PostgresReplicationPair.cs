using System.Collections.Concurrent;
using Npgsql;

namespace Vpn.Harness.Postgres;

/// <summary>
/// Two local PostgreSQL clusters on 127.0.0.1 in streaming replication: a primary and a hot standby made from it by
/// <c>pg_basebackup -R</c> (streaming from a replication slot). With <c>synchronous: true</c> the primary waits for the
/// standby to flush each commit (<c>synchronous_standby_names = '*'</c>, <c>synchronous_commit = on</c>), so a commit
/// that returned is on the standby and survives <see cref="KillPrimaryAsync"/> + <see cref="PromoteAsync"/>.
/// Databases are created on the primary; their connection strings name both hosts (Npgsql multi-host,
/// <c>Target Session Attributes=read-write</c>), so a client follows the promotion. Dispose it; undisposed pairs are
/// stopped at process exit and their directories removed by each cluster's watchdog, like <see cref="PostgresServer"/>'s.
/// </summary>
public sealed class PostgresReplicationPair : IAsyncDisposable
{
    private const string Slot = "vpn_harness_standby";
    private static readonly TimeSpan s_waitTimeout = TimeSpan.FromSeconds(30);
    private static readonly ConcurrentDictionary<PostgresReplicationPair, byte> s_live = new();
    private static int s_exitHookRegistered;
    private static int s_databaseCounter;

    private readonly LocalCluster _primary;
    private readonly LocalCluster _standby;
    private int _destroyed;

    private PostgresReplicationPair(LocalCluster primary, LocalCluster standby, bool synchronous)
    {
        _primary = primary;
        _standby = standby;
        IsSynchronous = synchronous;
    }

    public bool IsSynchronous { get; }

    /// <summary>Port of the cluster started as primary (dead after <see cref="KillPrimaryAsync"/>).</summary>
    public int PrimaryPort => _primary.Port;

    /// <summary>Port of the cluster started as standby (the primary after <see cref="PromoteAsync"/>).</summary>
    public int StandbyPort => _standby.Port;

    public bool IsPrimaryRunning => _primary.IsRunning;

    /// <summary>Superuser connection to the <c>postgres</c> database of the first cluster (pooling off).</summary>
    public string PrimaryAdminConnectionString => AdminConnectionString(PrimaryPort, "postgres");

    /// <summary>Superuser connection to the <c>postgres</c> database of the second cluster (pooling off).</summary>
    public string StandbyAdminConnectionString => AdminConnectionString(StandbyPort, "postgres");

    /// <summary>Starts both clusters (≈ 3–4 s). Skipped locally, failed under CI=true, when binaries are missing.</summary>
    public static async Task<PostgresReplicationPair> StartAsync(bool synchronous = true)
    {
        var binaries = PostgresBinaries.Require();
        Prerequisites.Require(File.Exists(binaries.PgBaseBackup), $"pg_basebackup beside initdb in {binaries.Directory}");
        RegisterExitHook();
        var primary = await LocalCluster.CreateAsync(binaries);
        LocalCluster? standby = null;
        try
        {
            standby = await LocalCluster.CreateStandbyAsync(binaries, primary, Slot);
            var pair = new PostgresReplicationPair(primary, standby, synchronous);
            s_live.TryAdd(pair, 0);
            await pair.WaitForStreamingAsync();
            if (synchronous)
            {
                await primary.AppendSettingsAsync("synchronous_commit = on", "synchronous_standby_names = '*'");
                await primary.ReloadAsync();
                await pair.WaitForPrimaryAsync("select count(*) from pg_stat_replication where sync_state = 'sync'", 1L, "the standby to become synchronous");
            }
            return pair;
        }
        catch
        {
            await primary.DestroyAsync();
            if (standby is not null)
            {
                await standby.DestroyAsync();
            }
            throw;
        }
    }

    /// <summary>
    /// Creates an empty, uniquely named database on the primary, waits until the standby has it, and returns a pooled
    /// multi-host connection string: <c>Host=127.0.0.1:&lt;primary&gt;,127.0.0.1:&lt;standby&gt;</c>,
    /// <c>Target Session Attributes=read-write</c>.
    /// </summary>
    public async Task<string> CreateDatabaseAsync(string? namePrefix = null)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _destroyed) != 0, this);
        var prefix = new string((namePrefix ?? "ha").Select(c => char.IsAsciiLetterOrDigit(c) ? char.ToLowerInvariant(c) : '_').Take(40).ToArray());
        if (prefix.Length == 0 || char.IsAsciiDigit(prefix[0]))
        {
            prefix = "d" + prefix;
        }
        var counter = Interlocked.Increment(ref s_databaseCounter).ToString(CultureInfo.InvariantCulture);
        var name = $"{prefix}_{counter}_{Guid.NewGuid().ToString("N")[..8]}";
        await ExecuteAsync(PrimaryAdminConnectionString, $"CREATE DATABASE \"{name}\"");
        await WaitForReplayAsync();
        return new NpgsqlConnectionStringBuilder
        {
            Host = $"127.0.0.1:{PrimaryPort.ToString(CultureInfo.InvariantCulture)},127.0.0.1:{StandbyPort.ToString(CultureInfo.InvariantCulture)}",
            Username = "postgres",
            Database = name,
            TargetSessionAttributes = "read-write",
            Timeout = 5,
            IncludeErrorDetail = true,
        }.ConnectionString;
    }

    /// <summary><c>postgres://postgres@127.0.0.1:p1,127.0.0.1:p2/db?target_session_attrs=read-write</c> (libpq's multi-host URL).</summary>
    public static string ToUrl(string connectionString)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        var attributes = string.IsNullOrEmpty(builder.TargetSessionAttributes) ? "" : "?target_session_attrs=" + builder.TargetSessionAttributes;
        return $"postgres://{Uri.EscapeDataString(builder.Username ?? "postgres")}@{builder.Host}/{Uri.EscapeDataString(builder.Database ?? "")}{attributes}";
    }

    /// <summary>Waits until the standby has replayed everything the primary had written when this was called.</summary>
    public async Task WaitForReplayAsync()
    {
        var target = await ScalarAsync<string>(PrimaryAdminConnectionString, "select pg_current_wal_lsn()::text");
        await WaitAsync(StandbyAdminConnectionString, $"select pg_last_wal_replay_lsn() >= '{target}'::pg_lsn", true, $"the standby to replay up to {target}");
    }

    /// <summary><c>pg_ctl stop -m immediate</c> on the primary: every backend dies at once, nothing is shut down cleanly.</summary>
    public Task KillPrimaryAsync() => _primary.StopAsync("immediate");

    /// <summary>
    /// <c>pg_ctl stop -m fast</c> on the primary, as a planned switchover does: sessions end with 57P01 (admin
    /// shutdown) and the standby receives all WAL before the primary exits.
    /// </summary>
    public Task StopPrimaryAsync() => _primary.StopAsync("fast");

    /// <summary><c>pg_ctl promote</c> on the standby, then waits until it answers <c>pg_is_in_recovery() = false</c>.</summary>
    public async Task PromoteAsync()
    {
        await _standby.PromoteAsync();
        await WaitAsync(StandbyAdminConnectionString, "select not pg_is_in_recovery()", true, "the promoted standby to leave recovery");
    }

    /// <summary>Both server logs, for assertion messages.</summary>
    public string ReadLogs() => $"--- primary ---\n{Tail(_primary.ReadLog())}\n--- standby ---\n{Tail(_standby.ReadLog())}";

    public async ValueTask DisposeAsync() => await DestroyAsync(atExit: false);

    public override string ToString() => $"PostgreSQL pair 127.0.0.1:{PrimaryPort} → 127.0.0.1:{StandbyPort}{(IsSynchronous ? " (synchronous)" : "")}";

    private Task WaitForStreamingAsync() =>
        WaitForPrimaryAsync("select count(*) from pg_stat_replication where state = 'streaming'", 1L, "the standby to stream");

    private Task WaitForPrimaryAsync<T>(string sql, T expected, string what) => WaitAsync(PrimaryAdminConnectionString, sql, expected, what);

    private async Task WaitAsync<T>(string connectionString, string sql, T expected, string what)
    {
        var deadline = DateTime.UtcNow + s_waitTimeout;
        Exception? last = null;
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                if (EqualityComparer<T>.Default.Equals(await ScalarAsync<T>(connectionString, sql), expected))
                {
                    return;
                }
            }
            catch (Exception e) when (e is NpgsqlException or InvalidCastException)
            {
                last = e; // e.g. the standby still starting up
            }
            await Task.Delay(50);
        }
        throw new TimeoutException($"Gave up waiting {s_waitTimeout.TotalSeconds:0} s for {what} ({last?.Message ?? "condition false"}).\n{ReadLogs()}");
    }

    private static async Task<T> ScalarAsync<T>(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection) { CommandTimeout = 10 };
        return (T)(await command.ExecuteScalarAsync())!;
    }

    private static async Task ExecuteAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection) { CommandTimeout = 30 };
        await command.ExecuteNonQueryAsync();
    }

    private static string AdminConnectionString(int port, string database) => new NpgsqlConnectionStringBuilder
    {
        Host = "127.0.0.1",
        Port = port,
        Username = "postgres",
        Database = database,
        Pooling = false,
        Timeout = 5,
    }.ConnectionString;

    private static string Tail(string log) => log.Length > 4000 ? "…" + log[^4000..] : log;

    private async Task DestroyAsync(bool atExit)
    {
        if (Interlocked.Exchange(ref _destroyed, 1) != 0)
        {
            return;
        }
        s_live.TryRemove(this, out _);
        await Task.WhenAll(
            atExit ? _primary.DestroyAtExitAsync() : _primary.DestroyAsync(),
            atExit ? _standby.DestroyAtExitAsync() : _standby.DestroyAsync());
    }

    private static void RegisterExitHook()
    {
        if (Interlocked.Exchange(ref s_exitHookRegistered, 1) == 0)
        {
            AppDomain.CurrentDomain.ProcessExit += (_, _) =>
            {
                var stopping = s_live.Keys.Select(pair => Task.Run(() => pair.DestroyAsync(atExit: true))).ToArray();
                try
                {
                    Task.WaitAll(stopping, TimeSpan.FromSeconds(20));
                }
                catch (AggregateException)
                {
                    // The watchdogs and the next run's reaper remain.
                }
            };
        }
    }
}
