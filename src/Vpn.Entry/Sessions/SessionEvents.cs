using System.Diagnostics.CodeAnalysis;

namespace Vpn.Entry.Sessions;

/// <summary>What happened to a live session, as GET /v1/sessions/current/events names it.</summary>
public enum SessionEventKind
{
    /// <summary>Another device's start with replace_existing took the customer's slot (terminate_reason 'replaced').</summary>
    Superseded,

    /// <summary>The session ended for any other reason (logout, device deleted, entitlement, quota, sweep, erasure…).</summary>
    Ended,

    /// <summary>The session is live on another node (a drain migration or a reconnect moved it).</summary>
    Moved,
}

/// <summary>The node a session is on, as much of it as GET /v1/sessions/current shows apart from its endpoint and key.</summary>
public sealed record SessionEventNode(Guid Id, string Name, string Region, string? CountryCode, string? CityCode, string? Pool);

/// <summary>
/// One change of a live session, published to the streams of its customer. <paramref name="Node"/> is the new node of
/// a move (null otherwise); <paramref name="Reason"/> a terminate_reason for superseded/ended, node_drain or reconnect for moved.
/// </summary>
public sealed record SessionEvent(Guid SessionId, Guid CustomerId, SessionEventKind Kind, string Reason, DateTimeOffset At, SessionEventNode? Node)
{
    public bool IsTerminal => Kind is not SessionEventKind.Moved;

    public static string NameOf(SessionEventKind kind) => kind switch
    {
        SessionEventKind.Superseded => "superseded",
        SessionEventKind.Ended => "ended",
        _ => "moved",
    };

    public static bool TryParseKind(string? name, out SessionEventKind kind)
    {
        (var ok, kind) = name switch
        {
            "superseded" => (true, SessionEventKind.Superseded),
            "ended" => (true, SessionEventKind.Ended),
            "moved" => (true, SessionEventKind.Moved),
            _ => (false, default),
        };
        return ok;
    }
}

/// <summary>
/// A session's row as a stream needs it to catch up (a reconnect with Last-Event-ID, or a LISTEN connection that was
/// down): live or not, its terminate_reason, its node now, and whether the node the client was last told about is
/// draining or gone (which makes a move there a drain's). Events are not stored: the row is the truth.
/// </summary>
public sealed record SessionFate(Guid SessionId, bool Live, string? TerminateReason, DateTimeOffset At, SessionEventNode? Node, bool ToldNodeDrainingOrGone);

/// <summary>The store side of session events: the rows streams catch up from, and (PostgreSQL) the LISTEN that feeds the hub.</summary>
public interface ISessionEventStore
{
    /// <summary>
    /// The customer's session <paramref name="sessionId"/> (or, when null, its active session); null when there is no
    /// such row (never existed, another customer's, deleted by retention). <paramref name="toldNodeId"/>: the node the
    /// client was last told about (Guid.Empty when none).
    /// </summary>
    Task<SessionFate?> GetFateAsync(Guid customerId, Guid? sessionId, Guid toldNodeId, CancellationToken cancellationToken);
}

/// <summary>
/// The SSE id of a stream's last event: what the client was told about its session. <c>&lt;session id&gt;/&lt;node id&gt;</c>
/// while live on that node, <c>&lt;session id&gt;/end</c> once its terminal event was sent. A bare session id (an app that
/// knows its session from POST /v1/sessions but never streamed) also parses: "tell me what became of it".
/// </summary>
public readonly record struct SessionEventId(Guid SessionId, Guid NodeId, bool Ended)
{
    public const int MaxLength = 80;

    public override string ToString() => Ended ? $"{SessionId:D}/end" : $"{SessionId:D}/{NodeId:D}";

    public static bool TryParse(string? value, [NotNullWhen(true)] out SessionEventId? id)
    {
        id = null;
        if (string.IsNullOrEmpty(value) || value.Length > MaxLength)
        {
            return false;
        }
        var slash = value.IndexOf('/', StringComparison.Ordinal);
        if (!Guid.TryParseExact(slash < 0 ? value : value[..slash], "D", out var session))
        {
            return false;
        }
        if (slash < 0)
        {
            id = new SessionEventId(session, Guid.Empty, false);
            return true;
        }
        var rest = value[(slash + 1)..];
        if (rest == "end")
        {
            id = new SessionEventId(session, Guid.Empty, true);
            return true;
        }
        if (!Guid.TryParseExact(rest, "D", out var node))
        {
            return false;
        }
        id = new SessionEventId(session, node, false);
        return true;
    }

    /// <summary>
    /// What a client told <paramref name="told"/> missed, computed from the row now: its terminal event when it is no
    /// longer live (a missing row: ended, reason unknown), a move when it is live on another node than it was told, else
    /// nothing. A bare session id (no node told) learns only of an end.
    /// </summary>
    public static SessionEvent? Missed(SessionEventId told, Guid customerId, SessionFate? fate, DateTimeOffset now)
    {
        if (fate is null)
        {
            return new SessionEvent(told.SessionId, customerId, SessionEventKind.Ended, "unknown", now, null);
        }
        if (!fate.Live)
        {
            var reason = fate.TerminateReason ?? "unknown";
            return new SessionEvent(told.SessionId, customerId, reason == "replaced" ? SessionEventKind.Superseded : SessionEventKind.Ended, reason, fate.At, null);
        }
        return told.NodeId != Guid.Empty && fate.Node is { } node && node.Id != told.NodeId
            ? new SessionEvent(told.SessionId, customerId, SessionEventKind.Moved, fate.ToldNodeDrainingOrGone ? "node_drain" : "reconnect", fate.At, node)
            : null;
    }
}
