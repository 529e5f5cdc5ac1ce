using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.HttpOverrides;
using Microsoft.AspNetCore.RateLimiting;

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

    /// <summary>Extension of a 429 problem: seconds until the budget refills (also sent as Retry-After).</summary>
    public const string RetryAfterExtension = "retry_after";

    /// <summary>
    /// X-Forwarded-For is applied only when proxies are configured: with both lists empty ASP.NET Core's middleware
    /// would believe the header from anyone.
    /// </summary>
    public static IApplicationBuilder UseTrustedForwardedHeaders(this IApplicationBuilder app, RateLimitOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return options.TrustedProxies.Count + options.TrustedNetworks.Count > 0 ? app.UseForwardedHeaders() : app;
    }

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
            // Walk back through trusted hops only (CDN -> load balancer -> entry); the first untrusted hop is the client.
            forwarded.ForwardLimit = null;
        });
        services.AddRateLimiter(limiter =>
        {
            limiter.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
            limiter.AddPolicy(AuthEndpoints.SignInRateLimit, http => RateLimitPartition.GetFixedWindowLimiter(
                ClientPartition(http.Connection.RemoteIpAddress),
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
                        $"Too many requests; retry after {seconds} s.", new Dictionary<string, object?> { [RetryAfterExtension] = seconds }),
                });
            };
        });
        return services;
    }

    /// <summary>
    /// One budget per IPv4 address, and per IPv6 /64 — a single subscriber line usually holds a whole /64, so per
    /// address would hand out 2^64 budgets.
    /// </summary>
    public static string ClientPartition(IPAddress? address)
    {
        if (address is null)
        {
            return "unknown";
        }
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }
        if (address.AddressFamily != AddressFamily.InterNetworkV6)
        {
            return address.ToString();
        }
        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out _);
        bytes[8..].Clear();
        return new IPAddress(bytes).ToString() + "/64";
    }

    private static FixedWindowRateLimiterOptions Window(int permits) => new()
    {
        PermitLimit = permits,
        Window = TimeSpan.FromMinutes(1),
        QueueLimit = 0,
        AutoReplenishment = true,
    };
}
