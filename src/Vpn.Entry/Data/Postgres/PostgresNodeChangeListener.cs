using Npgsql;
using Vpn.Entry.Nodes;

namespace Vpn.Entry.Data.Postgres;

/// <summary>
/// LISTEN on <c>vpn_nodes_changed</c> (migration 0007's triggers: a node registered, removed, or changed in anything
/// selection looks at, by any replica or by hand): each notification marks the node cache changed. On every (re)connect
/// the cache is marked too, since notifications sent while no one listened are lost. Load and heartbeat times are not
/// notified; the cache's periodic refresh brings them.
/// </summary>
public sealed partial class PostgresNodeChangeListener(NpgsqlDataSource dataSource, INodeDirectory directory, TimeProvider time,
    ILogger<PostgresNodeChangeListener> logger) : BackgroundService
{
    public const string Channel = "vpn_nodes_changed";

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        PostgresListen.RunAsync(dataSource, Channel, _ => directory.MarkChanged(), directory.MarkChanged,
            (e, first) =>
            {
                if (first)
                {
                    LogListenFailed(logger, e.GetType().Name);
                }
                directory.MarkChanged();
            },
            () => LogListenRecovered(logger), time, stoppingToken);

    [LoggerMessage(EventId = 231, Level = LogLevel.Warning, Message = "LISTEN for node changes failed ({Reason}); retrying, the node cache refreshes periodically meanwhile")]
    private static partial void LogListenFailed(ILogger logger, string reason);

    [LoggerMessage(EventId = 232, Level = LogLevel.Information, Message = "LISTEN for node changes recovered")]
    private static partial void LogListenRecovered(ILogger logger);
}
