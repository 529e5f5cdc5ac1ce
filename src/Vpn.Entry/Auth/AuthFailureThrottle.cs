using System.Globalization;
using System.Threading.RateLimiting;
using Vpn.Entry.Audit;

namespace Vpn.Entry.Auth;

/// <summary>A credential a caller could try to guess by brute force.</summary>
public enum GuessedCredential
{
    /// <summary>x-admin-token on the admin and internal API.</summary>
    AdminToken,

    /// <summary>The session key of POST /v1/sessions/reconnect.</summary>
    SessionKey,
}

/// <summary>
/// Budgets of failed attempts per client address (the partition of <see cref="RateLimiting.ClientPartition"/>: the
/// connection's address, X-Forwarded-For only through trusted proxies, IPv6 by /64), fixed one-minute windows of
/// ASP.NET Core's rate limiter. Only failures spend the budget; once it is spent, every attempt from that address
/// answers 429 before the credential is even compared — also the right one, so the answers carry no oracle — until the
/// window ends. Another address is unaffected. Failures are counted in <c>vpn_auth_failures</c>; failed admin
/// authentications within the budget are also audited (without the presented token, without the address).
/// </summary>
public sealed class AuthFailureThrottle : IDisposable
{
    private readonly PartitionedRateLimiter<string> _adminToken;
    private readonly PartitionedRateLimiter<string> _sessionKey;
    private readonly EntryMetrics _metrics;
    private readonly IAuditLog _audit;
    private readonly TimeProvider _time;

    public AuthFailureThrottle(EntryOptions options, EntryMetrics metrics, IAuditLog audit, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(options);
        _adminToken = Budget(options.RateLimits.AdminFailuresPerMinute);
        _sessionKey = Budget(options.RateLimits.SessionKeyFailuresPerMinute);
        _metrics = metrics;
        _audit = audit;
        _time = time;
    }

    /// <summary>429 rate_limited when this client's failure budget for <paramref name="credential"/> is spent; consumes nothing.</summary>
    public void ThrowIfBlocked(GuessedCredential credential, HttpContext http)
    {
        ArgumentNullException.ThrowIfNull(http);
        // Zero permits: only asks whether the window still has any left.
        using var lease = For(credential).AttemptAcquire(Client(http), 0);
        if (!lease.IsAcquired)
        {
            Count(credential, "throttled");
            throw Limited(lease);
        }
    }

    /// <summary>
    /// Spends one failure of this client's budget. Throws 429 when the budget was already spent; otherwise counts the
    /// failure (and audits it, for the admin token) and returns, and the caller answers its usual 401.
    /// </summary>
    public async Task RecordFailureAsync(GuessedCredential credential, HttpContext http, string reason, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(http);
        using var lease = For(credential).AttemptAcquire(Client(http), 1);
        if (!lease.IsAcquired)
        {
            Count(credential, "throttled");
            throw Limited(lease);
        }
        Count(credential, "rejected");
        if (credential == GuessedCredential.AdminToken)
        {
            // The route pattern, not the raw path: a raw path would carry whatever ids the caller put in it.
            var route = (http.GetEndpoint() as RouteEndpoint)?.RoutePattern.RawText ?? "-";
            await _audit.WriteAsync(new AuditEvent(_time.GetUtcNow(), "anonymous", "admin.auth_failed", null, new Dictionary<string, string?>
            {
                ["reason"] = reason,
                ["method"] = http.Request.Method,
                ["route"] = route,
            }), cancellationToken);
        }
    }

    public void Dispose()
    {
        _adminToken.Dispose();
        _sessionKey.Dispose();
    }

    private PartitionedRateLimiter<string> For(GuessedCredential credential) => credential switch
    {
        GuessedCredential.AdminToken => _adminToken,
        GuessedCredential.SessionKey => _sessionKey,
        _ => throw new ArgumentOutOfRangeException(nameof(credential)),
    };

    private void Count(GuessedCredential credential, string outcome) => _metrics.AuthFailures.Add(1,
        new KeyValuePair<string, object?>("credential", credential == GuessedCredential.AdminToken ? "admin_token" : "session_key"),
        new KeyValuePair<string, object?>("outcome", outcome));

    private static string Client(HttpContext http) => RateLimiting.ClientPartition(http.Connection.RemoteIpAddress);

    private static ApiProblemException Limited(RateLimitLease lease)
    {
        var retryAfter = lease.TryGetMetadata(MetadataName.RetryAfter, out var wait) ? wait : TimeSpan.FromMinutes(1);
        var seconds = Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds));
        return new ApiProblemException(StatusCodes.Status429TooManyRequests, ErrorCodes.RateLimited,
            string.Create(CultureInfo.InvariantCulture, $"Too many failed attempts; retry after {seconds} s."),
            new Dictionary<string, object?> { [RateLimiting.RetryAfterExtension] = seconds });
    }

    private static PartitionedRateLimiter<string> Budget(int failuresPerMinute) => PartitionedRateLimiter.Create<string, string>(client =>
        RateLimitPartition.GetFixedWindowLimiter(client, _ => new FixedWindowRateLimiterOptions
        {
            PermitLimit = failuresPerMinute,
            Window = TimeSpan.FromMinutes(1),
            QueueLimit = 0,
        }));
}
