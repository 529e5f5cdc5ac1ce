using Vpn.Harness;

namespace Vpn.Entry.Tests.Infrastructure;

public class PostgresServerTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task SharedAsync_SelectOne_ReturnsOne()
    {
        var server = await PostgresServer.SharedAsync();

        Assert.Equal(1, await ScalarAsync<int>(server.AdminConnectionString, "select 1"));
        Assert.Same(server, await PostgresServer.SharedAsync());
    }

    [Fact]
    public async Task CreateDatabaseAsync_TwoCalls_GiveIsolatedDatabases()
    {
        var server = await PostgresServer.SharedAsync();

        var first = await server.CreateDatabaseAsync("isolation");
        var second = await server.CreateDatabaseAsync("isolation");
        await ExecuteAsync(first, "create table marker (id int); insert into marker values (1)");

        Assert.NotEqual(new NpgsqlConnectionStringBuilder(first).Database, new NpgsqlConnectionStringBuilder(second).Database);
        Assert.Equal(1L, await ScalarAsync<long>(first, "select count(*) from marker"));
        Assert.False(await ScalarAsync<bool>(second, "select to_regclass('marker') is not null"));
    }

    [Fact]
    public async Task CreateDatabaseAsync_FromTemplate_CopiesTableAndRows()
    {
        var server = await PostgresServer.SharedAsync();
        var template = await server.CreateDatabaseAsync("template");
        // The pooled connection stays open on the template: creating the copy must cope with it.
        await ExecuteAsync(template, "create table seeded (name text primary key); insert into seeded values ('alpha')");

        var copy = await server.CreateDatabaseAsync("copy", new NpgsqlConnectionStringBuilder(template).Database);
        await ExecuteAsync(copy, "insert into seeded values ('beta')");

        Assert.Equal("alpha", await ScalarAsync<string>(copy, "select name from seeded order by name limit 1"));
        Assert.Equal(2L, await ScalarAsync<long>(copy, "select count(*) from seeded"));
        Assert.Equal(1L, await ScalarAsync<long>(template, "select count(*) from seeded"));
    }

    [Fact]
    public async Task StopThenStart_PrivateServer_KeepsDataAndPort()
    {
        await using var server = await PostgresServer.StartNewAsync();
        var database = await server.CreateDatabaseAsync("restart");
        await ExecuteAsync(database, "create table kept (id int); insert into kept values (42)");
        var port = server.Port;

        await server.StopAsync();
        await Assert.ThrowsAnyAsync<NpgsqlException>(() => ConnectOnceAsync(database));
        await server.StartAsync();

        Assert.Equal(port, server.Port);
        // Pooled idle connections from before the restart fail once with 57P01, as in production; read through a fresh one.
        Assert.Equal(42, await ScalarAsync<int>(NoPooling(database), "select id from kept"));
        Assert.NotEmpty(await server.CreateDatabaseAsync("after_restart"));
    }

    [Fact]
    public async Task DisposeAsync_PrivateServer_StopsServerAndRemovesDirectory()
    {
        var server = await PostgresServer.StartNewAsync();
        var dataDirectory = server.DataDirectory!;
        Assert.StartsWith("/tmp/vpn-pg-", dataDirectory);
        Assert.True(Directory.Exists(dataDirectory));

        await server.DisposeAsync();

        Assert.False(Directory.Exists(Path.GetDirectoryName(dataDirectory)));
        using var client = new TcpClient();
        await Assert.ThrowsAsync<SocketException>(async () => await client.ConnectAsync("127.0.0.1", server.Port, Ct));
    }

    [Fact]
    public async Task UnixSocket_SharedServer_Connects()
    {
        var server = await PostgresServer.SharedAsync();
        Prerequisites.Require(!server.IsExternal, $"a fixture-started PostgreSQL ({PostgresServer.ExternalUrlVariable} is set; its unix socket is unknown)");
        var database = await server.CreateDatabaseAsync("socket");
        var viaSocket = new NpgsqlConnectionStringBuilder(database) { Host = server.SocketDirectory }.ConnectionString;

        // inet_client_addr() is null for unix-socket connections.
        Assert.True(await ScalarAsync<bool>(viaSocket, "select inet_client_addr() is null"));
        Assert.Equal(new NpgsqlConnectionStringBuilder(database).Database, await ScalarAsync<string>(viaSocket, "select current_database()"));
    }

    [Fact]
    public async Task ToUrl_CreatedDatabase_ParsesBackToSameEndpoint()
    {
        var server = await PostgresServer.SharedAsync();
        var database = await server.CreateDatabaseAsync("url");
        var expected = new NpgsqlConnectionStringBuilder(database);

        var uri = new Uri(PostgresServer.ToUrl(database));

        Assert.Equal("postgres", uri.Scheme);
        Assert.Equal(expected.Host, uri.Host);
        Assert.Equal(expected.Port, uri.Port);
        Assert.Equal(expected.Database, Uri.UnescapeDataString(uri.AbsolutePath.TrimStart('/')));
        Assert.Equal(expected.Username, Uri.UnescapeDataString(uri.UserInfo.Split(':')[0]));
    }

    [Fact]
    public void ToUrl_SpecialCharacters_AreEscapedAndRoundTrip()
    {
        const string connectionString = "Host=db.example;Port=6543;Database=my db/é;Username=u@x;Password=p:w@/?#%";

        var uri = new Uri(PostgresServer.ToUrl(connectionString));
        var userInfo = uri.UserInfo.Split(':');

        Assert.Equal("db.example", uri.Host);
        Assert.Equal(6543, uri.Port);
        Assert.Equal("my db/é", Uri.UnescapeDataString(uri.AbsolutePath.TrimStart('/')));
        Assert.Equal(2, userInfo.Length);
        Assert.Equal("u@x", Uri.UnescapeDataString(userInfo[0]));
        Assert.Equal("p:w@/?#%", Uri.UnescapeDataString(userInfo[1]));
        Assert.Empty(uri.Query);
    }

    [Fact]
    public void ToUrl_UnixSocketHost_Throws()
    {
        Assert.Throws<ArgumentException>(() => PostgresServer.ToUrl("Host=/tmp/vpn-pg-x;Port=5432;Database=d;Username=postgres"));
    }

    private static string NoPooling(string connectionString) =>
        new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false }.ConnectionString;

    private static async Task ConnectOnceAsync(string connectionString)
    {
        await using var connection = new NpgsqlConnection(NoPooling(connectionString));
        await connection.OpenAsync(Ct);
    }

    private static async Task ExecuteAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(Ct);
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync(Ct);
    }

    private static async Task<T> ScalarAsync<T>(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(Ct);
        await using var command = new NpgsqlCommand(sql, connection);
        return (T)(await command.ExecuteScalarAsync(Ct))!;
    }
}
