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

    // A half-open connection is found by a probe after this long without a notification.
    private static readonly TimeSpan ProbeInterval = TimeSpan.FromSeconds(15);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var failing = false;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await using var connection = await dataSource.OpenConnectionAsync(stoppingToken);
                connection.Notification += (_, _) => directory.MarkChanged();
                await using (var listen = new NpgsqlCommand($"listen {Channel}", connection))
                {
                    await listen.ExecuteNonQueryAsync(stoppingToken);
                }
                directory.MarkChanged();
                if (failing)
                {
                    LogListenRecovered(logger);
                    failing = false;
                }
                while (!stoppingToken.IsCancellationRequested)
                {
                    if (!await connection.WaitAsync(ProbeInterval, stoppingToken))
                    {
                        await using var probe = new NpgsqlCommand("select 1", connection) { CommandTimeout = 5 };
                        await probe.ExecuteScalarAsync(stoppingToken);
                    }
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException or IOException or InvalidOperationException)
            {
                if (!failing)
                {
                    LogListenFailed(logger, e.GetType().Name);
                    failing = true;
                }
                directory.MarkChanged();
                await Task.Delay(TimeSpan.FromSeconds(1), time, stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }
    }

    [LoggerMessage(EventId = 231, Level = LogLevel.Warning, Message = "LISTEN for node changes failed ({Reason}); retrying, the node cache refreshes periodically meanwhile")]
    private static partial void LogListenFailed(ILogger logger, string reason);

    [LoggerMessage(EventId = 232, Level = LogLevel.Information, Message = "LISTEN for node changes recovered")]
    private static partial void LogListenRecovered(ILogger logger);
}
