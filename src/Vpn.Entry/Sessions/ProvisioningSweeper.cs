namespace Vpn.Entry.Sessions;

/// <summary>
/// Converges sessions whose start died half-way (entry killed between the claim and the answer): after
/// <see cref="StaleAfter"/> a 'provisioning' row no longer holds the customer's slot or node capacity.
/// </summary>
public sealed partial class ProvisioningSweeper(ISessionStore sessions, TimeProvider time, ILogger<ProvisioningSweeper> logger) : BackgroundService
{
    // Far longer than a start takes (core deadline 5 s), so a live request is never swept from under itself.
    public static readonly TimeSpan StaleAfter = TimeSpan.FromMinutes(2);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(30), time);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                var now = time.GetUtcNow();
                var failed = await sessions.FailStaleProvisioningAsync(now - StaleAfter, now, stoppingToken);
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
