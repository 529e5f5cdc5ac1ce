namespace Vpn.ServiceDefaults;

/// <summary>The loop of a background service that works at start and then on an interval until the host stops.</summary>
public static class PeriodicWork
{
    /// <summary>
    /// Runs <paramref name="work"/> now, then once per <paramref name="interval"/> of <paramref name="time"/> (ticks
    /// missed while it ran collapse into one), and returns quietly once <paramref name="stoppingToken"/> is cancelled.
    /// </summary>
    public static async Task RunAsync(TimeSpan interval, TimeProvider time, Func<CancellationToken, Task> work, CancellationToken stoppingToken)
    {
        ArgumentNullException.ThrowIfNull(work);
        using var timer = new PeriodicTimer(interval, time);
        try
        {
            do
            {
                await work(stoppingToken).ConfigureAwait(false);
            }
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }
}
