using System.Globalization;
using Npgsql;

namespace Vpn.Entry.Data;

/// <summary>The fleet's connections (APP_ENTRY_REPLICAS × APP_DB_POOL_SIZE + APP_DB_RESERVED_CONNECTIONS) against <c>max_connections</c>.</summary>
public sealed record ConnectionBudgetVerdict(bool Fits, int Required, int MaxConnections, string Detail);

/// <summary>
/// Reads the server's <c>max_connections</c> (SHOW max_connections) and compares the fleet's pools with it, so that
/// adding replicas is refused at start rather than turning into "too many clients" (53300) under load. Null without
/// PostgreSQL or with APP_DB_CHECK_BUDGET=false (behind PgBouncer the server's limit is not the one that counts).
/// </summary>
public sealed class ConnectionBudget(EntryOptions options, IServiceProvider services)
{
    private readonly NpgsqlDataSource? _dataSource = services.GetService<NpgsqlDataSource>();

    public bool IsChecked => _dataSource is not null && options.DatabasePool.CheckBudget;

    public async Task<ConnectionBudgetVerdict?> CheckAsync(CancellationToken cancellationToken)
    {
        if (!IsChecked)
        {
            return null;
        }
        await using var command = _dataSource!.CreateCommand("show max_connections");
        command.CommandTimeout = Math.Max(1, (int)options.DatabasePool.ConnectTimeout.TotalSeconds);
        var max = int.Parse((string)(await command.ExecuteScalarAsync(cancellationToken))!, NumberStyles.None, CultureInfo.InvariantCulture);
        var pool = options.DatabasePool;
        var fits = pool.Required <= max;
        var detail = FormattableString.Invariant($"{pool.Describe()} {(fits ? "≤" : ">")} max_connections {max}");
        return new ConnectionBudgetVerdict(fits, pool.Required, max, detail);
    }
}

/// <summary>
/// At start: refuses to start when the fleet's pools exceed <c>max_connections</c>. An unreachable server does not block
/// the start (it may come up later; the <c>connection_budget</c> readiness check keeps asking).
/// </summary>
public sealed partial class ConnectionBudgetStartupCheck(ConnectionBudget budget, EntryOptions options, ILogger<ConnectionBudgetStartupCheck> logger) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (!budget.IsChecked)
        {
            return;
        }
        ConnectionBudgetVerdict? verdict;
        try
        {
            verdict = await budget.CheckAsync(cancellationToken);
        }
        catch (Exception e) when (e is NpgsqlException or TimeoutException or FormatException)
        {
            LogUnchecked(logger, e.GetType().Name);
            return;
        }
        if (verdict is { Fits: false })
        {
            var message = $"Connection budget exceeded: {verdict.Detail}. Lower APP_DB_POOL_SIZE, raise max_connections, put PgBouncer in front " +
                $"(then APP_DB_CHECK_BUDGET=false), or correct APP_ENTRY_REPLICAS (now {options.DatabasePool.Replicas}).";
            LogRefused(logger, message);
            throw new InvalidOperationException(message);
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(EventId = 46, Level = LogLevel.Critical, Message = "{Message}")]
    private static partial void LogRefused(ILogger logger, string message);

    [LoggerMessage(EventId = 47, Level = LogLevel.Warning, Message = "Connection budget not checked at start: PostgreSQL did not answer ({ExceptionType}); readiness check connection_budget keeps asking")]
    private static partial void LogUnchecked(ILogger logger, string exceptionType);
}
