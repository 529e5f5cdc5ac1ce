namespace Vpn.Core.Reconciliation;

/// <summary>
/// Runs <see cref="Reconciler"/> at start, then every CORE_RECONCILE_SECS, and soon after a request (a failed UAPI
/// write). A failed pass is retried with backoff (1 s, 2 s, 4 s … up to the interval).
/// </summary>
public sealed partial class ReconcileService(CoreOptions options, Reconciler reconciler, ReconcileSignal signal, TimeProvider time,
    ILogger<ReconcileService> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var interval = options.ReconcileInterval;
        // Requests cannot make passes run back to back.
        var minimumSpacing = TimeSpan.FromTicks(Math.Min(TimeSpan.TicksPerSecond, interval.Ticks));
        LogStarted(logger, interval.TotalSeconds, options.EntryUrl?.Scheme ?? "none");
        var failures = 0;
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                var started = time.GetTimestamp();
                signal.Clear();
                var outcome = await reconciler.RunPassAsync(stoppingToken);
                failures = outcome.Succeeded ? 0 : failures + 1;
                var wait = failures == 0
                    ? interval
                    : TimeSpan.FromTicks(Math.Min(interval.Ticks, minimumSpacing.Ticks << Math.Min(failures - 1, 16)));
                if (await signal.WaitAsync(wait, stoppingToken) && time.GetElapsedTime(started) is var elapsed && elapsed < minimumSpacing)
                {
                    await Task.Delay(minimumSpacing - elapsed, time, stoppingToken);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    [LoggerMessage(EventId = 620, Level = LogLevel.Information, Message = "Reconciliation with entry ({Scheme}) every {Seconds} s")]
    private static partial void LogStarted(ILogger logger, double seconds, string scheme);
}
