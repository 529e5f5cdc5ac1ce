using System.Text.RegularExpressions;
using Npgsql;
using Vpn.ServiceDefaults;

namespace Vpn.Entry.Configuration;

/// <summary>
/// Each replica's share of PostgreSQL's connections. APP_DB_POOL_SIZE (default 40; DATABASE_URL's own
/// <c>Maximum Pool Size</c> when only that is given) caps this replica's pool; APP_DB_CONNECT_TIMEOUT_SECS (5; likewise
/// <c>Timeout</c>) bounds a connect and a wait for a pooled connection. At start entry checks
/// APP_ENTRY_REPLICAS × pool + APP_DB_RESERVED_CONNECTIONS against the server's <c>max_connections</c> and refuses to
/// start when it does not fit (APP_DB_CHECK_BUDGET=false skips it, e.g. behind PgBouncer, whose limits are its own).
/// </summary>
public sealed partial class DatabasePoolOptions
{
    public const int DefaultPoolSize = 40;

    public int PoolSize { get; init; } = DefaultPoolSize;

    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How many entry replicas share the server (APP_ENTRY_REPLICAS, 1).</summary>
    public int Replicas { get; init; } = 1;

    /// <summary>Connections left for everything else: migrate jobs, operators, monitoring (APP_DB_RESERVED_CONNECTIONS, 5).</summary>
    public int ReservedConnections { get; init; } = 5;

    public bool CheckBudget { get; init; } = true;

    /// <summary>What the fleet needs of <c>max_connections</c>.</summary>
    public int Required => (Replicas * PoolSize) + ReservedConnections;

    /// <summary>"40 per replica × 2 replicas + 5 reserved = 85" — for messages; names no host or secret.</summary>
    public string Describe() =>
        FormattableString.Invariant($"APP_DB_POOL_SIZE {PoolSize} × APP_ENTRY_REPLICAS {Replicas} + APP_DB_RESERVED_CONNECTIONS {ReservedConnections} = {Required}");

    /// <summary>Reads the settings and returns the connection string with the pool size and timeout applied.</summary>
    public static DatabasePoolOptions Load(IConfiguration configuration, ref string? connectionString, List<string> problems)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        ArgumentNullException.ThrowIfNull(problems);
        var named = connectionString is null ? null : new NpgsqlConnectionStringBuilder(connectionString);
        var poolFallback = named is not null && MaxPoolSizeKey().IsMatch(connectionString!) ? named.MaxPoolSize : DefaultPoolSize;
        var timeoutFallback = named is not null && TimeoutKey().IsMatch(connectionString!) ? named.Timeout : 5;
        var options = new DatabasePoolOptions
        {
            PoolSize = Settings.Number(configuration, "APP_DB_POOL_SIZE", poolFallback, 1, 10_000, problems),
            ConnectTimeout = TimeSpan.FromSeconds(Settings.Number(configuration, "APP_DB_CONNECT_TIMEOUT_SECS", timeoutFallback, 1, 120, problems)),
            Replicas = Settings.Number(configuration, "APP_ENTRY_REPLICAS", 1, 1, 1000, problems),
            ReservedConnections = Settings.Number(configuration, "APP_DB_RESERVED_CONNECTIONS", 5, 0, 10_000, problems),
            CheckBudget = Settings.Flag(configuration, "APP_DB_CHECK_BUDGET", true, problems),
        };
        if (named is not null)
        {
            named.MaxPoolSize = options.PoolSize;
            named.MinPoolSize = Math.Min(named.MinPoolSize, options.PoolSize);
            named.Timeout = (int)options.ConnectTimeout.TotalSeconds;
            connectionString = named.ConnectionString;
        }
        return options;
    }

    [GeneratedRegex(@"(^|;)\s*Max(imum)?\s*Pool\s*Size\s*=", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex MaxPoolSizeKey();

    [GeneratedRegex(@"(^|;)\s*Timeout\s*=", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex TimeoutKey();
}
