using Vpn.Domain.Nodes;
using Vpn.Domain.Subscriptions;
using Vpn.Entry.Subscriptions;

namespace Vpn.Entry.Sessions;

/// <summary>Why a session start or reconnect did not happen: a closed set, each answered by <see cref="SessionProblems"/>.</summary>
public abstract record SessionFailure
{
    private SessionFailure()
    {
    }

    /// <summary>A malformed field or header; Code is invalid_request or a sharper one (invalid_node_hint).</summary>
    public sealed record InvalidRequest(string Detail, string Code = ErrorCodes.InvalidRequest) : SessionFailure;

    public sealed record NotEntitled(EntitlementDenial Denial) : SessionFailure;

    /// <summary>The customer's data use in this billing period reached the plan's quota; it resets at ResetsAt.</summary>
    public sealed record QuotaExceeded(DateTimeOffset ResetsAt) : SessionFailure;

    /// <summary>The device is unknown, another customer's, or was deleted during the start.</summary>
    public sealed record DeviceNotFound : SessionFailure;

    /// <summary>The customer has another live session (its id, when it could be read).</summary>
    public sealed record Conflict(Guid? ActiveSessionId) : SessionFailure;

    /// <summary>No node is a candidate; Rejected counts the nodes by reason (the ones tried and found full as at capacity).</summary>
    public sealed record NoNodes(IReadOnlyDictionary<NodeRejection, int> Rejected) : SessionFailure;

    /// <summary>The selected node's core did not set up the tunnel (or the start lost to a later one there without a live winner).</summary>
    public sealed record NodeUnavailable : SessionFailure;

    /// <summary>Reconnect: the session had to move and no candidate node took it.</summary>
    public sealed record NoNodeTookOver : SessionFailure;

    /// <summary>Reconnect: the key is unknown, another customer's, malformed, or was rotated meanwhile.</summary>
    public sealed record InvalidSessionKey : SessionFailure;

    /// <summary>The Idempotency-Key was used before with a different body.</summary>
    public sealed record IdempotencyKeyReused : SessionFailure;

    /// <summary>The first request with this Idempotency-Key is still running after the wait.</summary>
    public sealed record IdempotencyKeyInProgress : SessionFailure;

    /// <summary>The answer recorded for an earlier request with the same Idempotency-Key, replayed as it was given.</summary>
    public sealed record Replayed(ApiProblem Problem) : SessionFailure;
}

/// <summary>What a start or reconnect gives: the session, or the failure (exactly one of them is set).</summary>
public sealed class SessionOutcome
{
    private SessionOutcome(SessionView? session, SessionFailure? failure) => (Session, Failure) = (session, failure);

    public SessionView? Session { get; }

    public SessionFailure? Failure { get; }

    public static implicit operator SessionOutcome(SessionView session) => new(session ?? throw new ArgumentNullException(nameof(session)), null);

    public static implicit operator SessionOutcome(SessionFailure failure) => new(null, failure ?? throw new ArgumentNullException(nameof(failure)));
}

/// <summary>
/// The one mapping from a session failure to its contract answer (status, code, detail, extensions). The endpoints answer
/// with it; the Idempotency-Key record keeps it, so a replay answers exactly the same.
/// </summary>
public static class SessionProblems
{
    public static ApiProblem For(SessionFailure failure) => failure switch
    {
        SessionFailure.InvalidRequest f => new(StatusCodes.Status400BadRequest, f.Code, f.Detail),
        SessionFailure.NotEntitled f => EntitlementProblems.For(f.Denial),
        SessionFailure.QuotaExceeded f => new(StatusCodes.Status403Forbidden, ErrorCodes.QuotaExceeded,
            "The plan's data quota for this billing period is used up.", new Dictionary<string, object?> { ["resets_at"] = f.ResetsAt }),
        SessionFailure.DeviceNotFound => new(StatusCodes.Status404NotFound, ErrorCodes.DeviceNotFound, "No such device."),
        SessionFailure.Conflict f => new(StatusCodes.Status409Conflict, ErrorCodes.SessionConflict, "Another session is active for this customer.",
            new Dictionary<string, object?> { ["active_session_id"] = f.ActiveSessionId }),
        SessionFailure.NoNodes f => new(StatusCodes.Status503ServiceUnavailable, ErrorCodes.NoNodesAvailable,
            "No node in the region can take a session right now.", new Dictionary<string, object?>
            {
                ["rejected"] = new Dictionary<string, int>
                {
                    ["region_mismatch"] = f.Rejected.GetValueOrDefault(NodeRejection.RegionMismatch),
                    ["filter_mismatch"] = f.Rejected.GetValueOrDefault(NodeRejection.FilterMismatch),
                    ["unhealthy"] = f.Rejected.GetValueOrDefault(NodeRejection.Unhealthy),
                    ["stale_heartbeat"] = f.Rejected.GetValueOrDefault(NodeRejection.StaleHeartbeat),
                    ["at_capacity"] = f.Rejected.GetValueOrDefault(NodeRejection.AtCapacity),
                    ["draining"] = f.Rejected.GetValueOrDefault(NodeRejection.Draining),
                },
            }),
        SessionFailure.NodeUnavailable => new(StatusCodes.Status502BadGateway, ErrorCodes.NodeUnavailable,
            "The selected node could not set up the tunnel; retry."),
        SessionFailure.NoNodeTookOver => new(StatusCodes.Status502BadGateway, ErrorCodes.NodeUnavailable, "No node could take over the session; retry."),
        SessionFailure.InvalidSessionKey => new(StatusCodes.Status401Unauthorized, ErrorCodes.InvalidSessionKey, "The session key is not valid."),
        SessionFailure.IdempotencyKeyReused => new(StatusCodes.Status422UnprocessableEntity, ErrorCodes.IdempotencyKeyReused,
            "This Idempotency-Key was used with a different request."),
        SessionFailure.IdempotencyKeyInProgress => new(StatusCodes.Status409Conflict, ErrorCodes.IdempotencyKeyInProgress,
            "A request with this Idempotency-Key is still running; retry shortly."),
        SessionFailure.Replayed f => f.Problem,
        _ => throw new ArgumentOutOfRangeException(nameof(failure), failure, "Not a session failure."),
    };
}
