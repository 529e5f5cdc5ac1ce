using Vpn.Domain.Sessions;
using Vpn.Entry.Nodes;

namespace Vpn.Entry.Data.InMemory;

public sealed class InMemoryNodeStore(InMemoryDatabase db) : INodeStore, INodeSeeder
{
    public Task<(Node Node, bool Created)> UpsertAsync(NodeRegistration registration, DateTimeOffset now, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(registration);
        lock (db.Gate)
        {
            var existing = db.Nodes.Values.FirstOrDefault(n => n.Name == registration.Name);
            var node = new Node(existing?.Id ?? Guid.CreateVersion7(), registration.Name, registration.Region, registration.CountryCode,
                registration.CityCode, registration.Pool, registration.PublicEndpoint, registration.PublicKey, registration.CoreEndpoint,
                registration.Capacity, existing?.Healthy ?? false, existing?.ActivePeerCount ?? 0, existing?.LastHeartbeatAt, now)
            {
                // Re-registration keeps a drain, as PostgreSQL's upsert leaves the columns it does not set.
                Draining = existing?.Draining ?? false,
                DrainMigrate = existing?.DrainMigrate ?? false,
                DrainingSince = existing?.DrainingSince,
            };
            db.Nodes[node.Id] = node;
            return Task.FromResult((node, existing is null));
        }
    }

    public Task SeedAsync(Guid id, NodeRegistration registration, DateTimeOffset now, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(registration);
        var r = registration;
        lock (db.Gate)
        {
            db.Nodes[id] = new Node(id, r.Name, r.Region, r.CountryCode, r.CityCode, r.Pool, r.PublicEndpoint, r.PublicKey, r.CoreEndpoint,
                r.Capacity, false, 0, null, now);
        }
        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<Node>> ListAsync(CancellationToken cancellationToken)
    {
        lock (db.Gate)
        {
            return Task.FromResult<IReadOnlyList<Node>>([.. db.Nodes.Values.OrderBy(n => n.Name, StringComparer.Ordinal)]);
        }
    }

    public Task<Node?> GetAsync(Guid nodeId, CancellationToken cancellationToken)
    {
        lock (db.Gate)
        {
            return Task.FromResult(db.Nodes.GetValueOrDefault(nodeId));
        }
    }

    public Task<bool> IsNodePublicKeyAsync(string publicKey, CancellationToken cancellationToken)
    {
        lock (db.Gate)
        {
            return Task.FromResult(db.Nodes.Values.Any(n => n.PublicKey == publicKey));
        }
    }

    public Task<bool> RecordHeartbeatAsync(Guid nodeId, bool healthy, int activePeerCount, DateTimeOffset now, CancellationToken cancellationToken)
    {
        lock (db.Gate)
        {
            if (!db.Nodes.TryGetValue(nodeId, out var node))
            {
                return Task.FromResult(false);
            }
            db.Nodes[nodeId] = node with { Healthy = healthy, ActivePeerCount = activePeerCount, LastHeartbeatAt = now, UpdatedAt = now };
            return Task.FromResult(true);
        }
    }

    public Task<IReadOnlyList<NodeSessionPeer>> ListDesiredPeersAsync(Guid nodeId, CancellationToken cancellationToken)
    {
        lock (db.Gate)
        {
            return Task.FromResult<IReadOnlyList<NodeSessionPeer>>([.. db.Sessions.Values.Where(s => s.NodeId == nodeId && InMemoryDatabase.IsLive(s)).OrderBy(s => s.Id)
                .Select(s => new NodeSessionPeer(s.Id, s.DevicePublicKey.ToBase64(), s.AssignedAddress, s.State, s.AssignedAddressV6, s.ClaimSeq,
                    db.SessionUsage.GetValueOrDefault(s.Id)))]);
        }
    }

    public Task<IReadOnlyList<NodeWithLoad>> ListWithLoadAsync(CancellationToken cancellationToken)
    {
        lock (db.Gate)
        {
            var live = db.Sessions.Values.Where(InMemoryDatabase.IsLive).GroupBy(s => s.NodeId).ToDictionary(g => g.Key, g => g.Count());
            return Task.FromResult<IReadOnlyList<NodeWithLoad>>(
                [.. db.Nodes.Values.OrderBy(n => n.Name, StringComparer.Ordinal).Select(n => new NodeWithLoad(n, live.GetValueOrDefault(n.Id)))]);
        }
    }
}
