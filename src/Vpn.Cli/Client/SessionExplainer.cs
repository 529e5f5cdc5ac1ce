using Vpn.Cli.Output;

namespace Vpn.Cli.Client;

/// <summary>
/// What a refused start or reconnect means, in plain words, from the problem's <c>code</c> (and for 503
/// <c>no_nodes_available_in_region</c> its <c>rejected</c> counts): what happened and what to do.
/// </summary>
public static class SessionExplainer
{
    private static readonly (string Reason, string Words)[] Rejections =
    [
        ("unhealthy", "unhealthy"),
        ("stale_heartbeat", "not heard from recently"),
        ("at_capacity", "full"),
        ("draining", "being taken out of service"),
        ("filter_mismatch", "in the region but not matching your country/city/pool choice"),
        ("region_mismatch", "in other regions"),
    ];

    public static string Explain(ApiProblemException problem)
    {
        ArgumentNullException.ThrowIfNull(problem);
        var body = problem.Body;
        var retry = body.Num("retry_after") is { } seconds ? $" Entry suggests retrying in {seconds} s." : "";
        return problem.Code switch
        {
            "session_conflict" => "You already have a session"
                + (body.Str("active_session_id") is { } id ? $" ({id})" : "")
                + ", on this or another device, or a start of yours is still in progress. Only one session per account can be active: "
                + "run 'vpnctl client connect --replace' to end the other one and connect here.",
            "idempotency_key_in_progress" => "Your previous connect with the same request is still being set up by entry; run the same command again in a few seconds (it will not start a second session).",
            "idempotency_key_reused" => "This connect's Idempotency-Key was already used for a different request; run connect again (a fresh key is used).",
            "no_nodes_available_in_region" => "No server can take a session in that region right now" + Rejected(body) + "." + retry
                + " Try again later, or another region or fewer filters.",
            "node_unavailable" => "The chosen server could not set up the tunnel; nothing was left half-done, so it is safe to retry." + retry,
            "store_unavailable" => "Entry's database failed after the server was asked; nothing was left half-done, retry." + retry,
            "server_busy" or "node_busy" => "The service is shedding load right now; nothing was started, retry." + retry,
            "rate_limited" => "Too many attempts in a short time; wait a little." + retry,
            "subscription_inactive" => "Your subscription is not active (or you have none): nothing can be started until it is.",
            "region_not_allowed" => "Your plan does not include that region.",
            "quota_exceeded" => "Your plan's data for this billing period is used up"
                + (body.Str("resets_at") is { } resets ? $"; it resets at {resets}" : "") + ". 'vpnctl client status' shows what is used.",
            "device_not_found" => "This device is no longer registered (it may have been removed): run connect again to register a new one.",
            "device_limit_reached" => "Your plan's device limit is reached: remove a device first.",
            "invalid_session_key" => "The session key is no longer valid (the session ended, or the key was already used by a reconnect): run 'vpnctl client connect'.",
            "no_active_session" => "You have no active session.",
            "token_expired" or "token_revoked" or "invalid_token" or "missing_token" => "You are not signed in (or the sign-in expired): run 'vpnctl client login'.",
            _ => problem.Detail.Length > 0 ? problem.Detail : "Entry refused the request.",
        };
    }

    /// <summary>", 1 unhealthy and 2 full (of 3 servers)" from the rejected counts; empty when there are none.</summary>
    public static string Rejected(JsonObject? body)
    {
        if (body?["rejected"] is not JsonObject rejected)
        {
            return "";
        }
        var parts = Rejections.Select(r => (Count: rejected.Num(r.Reason) ?? 0, r.Words)).Where(r => r.Count > 0)
            .Select(r => $"{r.Count} {(r.Count == 1 ? "server" : "servers")} {r.Words}").ToList();
        return parts.Count == 0 ? ": no server is registered there" : ": " + string.Join(", ", parts);
    }
}
