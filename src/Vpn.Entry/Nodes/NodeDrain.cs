namespace Vpn.Entry.Nodes;

public enum NodeDeleteOutcome
{
    Deleted,
    NotFound,
    /// <summary>Only a draining node can be deleted: undrained, it could take a new session at any moment.</summary>
    NotDraining,
    /// <summary>The node still has live (provisioning or active) sessions.</summary>
    NotEmpty,
}

/// <summary>
/// Draining, migrating and deleting nodes. A drained node takes no new sessions (selection skips it); its sessions move
/// on their next reconnect, or, with migrate, entry moves them itself (<see cref="NodeDrainMigrator"/>).
/// </summary>
public interface INodeDrainStore
{
    /// <summary>
    /// Starts (or, with <paramref name="draining"/> false, ends) a drain; draining again keeps the drain's start and
    /// takes the new <paramref name="migrate"/>. Null when the node is unknown.
    /// </summary>
    Task<Node?> SetDrainAsync(Guid nodeId, bool draining, bool migrate, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>
    /// Deletes a draining node that has no live session, with the history rows (terminated, failed sessions) that name
    /// it, in one transaction under the node's row lock (the lock every claim and move takes first, so no session can
    /// land on it meanwhile).
    /// </summary>
    Task<NodeDeleteOutcome> DeleteAsync(Guid nodeId, CancellationToken cancellationToken);

    /// <summary>At most <paramref name="limit"/> active sessions on the node, oldest claim first.</summary>
    Task<IReadOnlyList<SessionRecord>> ListActiveSessionsAsync(Guid nodeId, int limit, CancellationToken cancellationToken);

    /// <summary>
    /// Moves an active session from <paramref name="fromNodeId"/> to another node with its new addresses, keeping its
    /// key (the client picks the new config up by reconnect); capacity of the new node is checked under its row lock.
    /// KeyChanged when the session is no longer active on <paramref name="fromNodeId"/> (ended, or moved meanwhile by a
    /// reconnect or another replica); AddressTaken when an address is held by another live session on the new node.
    /// </summary>
    Task<MoveOutcome> MigrateSessionAsync(Guid sessionId, Guid fromNodeId, Guid toNodeId, string address, string? addressV6, IReadOnlyList<string> dns,
        DateTimeOffset now, CancellationToken cancellationToken);
}
