using Npgsql;

namespace Vpn.Entry.Data.Postgres;

/// <summary>
/// One LISTEN connection held open until the host stops: LISTEN on the channel, each notification's payload to
/// <c>onNotification</c>, and after every (re)connect <c>onListening</c> (notifications sent while no one listened are
/// lost: the caller catches up). A half-open connection is found by a probe after 15 s without a notification; a failed
/// connection is retried every second, with <c>onDown</c> told each failure (first: whether it is the first since the
/// connection was last up) and <c>onRecovered</c> once it is up again.
/// </summary>
internal static class PostgresListen
{
    private static readonly TimeSpan ProbeInterval = TimeSpan.FromSeconds(15);

    public static async Task RunAsync(NpgsqlDataSource dataSource, string channel, Action<string> onNotification, Action onListening,
        Action<Exception, bool> onDown, Action onRecovered, TimeProvider time, CancellationToken stoppingToken)
    {
        var failing = false;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await using var connection = await dataSource.OpenConnectionAsync(stoppingToken);
                connection.Notification += (_, e) => onNotification(e.Payload);
                await using (var listen = new NpgsqlCommand($"listen {channel}", connection))
                {
                    await listen.ExecuteNonQueryAsync(stoppingToken);
                }
                onListening();
                if (failing)
                {
                    onRecovered();
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
                onDown(e, !failing);
                failing = true;
                await Task.Delay(TimeSpan.FromSeconds(1), time, stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
        }
    }
}
