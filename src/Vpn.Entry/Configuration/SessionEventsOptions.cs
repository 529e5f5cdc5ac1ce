using Vpn.ServiceDefaults;

namespace Vpn.Entry.Configuration;

/// <summary>GET /v1/sessions/current/events: keep-alives and the bounds on open streams (<see cref="Sessions.SessionEventHub"/>).</summary>
public sealed class SessionEventsOptions
{
    /// <summary>
    /// Time without a write after which a stream sends the comment <c>: keepalive</c>, so proxies and load balancers
    /// do not close an idle stream (APP_SESSION_EVENTS_HEARTBEAT_SECS, default 15; 1–300).
    /// </summary>
    public TimeSpan Heartbeat { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>Open streams of one customer on one replica; one more answers 429 too_many_streams (APP_SESSION_EVENTS_MAX_PER_CUSTOMER, default 4; 1–100).</summary>
    public int MaxPerCustomer { get; init; } = 4;

    /// <summary>Open streams on one replica; one more answers 503 server_busy (APP_SESSION_EVENTS_MAX_STREAMS, default 10000; 1–1000000).</summary>
    public int MaxStreams { get; init; } = 10_000;

    public static SessionEventsOptions Load(Microsoft.Extensions.Configuration.IConfiguration configuration, List<string> problems) => new()
    {
        Heartbeat = TimeSpan.FromSeconds(Settings.Number(configuration, "APP_SESSION_EVENTS_HEARTBEAT_SECS", 15, 1, 300, problems)),
        MaxPerCustomer = Settings.Number(configuration, "APP_SESSION_EVENTS_MAX_PER_CUSTOMER", 4, 1, 100, problems),
        MaxStreams = Settings.Number(configuration, "APP_SESSION_EVENTS_MAX_STREAMS", 10_000, 1, 1_000_000, problems),
    };
}
