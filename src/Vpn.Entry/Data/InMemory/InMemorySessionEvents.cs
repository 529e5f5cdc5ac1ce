namespace Vpn.Entry.Data.InMemory;

/// <summary>
/// Session events of the in-memory store, in-process: the session table's change hook (<see cref="InMemorySessionTable"/>)
/// publishes what migration 0009's trigger would notify — a live session superseded (replaced), ended (any other
/// reason; removed by erasure: customer_erased) or moved to another node (node_drain when its key stayed, reconnect when
/// it changed) — straight to the hub. Created with the hub, i.e. before the first stream subscribes.
/// </summary>
public sealed class InMemorySessionEvents : ISessionEventStore
{
    private readonly InMemoryDatabase _db;
    private readonly SessionEventHub _hub;
    private readonly TimeProvider _time;

    public InMemorySessionEvents(InMemoryDatabase db, SessionEventHub hub, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(db);
        (_db, _hub, _time) = (db, hub, time);
        lock (db.Gate)
        {
            db.Sessions.Changed = OnChanged;
        }
    }

    public Task<SessionFate?> GetFateAsync(Guid customerId, Guid? sessionId, Guid toldNodeId, CancellationToken cancellationToken)
    {
        lock (_db.Gate)
        {
            var session = sessionId is { } id
                ? _db.Sessions.TryGetValue(id, out var s) && s.CustomerId == customerId ? s : null
                : _db.Sessions.Values.FirstOrDefault(s => s.CustomerId == customerId && s.State == Domain.Sessions.SessionState.Active);
            if (session is null)
            {
                return Task.FromResult<SessionFate?>(null);
            }
            var toldGone = !_db.Nodes.TryGetValue(toldNodeId, out var told) || told.Draining;
            return Task.FromResult<SessionFate?>(new SessionFate(session.Id, InMemoryDatabase.IsLive(session), session.TerminateReason,
                session.EndedAt ?? _time.GetUtcNow(), NodeOf(session.NodeId), toldGone));
        }
    }

    // Under the database's lock (the table calls it from inside every write).
    private void OnChanged(SessionRecord before, SessionRecord? after)
    {
        if (!InMemoryDatabase.IsLive(before))
        {
            return;
        }
        SessionEvent? e = null;
        if (after is null)
        {
            e = new SessionEvent(before.Id, before.CustomerId, SessionEventKind.Ended, "customer_erased", _time.GetUtcNow(), null);
        }
        else if (!InMemoryDatabase.IsLive(after))
        {
            var reason = after.TerminateReason ?? "unknown";
            e = new SessionEvent(before.Id, before.CustomerId, reason == "replaced" ? SessionEventKind.Superseded : SessionEventKind.Ended, reason,
                after.EndedAt ?? _time.GetUtcNow(), null);
        }
        else if (after.NodeId != before.NodeId)
        {
            var reason = after.KeyHash.AsSpan().SequenceEqual(before.KeyHash) ? "node_drain" : "reconnect";
            e = new SessionEvent(before.Id, before.CustomerId, SessionEventKind.Moved, reason, _time.GetUtcNow(), NodeOf(after.NodeId));
        }
        if (e is not null)
        {
            _hub.Publish(e);
        }
    }

    private SessionEventNode? NodeOf(Guid nodeId) =>
        _db.Nodes.TryGetValue(nodeId, out var n) ? new SessionEventNode(n.Id, n.Name, n.Region, n.CountryCode, n.CityCode, n.Pool) : null;
}
