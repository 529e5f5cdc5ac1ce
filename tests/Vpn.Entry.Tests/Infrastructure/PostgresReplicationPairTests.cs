namespace Vpn.Entry.Tests.Infrastructure;

public class PostgresReplicationPairTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task KillPrimaryThenPromote_SynchronousPair_KeepsEveryCommitAndAcceptsWrites()
    {
        await using var pair = await PostgresReplicationPair.StartAsync(synchronous: true);
        var database = await pair.CreateDatabaseAsync("pair");
        await ExecuteAsync(database, "create table kept (id int primary key); insert into kept select generate_series(1, 100)");

        // Standby is read-only while the primary lives: a direct write there is refused.
        var onStandby = new NpgsqlConnectionStringBuilder(pair.StandbyAdminConnectionString) { Database = new NpgsqlConnectionStringBuilder(database).Database }.ConnectionString;
        var readOnly = await Assert.ThrowsAsync<PostgresException>(() => ExecuteAsync(onStandby, "insert into kept values (0)"));
        Assert.Equal(PostgresErrorCodes.ReadOnlySqlTransaction, readOnly.SqlState);

        await pair.KillPrimaryAsync();
        Assert.False(pair.IsPrimaryRunning);
        await pair.PromoteAsync();
        NpgsqlConnection.ClearAllPools();

        // The multi-host string finds the promoted standby; nothing committed before the kill is missing.
        Assert.Equal(100L, await ScalarAsync<long>(database, "select count(*) from kept"));
        await ExecuteAsync(database, "insert into kept values (101)");
        Assert.Equal(101L, await ScalarAsync<long>(onStandby, "select count(*) from kept"));
        Assert.StartsWith("postgres://postgres@127.0.0.1:", PostgresReplicationPair.ToUrl(database), StringComparison.Ordinal);
        Assert.EndsWith("?target_session_attrs=read-write", PostgresReplicationPair.ToUrl(database), StringComparison.Ordinal);
    }

    [Fact]
    public async Task WaitForReplayAsync_AsynchronousPair_StandbySeesTheWrite()
    {
        await using var pair = await PostgresReplicationPair.StartAsync(synchronous: false);
        var database = await pair.CreateDatabaseAsync("async");
        await ExecuteAsync(database, "create table t (id int); insert into t values (7)");

        await pair.WaitForReplayAsync();

        var onStandby = new NpgsqlConnectionStringBuilder(pair.StandbyAdminConnectionString) { Database = new NpgsqlConnectionStringBuilder(database).Database }.ConnectionString;
        Assert.Equal(7, await ScalarAsync<int>(onStandby, "select id from t"));
        Assert.True(await ScalarAsync<bool>(onStandby, "select pg_is_in_recovery()"));
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
