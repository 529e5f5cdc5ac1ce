using System.Globalization;

namespace Vpn.Entry.Health;

/// <summary>
/// One thing entry needs before it can serve customers. Register an implementation as a singleton
/// <see cref="IReadinessCheck"/> (see <see cref="ReadinessServiceCollectionExtensions.AddReadinessChecks"/>) and
/// GET /v1/admin/readiness runs it with the others, concurrently.
/// </summary>
public interface IReadinessCheck
{
    /// <summary>Stable snake_case name; operators' alerts key on it.</summary>
    string Name { get; }

    /// <summary>How long the check may run before it counts as not ok.</summary>
    TimeSpan Timeout => ReadinessProbe.DefaultTimeout;

    /// <summary>
    /// The verdict with a short detail for an operator. The detail is shown to admins: never a key, token, password or
    /// connection string. Throwing is allowed and counts as not ok (only the exception's type is shown).
    /// </summary>
    Task<ReadinessCheckResult> RunAsync(CancellationToken cancellationToken);
}

public sealed record ReadinessCheckResult(bool Ok, string Detail)
{
    public static ReadinessCheckResult Pass(string detail) => new(true, detail);

    public static ReadinessCheckResult Fail(string detail) => new(false, detail);
}

/// <summary>One check in the answer: <c>{"name", "ok", "detail"}</c>.</summary>
public sealed record ReadinessCheckReport(string Name, bool Ok, string Detail);

/// <summary>The answer of GET /v1/admin/readiness; ready when every check is ok.</summary>
public sealed record ReadinessReport(bool Ready, IReadOnlyList<ReadinessCheckReport> Checks);

/// <summary>Runs every registered check concurrently, each under its own deadline; the answer lists them in registration order.</summary>
public sealed partial class ReadinessProbe(IEnumerable<IReadinessCheck> checks, TimeProvider time, ILogger<ReadinessProbe> logger)
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(3);

    // A detail is for a person reading a dashboard, not a log dump.
    private const int MaxDetailLength = 1000;

    private readonly IReadinessCheck[] _checks = [.. checks];

    public async Task<ReadinessReport> RunAsync(CancellationToken cancellationToken)
    {
        var results = await Task.WhenAll(_checks.Select(check => RunOneAsync(check, cancellationToken)));
        return new ReadinessReport(results.All(r => r.Ok), results);
    }

    private async Task<ReadinessCheckReport> RunOneAsync(IReadinessCheck check, CancellationToken cancellationToken)
    {
        var timeout = check.Timeout;
        using var deadline = new CancellationTokenSource(timeout, time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        // Task.Run: a check that blocks before its first await cannot hold up the others. WaitAsync: one that ignores its
        // token still cannot hold up the answer past its deadline.
        var work = Task.Run(() => check.RunAsync(linked.Token), linked.Token);
        try
        {
            var result = await work.WaitAsync(timeout, time, cancellationToken);
            // The deadline's timer and WaitAsync's race: an answer given only once the deadline had cancelled the check's
            // token (e.g. a check that turns cancellation into a result) is no answer in time either.
            if (!deadline.IsCancellationRequested)
            {
                return new ReadinessCheckReport(check.Name, result.Ok, Shorten(result.Detail));
            }
            return TimedOut(check, timeout);
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested
            // WaitAsync's own timeout, not one the check threw: the check may have completed (late, once the deadline
            // cancelled it) between the timeout and this filter, so its state is no test.
            && ((e is TimeoutException && !ReferenceEquals(work.Exception?.InnerException, e))
                || (e is OperationCanceledException && deadline.IsCancellationRequested)))
        {
            // The abandoned check sees its token cancelled (even if WaitAsync's timer won the race) and its end is observed.
            await deadline.CancelAsync();
            _ = work.ContinueWith(static t => t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
            return TimedOut(check, timeout);
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested)
        {
            // Only the type: a message may quote a host, a path or worse.
            LogCheckFailed(logger, check.Name, e.GetType().Name, e);
            return new ReadinessCheckReport(check.Name, false, $"check failed ({e.GetType().Name})");
        }
    }

    private ReadinessCheckReport TimedOut(IReadinessCheck check, TimeSpan timeout)
    {
        LogCheckTimedOut(logger, check.Name, timeout.TotalMilliseconds);
        return new ReadinessCheckReport(check.Name, false, $"no answer within {timeout.TotalMilliseconds.ToString(CultureInfo.InvariantCulture)} ms");
    }

    private static string Shorten(string? detail) =>
        detail is null ? "" : detail.Length <= MaxDetailLength ? detail : string.Concat(detail.AsSpan(0, MaxDetailLength - 1), "…");

    [LoggerMessage(EventId = 310, Level = LogLevel.Warning, Message = "Readiness check {Check} failed with {ExceptionType}")]
    private static partial void LogCheckFailed(ILogger logger, string check, string exceptionType, Exception exception);

    [LoggerMessage(EventId = 311, Level = LogLevel.Warning, Message = "Readiness check {Check} gave no answer within {TimeoutMs} ms")]
    private static partial void LogCheckTimedOut(ILogger logger, string check, double timeoutMs);
}
