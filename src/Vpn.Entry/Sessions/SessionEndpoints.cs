using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;
using Vpn.Entry.Auth;
using Vpn.Entry.Http;

namespace Vpn.Entry.Sessions;

public sealed record ReconnectRequest(string? SessionKey);

public static class SessionEndpoints
{
    private const string IdempotencyHeader = "Idempotency-Key";
    private static readonly TimeSpan InProgressWait = TimeSpan.FromSeconds(15);

    public static IEndpointRouteBuilder MapSessionEndpoints(this IEndpointRouteBuilder app)
    {
        var group = app.MapGroup("/v1/sessions").RequireCustomer().WithTags("Sessions");

        group.MapPost("/", async Task<Created<SessionView>> (StartSessionRequest request, HttpContext http, SessionService service,
            IIdempotencyStore idempotency, IOptions<Microsoft.AspNetCore.Http.Json.JsonOptions> json, TimeProvider time, CancellationToken ct) =>
        {
            var customerId = http.CustomerId();
            var key = http.Request.Headers[IdempotencyHeader];
            if (key.Count == 0)
            {
                return TypedResults.Created("/v1/sessions/current", await service.StartAsync(customerId, request, ct));
            }
            var idempotencyKey = key.Count == 1 && key[0] is { Length: >= 1 and <= 255 } k && k.All(c => c is >= ' ' and <= '~')
                ? k
                : throw ApiProblemException.BadRequest("Idempotency-Key must be 1-255 printable ASCII characters.");
            var session = await RunIdempotentAsync(customerId, idempotencyKey, request, service, idempotency, json.Value.SerializerOptions, time, ct);
            return TypedResults.Created("/v1/sessions/current", session);
        }).RequireRateLimiting(RateLimiting.SessionsPolicy);

        // Unknown keys spend a budget per client address as well as the per-customer one: guessing across many
        // customers' accounts from one address is throttled too.
        group.MapPost("/reconnect", async Task<Ok<SessionView>> (ReconnectRequest request, HttpContext http, SessionService service,
            AuthFailureThrottle throttle, CancellationToken ct) =>
        {
            throttle.ThrowIfBlocked(GuessedCredential.SessionKey, http);
            try
            {
                return TypedResults.Ok(await service.ReconnectAsync(http.CustomerId(), request.SessionKey, ct));
            }
            catch (ApiProblemException problem) when (problem.Code == ErrorCodes.InvalidSessionKey)
            {
                await throttle.RecordFailureAsync(GuessedCredential.SessionKey, http, "unknown_key", ct);
                throw;
            }
        }).RequireRateLimiting(RateLimiting.SessionsPolicy);

        group.MapGet("/current", async Task<Ok<SessionView>> (HttpContext http, SessionService service, CancellationToken ct) =>
            TypedResults.Ok(await service.GetCurrentAsync(http.CustomerId(), ct) ?? throw NoActiveSession()));

        group.MapDelete("/current", async Task<NoContent> (HttpContext http, SessionService service, CancellationToken ct) =>
            await service.TerminateCurrentAsync(http.CustomerId(), ct) ? TypedResults.NoContent() : throw NoActiveSession());

        return app;
    }

    /// <summary>
    /// Same key and body within 24 h: the first answer, nothing new started. A duplicate arriving while the first runs
    /// waits for it. Answers are recorded without the session key (it is stored only as a hash); a replayed 201 gets a
    /// freshly rotated key, so a client whose first response was lost can still reconnect.
    /// </summary>
    private static async Task<SessionView> RunIdempotentAsync(Guid customerId, string key, StartSessionRequest request, SessionService service,
        IIdempotencyStore store, JsonSerializerOptions json, TimeProvider time, CancellationToken ct)
    {
        var requestHash = SHA256.HashData(JsonSerializer.SerializeToUtf8Bytes(request, json));
        var deadline = time.GetUtcNow() + InProgressWait;
        while (true)
        {
            var begun = await store.BeginAsync(customerId, key, requestHash, time.GetUtcNow(), ct);
            switch (begun.Outcome)
            {
                case IdempotencyOutcome.Mismatch:
                    throw new ApiProblemException(StatusCodes.Status422UnprocessableEntity, ErrorCodes.IdempotencyKeyReused,
                        "This Idempotency-Key was used with a different request.");
                case IdempotencyOutcome.InProgress when time.GetUtcNow() < deadline:
                    await Task.Delay(TimeSpan.FromMilliseconds(50), time, ct);
                    continue;
                case IdempotencyOutcome.InProgress:
                    throw new ApiProblemException(StatusCodes.Status409Conflict, ErrorCodes.IdempotencyKeyInProgress,
                        "A request with this Idempotency-Key is still running; retry shortly.");
                case IdempotencyOutcome.Replay:
                    return await ReplayAsync(customerId, key, begun, service, store, json, ct);
            }
            try
            {
                var (view, keyHash) = await service.StartWithKeyHashAsync(customerId, request, ct);
                try
                {
                    await store.CompleteAsync(customerId, key, StatusCodes.Status201Created,
                        JsonSerializer.Serialize(new Recorded(view with { SessionKey = null }, Convert.ToBase64String(keyHash), null), json), CancellationToken.None);
                }
                catch (Exception e)
                {
                    // The session is active but its answer (the only copy of its key) cannot be recorded: undone, so the
                    // retry with this key starts one instead of meeting a session it can never reconnect to (409).
                    await service.UndoStartAsync(view.Node.Id, view.SessionId, e);
                    throw;
                }
                return view;
            }
            catch (ApiProblemException problem) when (problem.Status < 500)
            {
                await store.CompleteAsync(customerId, key, problem.Status,
                    JsonSerializer.Serialize(new Recorded(null, null, new RecordedProblem(problem.Code, problem.Message, problem.Extensions)), json),
                    CancellationToken.None);
                throw;
            }
            catch
            {
                await store.ReleaseAsync(customerId, key, CancellationToken.None);
                throw;
            }
        }
    }

    private static async Task<SessionView> ReplayAsync(Guid customerId, string key, IdempotencyResult begun, SessionService service,
        IIdempotencyStore store, JsonSerializerOptions json, CancellationToken ct)
    {
        var recorded = JsonSerializer.Deserialize<Recorded>(begun.Body!, json)!;
        if (recorded.Problem is { } p)
        {
            throw new ApiProblemException(begun.Status, p.Code, p.Detail, p.Extensions);
        }
        var view = recorded.Session!;
        if (recorded.KeyHash is { } hash && await service.RotateKeyForReplayAsync(view.SessionId, Convert.FromBase64String(hash), ct) is { } fresh)
        {
            await store.CompleteAsync(customerId, key, begun.Status,
                JsonSerializer.Serialize(recorded with { KeyHash = Convert.ToBase64String(fresh.Hash) }, json), CancellationToken.None);
            return view with { SessionKey = fresh.Key };
        }
        return view;
    }

    private sealed record Recorded(SessionView? Session, string? KeyHash, RecordedProblem? Problem);

    private sealed record RecordedProblem(string Code, string Detail, IReadOnlyDictionary<string, object?> Extensions);

    private static ApiProblemException NoActiveSession() => ApiProblemException.NotFound(ErrorCodes.NoActiveSession, "There is no active session.");
}
