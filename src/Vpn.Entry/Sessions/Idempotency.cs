namespace Vpn.Entry.Sessions;

public enum IdempotencyOutcome
{
    /// <summary>First use of the key: the caller runs the request and then completes or releases the key.</summary>
    Started,
    /// <summary>The request already ran: Status and Body are its recorded answer.</summary>
    Replay,
    /// <summary>The key was used with a different request body.</summary>
    Mismatch,
    /// <summary>The first request with this key is still running.</summary>
    InProgress,
}

public sealed record IdempotencyResult(IdempotencyOutcome Outcome, int Status = 0, string? Body = null);

/// <summary>Idempotency-Key records of POST /v1/sessions, scoped per customer, kept 24 h.</summary>
public interface IIdempotencyStore
{
    /// <summary>
    /// Claims the key for this request, or reports the recorded answer / a request still running. A record still pending
    /// after <paramref name="abandonAfter"/> belongs to a start whose entry died, or lost the store, before it could
    /// record or release it (a switchover mid-request): it is taken over, so the client's retry runs instead of answering
    /// idempotency_key_in_progress for 24 h. (Were the first still running, the database still allows one live session.)
    /// </summary>
    Task<IdempotencyResult> BeginAsync(Guid customerId, string key, byte[] requestHash, DateTimeOffset now, TimeSpan abandonAfter,
        CancellationToken cancellationToken);

    /// <summary>Records the answer (status and an envelope chosen by the caller).</summary>
    Task CompleteAsync(Guid customerId, string key, int status, string body, CancellationToken cancellationToken);

    /// <summary>Forgets a started key whose request failed without an answer worth replaying (5xx), so a retry runs again.</summary>
    Task ReleaseAsync(Guid customerId, string key, CancellationToken cancellationToken);
}
