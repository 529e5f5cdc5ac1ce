using System.Globalization;
using System.Threading.RateLimiting;

namespace Vpn.Entry.Http;

/// <summary>
/// The replica-wide admission of session starts and reconnects (APP_SESSION_ADMISSION_*): so many run at once, so many
/// wait (at most APP_SESSION_ADMISSION_WAIT_MS), the rest answer 503 server_busy at once — before any database or core
/// work. And the jittered Retry-After that every 502 and 503 problem answer carries.
/// </summary>
public sealed class SessionAdmission(Configuration.EntryOptions options, EntryMetrics metrics) : IDisposable
{
    private readonly ConcurrencyLimiter _limiter = new(new ConcurrencyLimiterOptions
    {
        PermitLimit = options.Shedding.AdmissionConcurrency,
        QueueLimit = options.Shedding.AdmissionQueue,
        QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
    });

    /// <summary>Requests running and waiting (tests, diagnostics).</summary>
    public RateLimiterStatistics? Statistics => _limiter.GetStatistics();

    public async ValueTask<RateLimitLease> EnterAsync(CancellationToken cancellationToken)
    {
        var lease = _limiter.AttemptAcquire();
        if (lease.IsAcquired)
        {
            return lease;
        }
        lease.Dispose();
        using var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        wait.CancelAfter(options.Shedding.AdmissionWait);
        try
        {
            lease = await _limiter.AcquireAsync(1, wait.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw Busy("wait");
        }
        if (!lease.IsAcquired)
        {
            lease.Dispose();
            throw Busy("queue_full");
        }
        return lease;
    }

    public void Dispose() => _limiter.Dispose();

    private ApiProblemException Busy(string reason)
    {
        metrics.SessionRequestsShed.Add(1, new KeyValuePair<string, object?>("reason", reason));
        return new ApiProblemException(StatusCodes.Status503ServiceUnavailable, ErrorCodes.ServerBusy, "The server is busy; retry shortly.");
    }
}

public static class LoadShedding
{
    public static IServiceCollection AddEntryLoadShedding(this IServiceCollection services, Configuration.EntryOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        services.AddSingleton<SessionAdmission>();
        services.AddSingleton<Nodes.NodeCallGate>();
        services.Configure<ProblemDetailsOptions>(problems =>
        {
            // Composed with any customization registered before, not in its place.
            var previous = problems.CustomizeProblemDetails;
            problems.CustomizeProblemDetails = context =>
            {
                previous?.Invoke(context);
                AddRetryAfter(context, options);
            };
        });
        return services;
    }

    /// <summary>
    /// Every 502 and 503 problem, whichever code path wrote it: a retry hint spread over a few seconds, so the crowd a
    /// failure sends back does not return in the same second.
    /// </summary>
    private static void AddRetryAfter(ProblemDetailsContext context, Configuration.EntryOptions options)
    {
        var status = context.ProblemDetails.Status ?? context.HttpContext.Response.StatusCode;
        if (status is StatusCodes.Status502BadGateway or StatusCodes.Status503ServiceUnavailable
            && !context.HttpContext.Response.HasStarted && !context.HttpContext.Response.Headers.ContainsKey("Retry-After"))
        {
            var seconds = options.Shedding.NextRetryAfterSeconds();
            context.HttpContext.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
            context.ProblemDetails.Extensions[RateLimiting.RetryAfterExtension] = seconds;
        }
    }

    /// <summary>Runs the endpoint only once <see cref="SessionAdmission"/> admits it (503 server_busy otherwise).</summary>
    public static RouteHandlerBuilder RequireSessionAdmission(this RouteHandlerBuilder builder) =>
        builder.AddEndpointFilter(async (context, next) =>
        {
            using var lease = await context.HttpContext.RequestServices.GetRequiredService<SessionAdmission>()
                .EnterAsync(context.HttpContext.RequestAborted);
            return await next(context);
        }).ProducesProblems(StatusCodes.Status503ServiceUnavailable, ErrorCodes.ServerBusy);
}
