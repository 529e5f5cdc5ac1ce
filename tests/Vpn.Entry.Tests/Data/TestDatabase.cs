using Microsoft.Extensions.Logging.Abstractions;
using Vpn.Entry.Data;

namespace Vpn.Entry.Tests.Data;

/// <summary>
/// A database of its own on the shared test server, dropped on dispose. <see cref="CreateMigratedAsync"/> copies a
/// template migrated once per test process (≈50 ms instead of running every migration per test).
/// </summary>
internal sealed class TestDatabase : IAsyncDisposable
{
    /// <summary>Copies prepared ahead, so a test rarely waits for CREATE DATABASE (≈150 ms) or Npgsql's type loading.</summary>
    private const int Prefetch = 2;

    private static readonly Lock s_templateLock = new();
    private static readonly Queue<Task<TestDatabase>> s_ready = new();
    private static Task<string>? s_template;

    private readonly PostgresServer _server;

    private TestDatabase(PostgresServer server, string connectionString)
    {
        _server = server;
        ConnectionString = connectionString;
        Name = new NpgsqlConnectionStringBuilder(connectionString).Database!;
        DataSource = NpgsqlDataSource.Create(connectionString);
    }

    public string ConnectionString { get; }

    public string Name { get; }

    /// <summary>The database's own pool; disposed (connections closed) with the database.</summary>
    public NpgsqlDataSource DataSource { get; }

    /// <summary>An empty database (no schema at all).</summary>
    public static async Task<TestDatabase> CreateEmptyAsync(string prefix)
    {
        var server = await PostgresServer.SharedAsync();
        return new TestDatabase(server, await server.CreateDatabaseAsync(prefix));
    }

    /// <summary>
    /// A database at the latest schema, copied from the per-process migrated template (its pool already warmed).
    /// Copies are prepared <see cref="Prefetch"/> ahead; the prefix only names the first ones.
    /// </summary>
    public static async Task<TestDatabase> CreateMigratedAsync(string prefix)
    {
        // Outside the cached tasks so a missing prerequisite skips (or fails under CI) every caller the same way.
        var server = await PostgresServer.SharedAsync();
        Task<TestDatabase> next;
        lock (s_templateLock)
        {
            var template = s_template ??= Task.Run(() => BuildTemplateAsync(server));
            while (s_ready.Count < Prefetch + 1)
            {
                s_ready.Enqueue(Task.Run(() => CopyAsync(server, template, prefix)));
            }
            next = s_ready.Dequeue();
        }
        return await next;
    }

    private static async Task<TestDatabase> CopyAsync(PostgresServer server, Task<string> template, string prefix)
    {
        var database = new TestDatabase(server, await server.CreateDatabaseAsync(prefix, await template));
        await using (var connection = await database.DataSource.OpenConnectionAsync())
        {
            // The first connection of a data source loads the server's types; do it here rather than in the test.
        }
        return database;
    }

    public async Task<T> ScalarAsync<T>(string sql, params (string Name, object Value)[] parameters)
    {
        await using var command = DataSource.CreateCommand(sql);
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value);
        }
        return (T)(await command.ExecuteScalarAsync(TestContext.Current.CancellationToken))!;
    }

    public async Task<List<T>> ColumnAsync<T>(string sql, params (string Name, object Value)[] parameters)
    {
        await using var command = DataSource.CreateCommand(sql);
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue(name, value);
        }
        await using var reader = await command.ExecuteReaderAsync(TestContext.Current.CancellationToken);
        var values = new List<T>();
        while (await reader.ReadAsync(TestContext.Current.CancellationToken))
        {
            values.Add(reader.GetFieldValue<T>(0));
        }
        return values;
    }

    public async ValueTask DisposeAsync()
    {
        await DataSource.DisposeAsync();
        try
        {
            // Best effort: keeps the shared cluster small; the whole cluster is removed at process exit anyway.
            await using var admin = new NpgsqlConnection(_server.AdminConnectionString);
            await admin.OpenAsync();
            await using var drop = new NpgsqlCommand($"drop database if exists \"{Name}\" with (force)", admin);
            await drop.ExecuteNonQueryAsync();
        }
        catch (NpgsqlException)
        {
        }
    }

    private static async Task<string> BuildTemplateAsync(PostgresServer server)
    {
        var connectionString = await server.CreateDatabaseAsync("store_template");
        await using var dataSource = NpgsqlDataSource.Create(connectionString);
        await new Migrator(dataSource, NullLogger<Migrator>.Instance).MigrateAsync(CancellationToken.None);
        return connectionString;
    }
}
