using System.ComponentModel.DataAnnotations;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Vpn.Entry.Sessions;

public sealed record ReconnectRequest([property: Required] string? SessionKey);

/// <summary>
/// The sessions API: each handler asks <see cref="SessionService"/> and answers its outcome, the failures through
/// <see cref="SessionProblems"/>; each handler's result type names its error statuses, so OpenAPI lists them.
/// </summary>
public static class SessionEndpoints
{
    private const string CurrentPath = "/v1/sessions/current";

    public static IEndpointRouteBuilder MapSessionEndpoints(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/sessions").RequireCustomer().WithTags("Sessions");

        group.MapPost("/", async Task<Results<Created<SessionView>, ApiProblemResult<StartProblems>>> (StartSessionRequest request, HttpContext http,
            SessionService service, CancellationToken ct) =>
            Answer<Created<SessionView>, StartProblems>(await service.StartAsync(http.CustomerId(), request, http.Request.Headers[IdempotencyKeyHeader.Name], ct),
                session => TypedResults.Created(CurrentPath, session)))
            .WithMetadata(IdempotencyKeyHeader.Instance)
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

    private sealed class StartProblems : IProblemStatuses
    {
        public static IReadOnlyList<ProblemCodes> Problems { get; } =
        [
            new(400, [ErrorCodes.InvalidRequest, ErrorCodes.InvalidNodeHint]),
            new(403, [ErrorCodes.SubscriptionInactive, ErrorCodes.RegionNotAllowed, ErrorCodes.QuotaExceeded]),
            new(404, [ErrorCodes.DeviceNotFound]),
            new(409, [ErrorCodes.SessionConflict, ErrorCodes.IdempotencyKeyInProgress]),
            new(422, [ErrorCodes.IdempotencyKeyReused]),
            new(502, [ErrorCodes.NodeUnavailable]),
            new(503, [ErrorCodes.NoNodesAvailable, ErrorCodes.NodeBusy]),
        ];
    }

    private sealed class ReconnectProblems : IProblemStatuses
    {
        public static IReadOnlyList<ProblemCodes> Problems { get; } =
        [
            new(400, [ErrorCodes.InvalidRequest]),
            new(401, [ErrorCodes.InvalidSessionKey]),
            new(403, [ErrorCodes.SubscriptionInactive, ErrorCodes.RegionNotAllowed]),
            new(502, [ErrorCodes.NodeUnavailable]),
            new(503, [ErrorCodes.NoNodesAvailable, ErrorCodes.NodeBusy]),
        ];
    }

    private sealed class CurrentProblems : IProblemStatuses
    {
        public static IReadOnlyList<ProblemCodes> Problems { get; } = [new(404, [ErrorCodes.NoActiveSession])];
    }
}
