using Npgsql;

namespace Vpn.Entry.Data.Postgres;

/// <summary>
/// After a store outage (see <see cref="StoreOutages"/>) the pool may still hold connections to the old primary, which
/// fail one by one, each costing a request. <see cref="OnOutage"/> clears the pool (and, for a multi-host data source,
/// what it remembers about which host is primary) so the next request dials afresh and finds the new primary — at most
/// once per <see cref="MinInterval"/>, so a burst of failures does not keep tearing down the connections just made.
/// </summary>
public sealed partial class PostgresOutageRecovery(NpgsqlDataSource dataSource, TimeProvider time, ILogger<PostgresOutageRecovery> logger)
{
    public static readonly TimeSpan MinInterval = TimeSpan.FromSeconds(1);

    private long _lastClear = long.MinValue;
    private long _clears;

    /// <summary>How often the pool was cleared (for tests and diagnostics).</summary>
    public long Clears => Interlocked.Read(ref _clears);

    /// <summary>Clears the pool unless that happened less than <see cref="MinInterval"/> ago; true when it did.</summary>
    public bool OnOutage()
    {
        var now = time.GetTimestamp();
        var last = Interlocked.Read(ref _lastClear);
        if (last != long.MinValue && time.GetElapsedTime(last, now) < MinInterval)
        {
            return false;
        }
        if (Interlocked.CompareExchange(ref _lastClear, now, last) != last)
        {
            return false; // another request is clearing right now
        }
        if (dataSource is NpgsqlMultiHostDataSource multiHost)
        {
            multiHost.ClearDatabaseStates();
        }
        dataSource.Clear();
        Interlocked.Increment(ref _clears);
        LogCleared(logger);
        return true;
    }

    [LoggerMessage(EventId = 45, Level = LogLevel.Information, Message = "Store outage: cleared the PostgreSQL connection pool so the next request dials the primary afresh")]
    private static partial void LogCleared(ILogger logger);
}
