using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Http.Features;

namespace Vpn.Entry.Sessions;

/// <summary>The data of one event on the wire (snake_case JSON, <see cref="At"/> in UTC); <see cref="Node"/> only on current and moved.</summary>
public sealed record SessionEventData(
    Guid SessionId,
    string Kind,
    string? Reason,
    DateTime At,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] SessionEventNode? Node);

/// <summary>
/// One open GET /v1/sessions/current/events response, after its checks passed (<see cref="SessionEventEndpoints"/>): the
/// headers, the first event when there is one, then every change of the one session the stream is about, until its
/// terminal event, the token's expiry or revocation, the client leaving, or the application stopping. Changes come from
/// the hub; a resync request (queue full, LISTEN reconnected) reads the row again and sends what differs from what the
/// client was told. Between events a comment <c>: keepalive</c> goes out once no byte was written for the heartbeat.
/// </summary>
internal sealed partial class SessionEventStream(
    SessionEventSubscription subscription,
    SessionEventId told,
    SessionEvent? first,
    SessionEventNode? currentNode,
    JsonSerializerOptions json) : IResult
{
    // How often the stream looks at the token (expiry, the in-memory revocation list) and the heartbeat clock.
    private static readonly TimeSpan MaxTick = TimeSpan.FromSeconds(1);

    private SessionEventId _told = told;
    private long _lastWrite;

    public async Task ExecuteAsync(HttpContext httpContext)
    {
        ArgumentNullException.ThrowIfNull(httpContext);
        var services = httpContext.RequestServices;
        var time = services.GetRequiredService<TimeProvider>();
        var options = services.GetRequiredService<EntryOptions>().SessionEvents;
        var logger = services.GetRequiredService<ILogger<SessionEventStream>>();
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(httpContext.RequestAborted,
            services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping);
        var ct = linked.Token;
        try
        {
            var response = httpContext.Response;
            response.StatusCode = StatusCodes.Status200OK;
            response.ContentType = SessionEventEndpoints.ContentType;
            response.Headers.CacheControl = "no-cache";
            response.Headers["X-Accel-Buffering"] = "no";
            httpContext.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
            await response.StartAsync(ct);
            // EventSource waits this long before it reconnects (with Last-Event-ID) after the stream ends.
            var opening = new StringBuilder("retry: 2000\n\n");
            if (first is not null)
            {
                Append(opening, first);
            }
            else if (currentNode is not null)
            {
                AppendEvent(opening, "current", new SessionEventData(_told.SessionId, "current", null, time.GetUtcNow().UtcDateTime, currentNode));
            }
            await WriteAsync(httpContext, opening, time, ct);
            if (first is { IsTerminal: true })
            {
                return;
            }
            await FollowAsync(httpContext, options, time, logger, ct);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // The client went away or the application is stopping: the stream is over, the client reconnects elsewhere.
        }
        catch (IOException)
        {
            // The connection broke under a write.
        }
        catch (Exception e) when (Data.StoreOutages.IsOutage(e))
        {
            // A catch-up read failed: the client reconnects with its Last-Event-ID and catches up then.
            LogCatchUpFailed(logger, e.GetType().Name);
        }
        finally
        {
            subscription.Dispose();
        }
    }

    private async Task FollowAsync(HttpContext http, SessionEventsOptions options, TimeProvider time, ILogger logger, CancellationToken ct)
    {
        var token = http.AccessToken();
        var issuedAt = http.AccessTokenIssuedAt();
        var customerId = http.CustomerId();
        var revocations = http.RequestServices.GetRequiredService<ITokenRevocations>();
        var store = http.RequestServices.GetRequiredService<ISessionEventStore>();
        var tick = options.Heartbeat < MaxTick ? options.Heartbeat : MaxTick;
        Task<bool>? readable = null;
        Task? timer = null;
        while (true)
        {
            readable ??= subscription.Reader.WaitToReadAsync(ct).AsTask();
            timer ??= Task.Delay(tick, time, ct);
            if (await Task.WhenAny(readable, timer) == readable)
            {
                if (!await readable)
                {
                    return;
                }
                readable = null;
                var text = new StringBuilder();
                var ended = Drain(text);
                if (!ended && subscription.TakeResync() && await CatchUpAsync(store, customerId, time, ct) is { } missed)
                {
                    ended = Append(text, missed);
                }
                if (text.Length > 0)
                {
                    await WriteAsync(http, text, time, ct);
                }
                if (ended)
                {
                    return;
                }
                continue;
            }
            await timer;
            timer = null;
            if (token is not null && token.ExpiresAt <= time.GetUtcNow())
            {
                LogClosed(logger, "token_expired");
                return;
            }
            if (await RevokedAsync(revocations, token, issuedAt, customerId, ct))
            {
                LogClosed(logger, "token_revoked");
                return;
            }
            if (time.GetElapsedTime(_lastWrite) >= options.Heartbeat)
            {
                await WriteAsync(http, new StringBuilder(": keepalive\n\n"), time, ct);
            }
        }
    }

    // The queued events about this stream's session, appended; true when one of them ended it.
    private bool Drain(StringBuilder text)
    {
        while (subscription.Reader.TryRead(out var e))
        {
            if (SessionEventSubscription.IsWake(e) || e.SessionId != _told.SessionId)
            {
                continue;
            }
            if (e.Kind == SessionEventKind.Moved && (e.Node is null || e.Node.Id == _told.NodeId))
            {
                // Already told (the row read at the start saw this move), or a move the stream cannot describe.
                continue;
            }
            if (Append(text, e))
            {
                return true;
            }
        }
        return false;
    }

    private async Task<SessionEvent?> CatchUpAsync(ISessionEventStore store, Guid customerId, TimeProvider time, CancellationToken ct)
    {
        var gate = subscription.Hub.CatchUpGate;
        await gate.WaitAsync(ct);
        try
        {
            return SessionEventId.Missed(_told, customerId, await store.GetFateAsync(customerId, _told.SessionId, _told.NodeId, ct), time.GetUtcNow());
        }
        finally
        {
            gate.Release();
        }
    }

    private static async Task<bool> RevokedAsync(ITokenRevocations revocations, AccessToken? token, DateTimeOffset? issuedAt, Guid customerId,
        CancellationToken ct)
    {
        try
        {
            return token is not null
                ? await revocations.IsRevokedAsync(token.Jti, ct) || await revocations.IsCustomerRevokedAsync(customerId, issuedAt, ct)
                : await revocations.IsCustomerRevokedAsync(customerId, null, ct);
        }
        catch (ApiProblemException)
        {
            // The revocation list is stale: fail closed, as a request would (it answers 503 revocation_unavailable).
            return true;
        }
    }

    // Appends one event and records what the client now knows; true when it is terminal.
    private bool Append(StringBuilder text, SessionEvent e)
    {
        var name = SessionEvent.NameOf(e.Kind);
        _told = e.IsTerminal ? _told with { Ended = true, NodeId = Guid.Empty } : _told with { NodeId = e.Node!.Id };
        AppendEvent(text, name, new SessionEventData(e.SessionId, name, e.Reason, e.At.UtcDateTime, e.Node));
        return e.IsTerminal;
    }

    private void AppendEvent(StringBuilder text, string name, SessionEventData data) =>
        text.Append("id: ").Append(_told.ToString()).Append('\n')
            .Append("event: ").Append(name).Append('\n')
            .Append("data: ").Append(JsonSerializer.Serialize(data, json)).Append("\n\n");

    // Each write is flushed at once: an event is worth nothing in a buffer.
    private async Task WriteAsync(HttpContext http, StringBuilder text, TimeProvider time, CancellationToken ct)
    {
        await http.Response.WriteAsync(text.ToString(), ct);
        await http.Response.Body.FlushAsync(ct);
        _lastWrite = time.GetTimestamp();
    }

    [LoggerMessage(EventId = 242, Level = LogLevel.Information, Message = "Session event stream closed: {Reason}")]
    private static partial void LogClosed(ILogger logger, string reason);

    [LoggerMessage(EventId = 243, Level = LogLevel.Warning, Message = "Session event stream could not catch up from the store ({Reason}); closed, the client resumes with Last-Event-ID")]
    private static partial void LogCatchUpFailed(ILogger logger, string reason);
}
