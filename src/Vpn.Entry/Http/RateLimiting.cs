using System.Globalization;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.HttpOverrides;
using Microsoft.AspNetCore.RateLimiting;
using Vpn.Entry.Auth;
using Vpn.Entry.Configuration;

namespace Vpn.Entry.Http;

/// <summary>
/// ASP.NET Core's rate limiter with two budgets: sign-in per client address, session start/reconnect per customer.
/// The client address is the connection's, or X-Forwarded-For's last hop only when the connection comes from an
/// address in APP_TRUSTED_PROXIES — otherwise anyone could pick a fresh budget by inventing the header.
/// Rejections are 429 problem+json (code rate_limited) with Retry-After.
/// </summary>
public static class RateLimiting
{
    public const string SessionsPolicy = "sessions";

    public static IServiceCollection AddEntryRateLimiting(this IServiceCollection services, RateLimitOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        services.Configure<ForwardedHeadersOptions>(forwarded =>
        {
            forwarded.ForwardedHeaders = ForwardedHeaders.XForwardedFor;
            // The defaults trust loopback; only what the operator listed is a proxy here.
            forwarded.KnownProxies.Clear();
            forwarded.KnownIPNetworks.Clear();
            foreach (var proxy in options.TrustedProxies)
            {
                forwarded.KnownProxies.Add(proxy);
            }
            foreach (var network in options.TrustedNetworks)
            {
                forwarded.KnownIPNetworks.Add(network);
            }
            forwarded.ForwardLimit = 1;
        });
        services.AddRateLimiter(limiter =>
        {
            limiter.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
            limiter.AddPolicy(AuthEndpoints.SignInRateLimit, http => RateLimitPartition.GetFixedWindowLimiter(
                http.Connection.RemoteIpAddress?.ToString() ?? "unknown",
                _ => Window(options.SignInPerMinute)));
            limiter.AddPolicy(SessionsPolicy, http => RateLimitPartition.GetFixedWindowLimiter(
                http.AuthenticatedCustomer()?.ToString() ?? "anonymous",
                _ => Window(options.SessionsPerMinute)));
            limiter.OnRejected = async (context, cancellationToken) =>
            {
                var retryAfter = context.Lease.TryGetMetadata(MetadataName.RetryAfter, out var wait) ? wait : TimeSpan.FromMinutes(1);
                var seconds = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds));
                var http = context.HttpContext;
                http.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
                var problems = http.RequestServices.GetRequiredService<IProblemDetailsService>();
                await problems.WriteAsync(new ProblemDetailsContext
                {
                    HttpContext = http,
                    ProblemDetails = ProblemExceptionHandler.Create(StatusCodes.Status429TooManyRequests, ErrorCodes.RateLimited,
                        $"Too many requests; retry after {seconds} s.", new Dictionary<string, object?> { ["retry_after"] = seconds }),
                });
            };
        });
        return services;
    }

    private static FixedWindowRateLimiterOptions Window(int permits) => new()
    {
        PermitLimit = permits,
        Window = TimeSpan.FromMinutes(1),
        QueueLimit = 0,
        AutoReplenishment = true,
    };
}
