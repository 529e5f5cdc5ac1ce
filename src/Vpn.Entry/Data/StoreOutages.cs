using Npgsql;

namespace Vpn.Entry.Data;

/// <summary>
/// Which failures mean "the database is not there right now" (answered 503 <c>store_unavailable</c>, never 500): a
/// primary switchover kills every backend (57P01 admin shutdown, 57P02 crash shutdown), refuses connections while it
/// starts or recovers (57P03), may leave a connection on a server that is now a standby (25006 read-only transaction),
/// breaks connections (class 08), or leaves no host to dial (an <see cref="NpgsqlException"/> that is not a server
/// error: socket, I/O, timeout, "no suitable host"). Npgsql's own transient set (serialization failures, too many
/// connections, …) stays an outage too.
/// </summary>
public static class StoreOutages
{
    public static bool IsOutage(Exception exception) => exception switch
    {
        PostgresException p => p.IsTransient || IsOutageState(p.SqlState),
        NpgsqlException => true,
        TimeoutException => true,
        _ => false,
    };

    public static bool IsOutageState(string sqlState) =>
        sqlState.StartsWith("08", StringComparison.Ordinal)
        || sqlState is PostgresErrorCodes.AdminShutdown or PostgresErrorCodes.CrashShutdown or PostgresErrorCodes.CannotConnectNow
            or PostgresErrorCodes.ReadOnlySqlTransaction;
}
