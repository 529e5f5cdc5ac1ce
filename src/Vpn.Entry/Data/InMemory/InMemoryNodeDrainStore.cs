using Vpn.Domain.Sessions;
using Vpn.Entry.Nodes;

namespace Vpn.Entry.Data.InMemory;

public sealed class InMemoryNodeDrainStore(InMemoryDatabase db) : INodeDrainStore
{
    public Task<Node?> SetDrainAsync(Guid nodeId, bool draining, bool migrate, DateTimeOffset now, CancellationToken cancellationToken)
    {
        lock (db.Gate)
        {
            if (!db.Nodes.TryGetValue(nodeId, out var node))
            {
                return Task.FromResult<Node?>(null);
            }
            var updated = node with
            {
                Draining = draining,
                DrainMigrate = draining && migrate,
                DrainingSince = draining ? node.DrainingSince ?? now : null,
                UpdatedAt = now,
            };
            db.Nodes[nodeId] = updated;
            return Task.FromResult<Node?>(updated);
        }
    }

    public Task<NodeDeleteOutcome> DeleteAsync(Guid nodeId, CancellationToken cancellationToken)
    {
        lock (db.Gate)
        {
            if (!db.Nodes.TryGetValue(nodeId, out var node))
            {
                return Task.FromResult(NodeDeleteOutcome.NotFound);
            }
            if (!node.Draining)
            {
                return Task.FromResult(NodeDeleteOutcome.NotDraining);
            }
            if (db.Sessions.Values.Any(s => s.NodeId == nodeId && InMemoryDatabase.IsLive(s)))
            {
                return Task.FromResult(NodeDeleteOutcome.NotEmpty);
            }
            foreach (var history in db.Sessions.Values.Where(s => s.NodeId == nodeId).ToList())
            {
                db.Sessions.Remove(history.Id);
                db.SessionUsage.Remove(history.Id);
            }
            db.Nodes.Remove(nodeId);
            return Task.FromResult(NodeDeleteOutcome.Deleted);
        }
    }

    public Task<IReadOnlyList<SessionRecord>> ListActiveSessionsAsync(Guid nodeId, int limit, CancellationToken cancellationToken)
    {
        lock (db.Gate)
        {
            return Task.FromResult<IReadOnlyList<SessionRecord>>(
                [.. db.Sessions.Values.Where(s => s.NodeId == nodeId && s.State == SessionState.Active).OrderBy(s => s.ClaimSeq).Take(limit)]);
        }
    }

    public Task<MoveOutcome> MigrateSessionAsync(Guid sessionId, Guid fromNodeId, Guid toNodeId, string address, string? addressV6,
        IReadOnlyList<string> dns, DateTimeOffset now, CancellationToken cancellationToken)
    {
        lock (db.Gate)
        {
            if (!db.Nodes.TryGetValue(toNodeId, out var node) || db.Sessions.Values.Count(s => s.NodeId == toNodeId && InMemoryDatabase.IsLive(s)) >= node.Capacity)
            {
                return Task.FromResult(MoveOutcome.NodeFull);
            }
            if (!db.Sessions.TryGetValue(sessionId, out var session) || session.State != SessionState.Active || session.NodeId != fromNodeId)
            {
                return Task.FromResult(MoveOutcome.KeyChanged);
            }
            if (db.AddressHeld(sessionId, toNodeId, address, addressV6))
            {
                return Task.FromResult(MoveOutcome.AddressTaken);
            }
            db.Sessions[sessionId] = session with { NodeId = toNodeId, AssignedAddress = address, AssignedAddressV6 = addressV6, Dns = dns };
            return Task.FromResult(MoveOutcome.Moved);
        }
    }
}
