using System.Collections.Concurrent;
using Npgsql;

namespace Vpn.Harness.Postgres;

/// <summary>
/// A throwaway PostgreSQL server for tests.
/// <list type="bullet">
/// <item><see cref="SharedAsync"/>: one server per test process, started on first use and stopped at process exit (its data
/// directory is removed by the cluster's watchdog just after the process is gone). Give each test its own database with <see cref="CreateDatabaseAsync"/>.</item>
/// <item><see cref="StartNewAsync"/>: a private server for tests that stop/start it; dispose it.</item>
/// <item><c>TEST_DATABASE_URL</c> (URL or key=value; the user needs CREATEDB): <see cref="SharedAsync"/> uses that
/// server instead of starting one; databases created on it are dropped at process exit.</item>
/// </list>
/// Local servers: a fresh cluster in <c>/tmp/vpn-pg-&lt;pid&gt;-&lt;random&gt;</c> owned by the <c>postgres</c> OS user
/// (when the tests run as root), listening on a free port on 127.0.0.1 and on a unix socket in that directory,
/// superuser <c>postgres</c>, trust authentication, fsync/synchronous_commit/full_page_writes off, max_connections 300.
/// </summary>
public sealed class PostgresServer : IAsyncDisposable
{
    /// <summary>Points the shared server at an existing PostgreSQL instead of starting one.</summary>
    public const string ExternalUrlVariable = "TEST_DATABASE_URL";

    private static readonly TimeSpan s_commandTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan s_templateBusyTimeout = TimeSpan.FromSeconds(10);
    private static readonly ConcurrentDictionary<PostgresServer, byte> s_live = new();
    private static readonly Lock s_sharedLock = new();
    private static Task<PostgresServer>? s_shared;
    private static int s_exitHookRegistered;
    private static int s_databaseCounter;

    private readonly LocalCluster? _cluster;
    private readonly NpgsqlConnectionStringBuilder _settings; // everything except the database
    private readonly string _adminDatabase;
    private readonly bool _isShared;
    private readonly NpgsqlDataSource _admin;
    private readonly SemaphoreSlim _lifecycle = new(1, 1);
    private readonly ConcurrentQueue<string> _createdDatabases = new();
    private int _serverVersion;
    private int _destroyed;

    private PostgresServer(LocalCluster? cluster, NpgsqlConnectionStringBuilder settings, string adminDatabase, bool isShared)
    {
        _cluster = cluster;
        _settings = settings;
        _adminDatabase = adminDatabase;
        _isShared = isShared;
        AdminConnectionString = ConnectionStringFor(adminDatabase);
        _admin = NpgsqlDataSource.Create(AdminConnectionString);
    }

    /// <summary>TCP host: 127.0.0.1 for local servers.</summary>
    public string Host => _settings.Host!;

    public int Port => _settings.Port;

    /// <summary>Npgsql connection string to the <c>postgres</c> database (superuser, pooled).</summary>
    public string AdminConnectionString { get; }

    /// <summary>
    /// Unix socket directory (use as <c>Host=</c>; same port) for clients in other network namespaces.
    /// Throws <see cref="InvalidOperationException"/> for a <c>TEST_DATABASE_URL</c> server reached over TCP.
    /// </summary>
    public string SocketDirectory =>
        _cluster?.BaseDirectory ?? (Host.StartsWith('/') ? Host : throw new InvalidOperationException(
            $"The server from {ExternalUrlVariable} is reached over TCP ({Host}:{Port}); its unix socket directory is unknown."));

    /// <summary>True when this is the server named by <c>TEST_DATABASE_URL</c> (not started by us; cannot be stopped).</summary>
    public bool IsExternal => _cluster is null;

    /// <summary>The cluster's data directory (null for an external server).</summary>
    public string? DataDirectory => _cluster?.DataDirectory;

    /// <summary>The server log so far ("" for an external server) — handy in assertion messages.</summary>
    public string ReadLog() => _cluster?.ReadLog() ?? "";

    /// <summary>The per-process shared server (thread-safe, started once; a failed start is not retried).</summary>
    public static async Task<PostgresServer> SharedAsync()
    {
        var url = Environment.GetEnvironmentVariable(ExternalUrlVariable);
        if (string.IsNullOrWhiteSpace(url))
        {
            PostgresBinaries.Require();
        }
        Task<PostgresServer> shared;
        lock (s_sharedLock)
        {
            // Task.Run: do not capture the first caller's test context.
            shared = s_shared ??= Task.Run(() => string.IsNullOrWhiteSpace(url) ? StartLocalAsync(PostgresBinaries.Require(), isShared: true) : ConnectExternalAsync(url));
        }
        return await shared;
    }

    /// <summary>A private local server (ignores <c>TEST_DATABASE_URL</c>), e.g. for restart tests. Dispose it.</summary>
    public static async Task<PostgresServer> StartNewAsync() => await StartLocalAsync(PostgresBinaries.Require(), isShared: false);

