using Microsoft.AspNetCore.Http.Json;
using Microsoft.Extensions.Options;

namespace Vpn.Entry.Sessions;

/// <summary>
/// GET /v1/sessions/current/events — Server-Sent Events about the customer's session: superseded, ended, moved (with
/// the reason), within a second, whichever replica made the change. A stream is about one session: the active one when
/// it opens (404 no_active_session when there is none, as GET /v1/sessions/current), or the one its Last-Event-ID names.
/// Everything a stream can miss is computed from that session's row on reconnect (events are not stored); once the
/// terminal event was sent, a reconnect with its id answers 204, which tells EventSource to stop.
/// </summary>
public static class SessionEventEndpoints
{
    public const string ContentType = "text/event-stream";

    public const string LastEventIdHeader = "Last-Event-ID";

    public static IEndpointRouteBuilder MapSessionEventEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGroup("/v1/sessions").RequireCustomer().WithTags("Sessions")
            .MapGet("/current/events", OpenAsync)
            .Produces<string>(StatusCodes.Status200OK, ContentType)
            .Produces(StatusCodes.Status204NoContent)
            .AddOpenApiOperationTransformer((operation, _, _) =>
            {
                if (operation.Responses?.TryGetValue("200", out var ok) == true && ok is Microsoft.OpenApi.OpenApiResponse stream)
                {
                    stream.Description = "The event stream (docs/api-v1.md): `current` first (unless resuming), then `superseded`, `ended` or "
                        + "`moved`; each event's `id` is what Last-Event-ID resumes from, its `data` JSON {session_id, kind, reason, at, node}; "
                        + "`: keepalive` comments between. The stream ends after a terminal event, at the token's expiry or revocation.";
                }
                if (operation.Responses?.TryGetValue("204", out var none) == true && none is Microsoft.OpenApi.OpenApiResponse done)
                {
                    done.Description = "Last-Event-ID names a terminal event already sent: nothing more will happen to that session (EventSource stops).";
                }
                return Task.CompletedTask;
            });
        return app;
    }

    // Last-Event-ID: the id of the last event the client received (EventSource sends it on reconnect), or a session id.
    private static async Task<IResult> OpenAsync([Microsoft.AspNetCore.Mvc.FromHeader(Name = LastEventIdHeader)] string? lastEventId, HttpContext http, SessionEventHub hub,
        ISessionEventStore store, IOptions<JsonOptions> json, TimeProvider time, CancellationToken ct)
    {
        var customerId = http.CustomerId();
        SessionEventId? lastId = null;
        if (!string.IsNullOrEmpty(lastEventId) && !SessionEventId.TryParse(lastEventId, out lastId))
        {
            throw ApiProblemException.BadRequest("Last-Event-ID must be an id this stream sent, or a session id.");
        }
        if (lastId is { Ended: true })
        {
            // Its terminal event was delivered: nothing more will happen to that session.
            return TypedResults.NoContent();
        }
        // Subscribed before the row is read: a change committed in between arrives as an event (and is deduplicated).
        var subscription = hub.Subscribe(customerId);
        var started = false;
        try
        {
            SessionEventStream stream;
            if (lastId is { } told)
            {
                var fate = await store.GetFateAsync(customerId, told.SessionId, told.NodeId, ct);
                var missed = SessionEventId.Missed(told, customerId, fate, time.GetUtcNow());
                // A bare session id that is still live: the client learns where it is (and gets an id to resume with).
                var bare = told.NodeId == Guid.Empty && missed is null && fate?.Node is not null;
                stream = new SessionEventStream(subscription, bare ? told with { NodeId = fate!.Node!.Id } : told, missed, bare ? fate!.Node : null,
                    json.Value.SerializerOptions);
            }
            else
            {
                if (await store.GetFateAsync(customerId, null, Guid.Empty, ct) is not { Live: true, Node: { } node } current)
                {
                    throw ApiProblemException.NotFound(ErrorCodes.NoActiveSession, "There is no active session.");
                }
                stream = new SessionEventStream(subscription, new SessionEventId(current.SessionId, node.Id, false), null, node, json.Value.SerializerOptions);
            }
            started = true;
            return stream;
        }
        finally
        {
            // Owned by the stream once it exists; released here when the stream never started.
            if (!started)
            {
                subscription.Dispose();
            }
        }
    }
}
