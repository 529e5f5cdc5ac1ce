using Vpn.Entry.Nodes;

namespace Vpn.Entry.Data;

/// <summary>Registers the development node at start (APP_SEED_DEVELOPMENT_DATA), implemented by each node store.</summary>
public interface INodeSeeder
{
    /// <summary>
    /// Registers <paramref name="registration"/> under <paramref name="id"/> where the store can (in memory, so a local
    /// core's heartbeat needs no configuration); PostgreSQL registers it by name as any node, under an id of its own.
    /// </summary>
    Task SeedAsync(Guid id, NodeRegistration registration, DateTimeOffset now, CancellationToken cancellationToken);
}