    /// <summary>
    /// Creates a uniquely named empty database (<c>&lt;prefix&gt;_&lt;n&gt;_&lt;random&gt;</c>) or a copy of
    /// <paramref name="template"/> (a database name, or a connection string naming it) and returns its connection string.
    /// Connections to the template are closed first (its Npgsql pool is cleared; remaining backends are terminated).
    /// </summary>
    public async Task<string> CreateDatabaseAsync(string? namePrefix = null, string? template = null)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _destroyed) != 0, this);
        var name = NewDatabaseName(namePrefix);
        var templateName = template is null ? null
            : template.Contains('=', StringComparison.Ordinal) ? new NpgsqlConnectionStringBuilder(template).Database ?? throw new ArgumentException("The template connection string names no database.", nameof(template))
            : template;
        var sql = new StringBuilder($"CREATE DATABASE {QuoteIdentifier(name)}");
        if (templateName is not null)
        {
            sql.Append($" TEMPLATE {QuoteIdentifier(templateName)}");
            using var pooled = new NpgsqlConnection(ConnectionStringFor(templateName));
            NpgsqlConnection.ClearPool(pooled);
        }
        if (await ServerVersionAsync() >= 150000)
        {
            sql.Append(" STRATEGY FILE_COPY"); // faster than WAL_LOG for small databases
        }
        var deadline = DateTime.UtcNow + s_templateBusyTimeout;
        while (true)
        {
            try
            {
                await ExecuteAdminAsync(sql.ToString());
                break;
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.ObjectInUse && templateName is not null && DateTime.UtcNow < deadline)
            {
                await TerminateConnectionsAsync(templateName);
                await Task.Delay(50);
            }
        }
        if (IsExternal)
        {
            _createdDatabases.Enqueue(name);
        }
        return ConnectionStringFor(name);
    }

    /// <summary>The same database as a <c>postgres://user[:password]@host:port/db</c> URL (TCP; components percent-encoded).</summary>
    public static string ToUrl(string connectionString) => PostgresUrl.Format(connectionString);

    /// <summary><c>pg_ctl stop -m fast</c>: clients are disconnected. Private servers only; a no-op when stopped.</summary>
    public async Task StopAsync()
    {
        var cluster = RequireOwnCluster();
        await _lifecycle.WaitAsync();
        try
        {
            await cluster.StopAsync("fast");
            _admin.Clear();
        }
        finally
        {
            _lifecycle.Release();
        }
    }

    /// <summary>Starts the server again on the same port and data directory (bounded; the log is in the error).</summary>
    public async Task StartAsync()
    {
        var cluster = RequireOwnCluster();
        await _lifecycle.WaitAsync();
        try
        {
            await cluster.StartAsync();
            _admin.Clear();
        }
        finally
        {
            _lifecycle.Release();
        }
    }

    /// <summary>
    /// Private server: stop immediately and delete the data directory. The shared server ignores this: it belongs to
    /// the process and is stopped by the exit hook.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (!_isShared)
        {
            await DestroyAsync();
        }
    }

    public override string ToString() => IsExternal ? $"external PostgreSQL {Host}:{Port}" : $"PostgreSQL 127.0.0.1:{Port} ({_cluster!.BaseDirectory})";

    private static async Task<PostgresServer> StartLocalAsync(PostgresBinaries binaries, bool isShared)
    {
        RegisterExitHook();
        var cluster = await LocalCluster.CreateAsync(binaries);
        var settings = WithPooling(new NpgsqlConnectionStringBuilder
        {
            Host = "127.0.0.1",
            Port = cluster.Port,
            Username = "postgres",
        });
        var server = new PostgresServer(cluster, settings, "postgres", isShared);
        s_live.TryAdd(server, 0);
        return server;
    }

    private static async Task<PostgresServer> ConnectExternalAsync(string url)
    {
        RegisterExitHook();
        NpgsqlConnectionStringBuilder settings;
        try
        {
            settings = PostgresUrl.Parse(url.Trim());
        }
        catch (Exception e) when (e is ArgumentException or UriFormatException)
        {
            throw new InvalidOperationException($"{ExternalUrlVariable} is neither a postgres:// URL nor an Npgsql connection string: {e.Message}", e);
        }
        var adminDatabase = string.IsNullOrEmpty(settings.Database) ? "postgres" : settings.Database;
        settings.Database = null;
        var server = new PostgresServer(null, WithPooling(settings), adminDatabase, isShared: true);
        try
        {
            await server.ServerVersionAsync();
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException)
        {
            await server.DestroyAsync();
            throw new InvalidOperationException($"{ExternalUrlVariable} ({settings.Host}:{settings.Port}/{adminDatabase} as {settings.Username}) is not reachable: {e.Message}", e);
        }
        s_live.TryAdd(server, 0);
        return server;
    }

    private static NpgsqlConnectionStringBuilder WithPooling(NpgsqlConnectionStringBuilder builder)
    {
        builder.Pooling = true;
        builder.MinPoolSize = 0;
        builder.MaxPoolSize = 100;
        // Many short-lived test databases share max_connections=300: give idle connections back quickly.
        builder.ConnectionIdleLifetime = 10;
        builder.ConnectionPruningInterval = 2;
        builder.Timeout = 15;
        builder.IncludeErrorDetail = true;
        return builder;
    }

    private string ConnectionStringFor(string database) =>
        new NpgsqlConnectionStringBuilder(_settings.ConnectionString) { Database = database }.ConnectionString;

    private LocalCluster RequireOwnCluster()
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _destroyed) != 0, this);
        if (_cluster is null)
        {
            throw new InvalidOperationException($"The server from {ExternalUrlVariable} is not ours to stop or start; use StartNewAsync().");
        }
        if (_isShared)
        {
            throw new InvalidOperationException("The shared server is used by tests running in parallel; stop/start a private one from StartNewAsync().");
        }
        return _cluster;
    }

    private static string NewDatabaseName(string? prefix)
    {
        var cleaned = new StringBuilder();
        foreach (var c in prefix ?? "")
        {
            if (cleaned.Length == 40)
            {
                break;
            }
            cleaned.Append(char.IsAsciiLetterOrDigit(c) ? char.ToLowerInvariant(c) : '_');
        }
        if (cleaned.Length == 0)
        {
            cleaned.Append("test");
        }
        else if (char.IsAsciiDigit(cleaned[0]))
        {
            cleaned.Insert(0, 'd');
        }
        var counter = Interlocked.Increment(ref s_databaseCounter);
        return $"{cleaned}_{counter.ToString(CultureInfo.InvariantCulture)}_{Guid.NewGuid().ToString("N")[..8]}";
    }

    private static string QuoteIdentifier(string name) => "\"" + name.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";

    private async Task<int> ServerVersionAsync()
    {
        if (_serverVersion == 0)
        {
            await using var command = _admin.CreateCommand("SELECT current_setting('server_version_num')::int");
            command.CommandTimeout = (int)s_commandTimeout.TotalSeconds;
            _serverVersion = (int)(await command.ExecuteScalarAsync())!;
        }
        return _serverVersion;
    }

    private async Task ExecuteAdminAsync(string sql)
    {
        await using var command = _admin.CreateCommand(sql);
        command.CommandTimeout = (int)s_commandTimeout.TotalSeconds;
        await command.ExecuteNonQueryAsync();
    }

    private async Task TerminateConnectionsAsync(string database)
    {
        await using var command = _admin.CreateCommand(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()");
        command.Parameters.Add(new NpgsqlParameter { Value = database });
        await command.ExecuteNonQueryAsync();
    }

    private async Task DestroyAsync() => await DestroyAsync(atExit: false);

    private async Task DestroyAsync(bool atExit)
    {
        if (Interlocked.Exchange(ref _destroyed, 1) != 0)
        {
            return;
        }
        s_live.TryRemove(this, out _);
        try
        {
            if (_cluster is not null)
            {
                await (atExit ? _cluster.DestroyAtExitAsync() : _cluster.DestroyAsync());
            }
            else
            {
                await DropCreatedDatabasesAsync();
            }
        }
        finally
        {
            await _admin.DisposeAsync();
            _lifecycle.Dispose();
        }
    }

    private async Task DropCreatedDatabasesAsync()
    {
        var force = _serverVersion >= 130000 ? " WITH (FORCE)" : "";
        while (_createdDatabases.TryDequeue(out var name))
        {
            try
            {
                await ExecuteAdminAsync($"DROP DATABASE IF EXISTS {QuoteIdentifier(name)}{force}");
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException)
            {
                // Best effort: the server may already be gone.
            }
        }
    }

    private static void RegisterExitHook()
    {
        if (Interlocked.Exchange(ref s_exitHookRegistered, 1) == 0)
        {
            AppDomain.CurrentDomain.ProcessExit += (_, _) => StopAllAtExit();
        }
    }

    private static void StopAllAtExit()
    {
        // Runs inside the test runner's shutdown grace (xunit.v3: 11 s after the run returns, then exit code 1), so a
        // local cluster is only stopped here; its watchdog deletes the directory once the process is gone.
        var stopping = s_live.Keys.Select(server => Task.Run(() => server.DestroyAsync(atExit: true))).ToArray();
        try
        {
            Task.WaitAll(stopping, TimeSpan.FromSeconds(20));
        }
        catch (AggregateException)
        {
            // Nothing sensible to report at exit; the watchdog and the next run's reaper remain.
        }
    }
}
