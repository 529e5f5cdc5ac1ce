using Microsoft.AspNetCore.Http.HttpResults;

namespace Vpn.Entry.Sessions;

public sealed record ReconnectRequest(string? SessionKey);

/// <summary>
/// The sessions API: each handler asks <see cref="SessionService"/> and answers its outcome, the failures through
/// <see cref="SessionProblems"/>; each handler's result type names its error statuses, so OpenAPI lists them.
/// </summary>
public static class SessionEndpoints
{
    private const string IdempotencyHeader = "Idempotency-Key";
    private const string CurrentPath = "/v1/sessions/current";

    public static IEndpointRouteBuilder MapSessionEndpoints(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/sessions").RequireCustomer().WithTags("Sessions");

        group.MapPost("/", async Task<Results<Created<SessionView>, ApiProblemResult<StartProblems>>> (StartSessionRequest request, HttpContext http,
            SessionService service, CancellationToken ct) =>
            Answer<Created<SessionView>, StartProblems>(await service.StartAsync(http.CustomerId(), request, http.Request.Headers[IdempotencyHeader], ct),
                session => TypedResults.Created(CurrentPath, session)))
            .RequireRateLimiting(RateLimiting.SessionsPolicy)
            .RequireSessionAdmission();

        // Unknown keys spend a budget per client address as well as the per-customer one: guessing across many
        // customers' accounts from one address is throttled too.
        group.MapPost("/reconnect", async Task<Results<Ok<SessionView>, ApiProblemResult<ReconnectProblems>>> (ReconnectRequest request,
            HttpContext http, SessionService service, AuthFailureThrottle throttle, CancellationToken ct) =>
        {
            throttle.ThrowIfBlocked(GuessedCredential.SessionKey, http);
            var outcome = await service.ReconnectAsync(http.CustomerId(), request.SessionKey, ct);
            if (outcome.Failure is SessionFailure.InvalidSessionKey)
            {
                await throttle.RecordFailureAsync(GuessedCredential.SessionKey, http, "unknown_key", ct);
            }
            return Answer<Ok<SessionView>, ReconnectProblems>(outcome, TypedResults.Ok);
        }).RequireRateLimiting(RateLimiting.SessionsPolicy).RequireSessionAdmission();

        group.MapGet("/current", async Task<Results<Ok<SessionView>, ApiProblemResult<CurrentProblems>>> (HttpContext http, SessionService service,
            CancellationToken ct) =>
            await service.GetCurrentAsync(http.CustomerId(), ct) is { } session ? TypedResults.Ok(session) : NoActiveSession());

        group.MapDelete("/current", async Task<Results<NoContent, ApiProblemResult<CurrentProblems>>> (HttpContext http, SessionService service,
            CancellationToken ct) =>
            await service.TerminateCurrentAsync(http.CustomerId(), ct) ? TypedResults.NoContent() : NoActiveSession());

        return app;
    }

    private static Results<TOk, ApiProblemResult<TStatuses>> Answer<TOk, TStatuses>(SessionOutcome outcome, Func<SessionView, TOk> ok)
        where TOk : IResult
        where TStatuses : IProblemStatuses =>
        outcome.Failure is { } failure ? new ApiProblemResult<TStatuses>(SessionProblems.For(failure)) : ok(outcome.Session!);

    private static ApiProblemResult<CurrentProblems> NoActiveSession() =>
        new(new ApiProblem(StatusCodes.Status404NotFound, ErrorCodes.NoActiveSession, "There is no active session."));

    /// <summary>invalid_request (and invalid_node_hint), the entitlement, device_not_found, session_conflict and
    /// idempotency_key_in_progress, idempotency_key_reused, node_unavailable, no_nodes_available_in_region, node_busy,
    /// server_busy.</summary>
    private sealed class StartProblems : IProblemStatuses
    {
        public static IReadOnlyList<int> Statuses { get; } = [400, 403, 404, 409, 422, 502, 503];
    }

    /// <summary>invalid_request, invalid_session_key, the entitlement, rate_limited (guessed keys), node_unavailable, no_nodes_available_in_region,
    /// node_busy, server_busy.</summary>
    private sealed class ReconnectProblems : IProblemStatuses
    {
        public static IReadOnlyList<int> Statuses { get; } = [400, 401, 403, 429, 502, 503];
    }

    /// <summary>no_active_session.</summary>
    private sealed class CurrentProblems : IProblemStatuses
    {
        public static IReadOnlyList<int> Statuses { get; } = [404];
    }
}
