using Vpn.Contracts.Http;
using Vpn.Core.EntryApi;

namespace Vpn.Core.Usage;

/// <summary>
/// Sends the meter's pending session counters to entry after a reconciliation pass, in batches that fit entry's body
/// limit; what is not delivered stays pending for the next pass (the counters are cumulative, so a later reading
/// supersedes it and a repeat counts once).
/// </summary>
public sealed partial class UsageReporter(UsageMeter meter, EntryClient entry, ILogger<UsageReporter> logger)
{
    public async Task<int> FlushAsync(CancellationToken cancellationToken)
    {
        var sent = 0;
        while (meter.Take(NodeUsageReportDto.MaxSessions) is { Count: > 0 } batch)
        {
            try
            {
                var status = await entry.PostUsageAsync(batch, cancellationToken);
                if (status is HttpStatusCode.BadRequest or HttpStatusCode.RequestEntityTooLarge or HttpStatusCode.UnprocessableEntity)
                {
                    // Refused as invalid: sending it again would be refused again and hold back every later report.
                    LogRejected(logger, batch.Count, (int)status);
                    continue;
                }
                if (status != HttpStatusCode.NoContent)
                {
                    // Entry down or busy, a wrong token, the node unknown to it: nothing was recorded, and it may be later.
                    meter.Return(batch);
                    LogDeferred(logger, batch.Count, (int)status);
                    return sent;
                }
            }
            catch (Exception e) when (e is HttpRequestException or OperationCanceledException)
            {
                meter.Return(batch);
                if (cancellationToken.IsCancellationRequested)
                {
                    throw;
                }
                LogUnreachable(logger, batch.Count, e.GetType().Name);
                return sent;
            }
            meter.Delivered(batch);
            sent += batch.Count;
        }
        return sent;
    }

    [LoggerMessage(EventId = 640, Level = LogLevel.Warning, Message = "Entry answered {Status} to a usage report of {Count} session(s); kept for the next pass")]
    private static partial void LogDeferred(ILogger logger, int count, int status);

    [LoggerMessage(EventId = 642, Level = LogLevel.Error, Message = "Entry refused a usage report of {Count} session(s) with {Status}; dropped")]
    private static partial void LogRejected(ILogger logger, int count, int status);

    [LoggerMessage(EventId = 641, Level = LogLevel.Warning, Message = "Entry unreachable for a usage report of {Count} session(s) ({Reason}); kept for the next pass")]
    private static partial void LogUnreachable(ILogger logger, int count, string reason);
}
