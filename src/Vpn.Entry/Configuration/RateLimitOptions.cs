using System.Net;
using Vpn.ServiceDefaults;

namespace Vpn.Entry.Configuration;

/// <summary>ASP.NET Core rate limiter budgets and the proxies whose X-Forwarded-For is believed.</summary>
public sealed class RateLimitOptions
{
    /// <summary>Sign-in attempts per client address per minute (APP_RATE_LIMIT_SIGNIN_PER_MIN, default 20).</summary>
    public int SignInPerMinute { get; init; } = 20;

    /// <summary>Session starts and reconnects per customer per minute (APP_RATE_LIMIT_SESSIONS_PER_MIN, default 60).</summary>
    public int SessionsPerMinute { get; init; } = 60;

    /// <summary>
    /// Failed admin authentications (wrong or missing x-admin-token) per client address per minute
    /// (APP_RATE_LIMIT_ADMIN_FAILURES_PER_MIN, default 10); beyond it every admin request from that address answers 429.
    /// </summary>
    public int AdminFailuresPerMinute { get; init; } = 10;

    /// <summary>
    /// Reconnects with an unknown session key per client address per minute (APP_RATE_LIMIT_SESSION_KEY_FAILURES_PER_MIN,
    /// default 30); beyond it reconnects from that address answer 429, whichever customer sends them.
    /// </summary>
    public int SessionKeyFailuresPerMinute { get; init; } = 30;

    /// <summary>APP_TRUSTED_PROXIES: addresses or CIDR networks; X-Forwarded-For from anyone else is ignored.</summary>
    public IReadOnlyList<IPAddress> TrustedProxies { get; init; } = [];

    public IReadOnlyList<IPNetwork> TrustedNetworks { get; init; } = [];

    public static RateLimitOptions Load(Microsoft.Extensions.Configuration.IConfiguration configuration, List<string> problems)
    {
        var proxies = new List<IPAddress>();
        var networks = new List<IPNetwork>();
        foreach (var entry in (configuration["APP_TRUSTED_PROXIES"] ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (entry.Contains('/', StringComparison.Ordinal) && IPNetwork.TryParse(entry, out var network))
            {
                networks.Add(network);
            }
            else if (!entry.Contains('/', StringComparison.Ordinal) && IPAddress.TryParse(entry, out var address))
            {
                proxies.Add(address);
            }
            else
            {
                problems.Add("APP_TRUSTED_PROXIES must be a comma-separated list of IP addresses or CIDR networks.");
            }
        }
        return new RateLimitOptions
        {
            SignInPerMinute = Settings.Number(configuration, "APP_RATE_LIMIT_SIGNIN_PER_MIN", 20, 1, 1_000_000, problems),
            SessionsPerMinute = Settings.Number(configuration, "APP_RATE_LIMIT_SESSIONS_PER_MIN", 60, 1, 1_000_000, problems),
            AdminFailuresPerMinute = Settings.Number(configuration, "APP_RATE_LIMIT_ADMIN_FAILURES_PER_MIN", 10, 1, 1_000_000, problems),
            SessionKeyFailuresPerMinute = Settings.Number(configuration, "APP_RATE_LIMIT_SESSION_KEY_FAILURES_PER_MIN", 30, 1, 1_000_000, problems),
            TrustedProxies = proxies,
            TrustedNetworks = networks,
        };
    }
}
