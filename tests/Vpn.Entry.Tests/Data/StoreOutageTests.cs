using Microsoft.Extensions.Logging.Abstractions;
using Vpn.Entry.Data;
using Vpn.Entry.Data.Postgres;

namespace Vpn.Entry.Tests.Data;

/// <summary>Which failures are a store outage (503 store_unavailable), and the pool clearing after one (at most once a second).</summary>
public sealed class StoreOutageTests
{
    [Theory]
    [InlineData("57P01")] // admin_shutdown: the primary is stopping (switchover, pg_ctl stop)
    [InlineData("57P02")] // crash_shutdown
    [InlineData("57P03")] // cannot_connect_now: starting up or in recovery
    [InlineData("25006")] // read_only_sql_transaction: this server is a standby now
    [InlineData("08006")] // connection_failure
    [InlineData("08003")] // connection_does_not_exist
    [InlineData("53300")] // too_many_connections (Npgsql: transient)
    [InlineData("40001")] // serialization_failure (Npgsql: transient)
    public void ServerErrors_OfASwitchover_AreOutages(string sqlState) =>
        Assert.True(StoreOutages.IsOutage(new PostgresException("x", "FATAL", "FATAL", sqlState)));

    [Theory]
    [InlineData("23505")] // unique_violation: a bug or a race the code handles, not an outage
    [InlineData("42P01")] // undefined_table
    [InlineData("22P02")] // invalid_text_representation
    public void OtherServerErrors_AreNot(string sqlState) =>
        Assert.False(StoreOutages.IsOutage(new PostgresException("x", "ERROR", "ERROR", sqlState)));

    [Fact]
    public void ClientSideFailures_AreOutages_OtherExceptionsNot()
    {
        Assert.True(StoreOutages.IsOutage(new NpgsqlException("Failed to connect", new SocketException((int)SocketError.ConnectionRefused))));
        Assert.True(StoreOutages.IsOutage(new NpgsqlException("No suitable host was found.")));
        Assert.True(StoreOutages.IsOutage(new TimeoutException()));
        Assert.False(StoreOutages.IsOutage(new InvalidOperationException()));
    }

    [Fact]
    public async Task OnOutage_ClearsAtMostOncePerSecond()
    {
        var time = new FakeTimeProvider();
        await using var dataSource = NpgsqlDataSource.Create("Host=127.0.0.1:1,127.0.0.1:2;Username=x;Target Session Attributes=read-write");
        var recovery = new PostgresOutageRecovery(dataSource, time, NullLogger<PostgresOutageRecovery>.Instance);

        Assert.True(recovery.OnOutage());
        Assert.False(recovery.OnOutage());
        time.Advance(TimeSpan.FromMilliseconds(999));
        Assert.False(recovery.OnOutage());
        time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.True(recovery.OnOutage());
        Assert.Equal(2, recovery.Clears);
        Assert.IsType<NpgsqlMultiHostDataSource>(dataSource);
    }
}
