using System.Security.Cryptography;
using System.Text.Json;

namespace Vpn.Entry.Sessions;

/// <summary>The Idempotency-Key workflow of a session start (POST /v1/sessions).</summary>
public sealed partial class SessionService
{
    private static readonly TimeSpan InProgressWait = TimeSpan.FromSeconds(15);
    private static readonly IReadOnlyDictionary<string, object?> NoExtensions = new Dictionary<string, object?>();

    private JsonSerializerOptions Json => json.Value.SerializerOptions;

    /// <summary>
    /// Same key and body within 24 h: the first answer, nothing new started. A duplicate arriving while the first runs
    /// waits for it. Answers are recorded without the session key (it is stored only as a hash); a replayed start gets a
    /// freshly rotated key, so a client whose first response was lost can still reconnect. 5xx answers are not recorded:
    /// a retry with the key runs again.
    /// </summary>
    private async Task<SessionOutcome> StartIdempotentAsync(Guid customerId, string key, StartSessionRequest request, CancellationToken cancellationToken)
    {
        var requestHash = SHA256.HashData(JsonSerializer.SerializeToUtf8Bytes(request, Json));
        var deadline = time.GetUtcNow() + InProgressWait;
        while (true)
        {
            var begun = await idempotency.BeginAsync(customerId, key, requestHash, time.GetUtcNow(), options.IdempotencyPendingTimeout, cancellationToken);
            switch (begun.Outcome)
            {
                case IdempotencyOutcome.Mismatch:
                    return new SessionFailure.IdempotencyKeyReused();
                case IdempotencyOutcome.InProgress when time.GetUtcNow() < deadline:
                    await Task.Delay(TimeSpan.FromMilliseconds(50), time, cancellationToken);
                    continue;
                case IdempotencyOutcome.InProgress:
                    return new SessionFailure.IdempotencyKeyInProgress();
                case IdempotencyOutcome.Replay:
                    return await ReplayAsync(customerId, key, begun, cancellationToken);
            }
            return await StartAndRecordAsync(customerId, key, request, cancellationToken);
        }
    }

    private async Task<SessionOutcome> StartAndRecordAsync(Guid customerId, string key, StartSessionRequest request, CancellationToken cancellationToken)
    {
        SessionOutcome outcome;
        byte[]? keyHash;
        try
        {
            (outcome, keyHash) = await StartOnceAsync(customerId, request, cancellationToken);
        }
        catch
        {
            await idempotency.ReleaseAsync(customerId, key, CancellationToken.None);
            throw;
        }
        if (outcome.Session is { } view)
        {
            try
            {
                await idempotency.CompleteAsync(customerId, key, StatusCodes.Status201Created,
                    JsonSerializer.Serialize(new Recorded(view with { SessionKey = null }, Convert.ToBase64String(keyHash!), null), Json), CancellationToken.None);
            }
            catch (Exception e)
            {
                // The session is active but its answer (the only copy of its key) cannot be recorded: undone, so the
                // retry with this key starts one instead of meeting a session it can never reconnect to (409).
                await UndoStartAsync(view.Node.Id, view.SessionId, e);
                await idempotency.ReleaseAsync(customerId, key, CancellationToken.None);
                throw;
            }
            return view;
        }
        var problem = SessionProblems.For(outcome.Failure!);
        if (problem.Status >= StatusCodes.Status500InternalServerError)
        {
            await idempotency.ReleaseAsync(customerId, key, CancellationToken.None);
            return outcome;
        }
        await idempotency.CompleteAsync(customerId, key, problem.Status,
            JsonSerializer.Serialize(new Recorded(null, null, new RecordedProblem(problem.Code, problem.Detail, problem.Extensions ?? NoExtensions)), Json),
            CancellationToken.None);
        return outcome;
    }

    private async Task<SessionOutcome> ReplayAsync(Guid customerId, string key, IdempotencyResult begun, CancellationToken cancellationToken)
    {
        var recorded = JsonSerializer.Deserialize<Recorded>(begun.Body!, Json)!;
        if (recorded.Problem is { } p)
        {
            return new SessionFailure.Replayed(new ApiProblem(begun.Status, p.Code, p.Detail, p.Extensions));
        }
        var view = recorded.Session!;
        if (recorded.KeyHash is not { } hash)
        {
            return view;
        }
        // Rotated only while the session is still active with the recorded key; otherwise the answer is replayed without one.
        var newKey = RandomNumberGenerator.GetBytes(32);
        var newHash = SHA256.HashData(newKey);
        if (!await sessions.RotateKeyAsync(view.SessionId, Convert.FromBase64String(hash), newHash, time.GetUtcNow(), cancellationToken))
        {
            return view;
        }
        await idempotency.CompleteAsync(customerId, key, begun.Status,
            JsonSerializer.Serialize(recorded with { KeyHash = Convert.ToBase64String(newHash) }, Json), CancellationToken.None);
        return view with { SessionKey = Base64Url(newKey) };
    }

    /// <summary>The recorded answer: the session (without its key) and its key's hash, or the problem; the status is stored beside it.</summary>
    private sealed record Recorded(SessionView? Session, string? KeyHash, RecordedProblem? Problem);

    private sealed record RecordedProblem(string Code, string Detail, IReadOnlyDictionary<string, object?> Extensions);
}
