namespace Vpn.Entry.Sessions;

/// <summary>
/// Converges sessions whose start died half-way (entry killed between the claim and the answer; a start that merely
/// failed undoes itself): every APP_PROVISIONING_SWEEP_SECS, a 'provisioning' row older than
/// APP_PROVISIONING_TIMEOUT_SECS is marked failed and no longer holds the customer's slot or node capacity.
/// </summary>
public sealed partial class ProvisioningSweeper(ISessionStore sessions, EntryOptions options, TimeProvider time, ILogger<ProvisioningSweeper> logger)
    : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.ProvisioningSweepInterval, time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                var now = time.GetUtcNow();
                var failed = await sessions.FailStaleProvisioningAsync(now - options.ProvisioningTimeout, now, stoppingToken);
                if (failed > 0)
                {
                    LogSwept(logger, failed);
                }
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                LogFailed(logger, e.GetType().Name);
            }
        }
    }

    [LoggerMessage(EventId = 210, Level = LogLevel.Warning, Message = "Marked {Count} abandoned provisioning session(s) failed")]
    private static partial void LogSwept(ILogger logger, int count);

    [LoggerMessage(EventId = 211, Level = LogLevel.Warning, Message = "Provisioning sweep failed: {Reason}")]
    private static partial void LogFailed(ILogger logger, string reason);
}
