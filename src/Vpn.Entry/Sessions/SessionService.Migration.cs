using Vpn.Domain.Nodes;
using Vpn.Entry.Nodes;

namespace Vpn.Entry.Sessions;

/// <summary>A session's move to another node: where it went, or why it did not.</summary>
internal sealed record SessionMove(Node? Node, TunnelAssignment? Assigned, SessionFailure? Failure);

/// <summary>
/// Moving a session off its node: on reconnect when the node is unhealthy, stale or draining, and by the drain
/// migrator for a node drained with "migrate": true. One path for both: select a node matching the session's original
/// filters, Connect there (new address), commit the move in the store, remove the old peer.
/// </summary>
public sealed partial class SessionService
{
    /// <summary>
    /// Moves an active session off <paramref name="from"/> while keeping its key: the client gets the new config from
    /// its next reconnect (which rotates the key as always). False when it did not move: no other node could take it, or
    /// the session ended or moved meanwhile (a reconnect, another replica's migrator).
    /// </summary>
    public async Task<bool> MigrateAsync(SessionRecord session, Node from, INodeDrainStore drains, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(session);
        ArgumentNullException.ThrowIfNull(from);
        ArgumentNullException.ThrowIfNull(drains);
        var move = await MoveOffAsync(session, from, (node, assigned) => drains.MigrateSessionAsync(session.Id, from.Id, node.Id, assigned.Address,
            assigned.AddressV6, assigned.Dns, time.GetUtcNow(), CancellationToken.None), cancellationToken);
        if (move.Node is { } to)
        {
            LogMigrated(logger, from.Id, to.Id);
            return true;
        }
        return false;
    }

    /// <summary>
    /// The move itself: up to <see cref="MaxSelectionAttempts"/> nodes are tried; <paramref name="commit"/> is the store's
    /// compare-and-swap that puts the session on the chosen node (a reconnect's rotates the key too). A node whose commit
    /// fails (full, address taken) loses its new peer and the next is tried; KeyChanged ends the move (the session is no
    /// longer where it was read). <paramref name="current"/> is null when the session's node is gone.
    /// </summary>
    private async Task<SessionMove> MoveOffAsync(SessionRecord session, Node? current, Func<Node, TunnelAssignment, Task<MoveOutcome>> commit,
        CancellationToken cancellationToken)
    {
        var request = new NodeRequest(session.Region, session.CountryCode, session.CityCode, session.Pool);
        var excluded = new HashSet<Guid> { session.NodeId };
        for (var attempt = 0; attempt < MaxSelectionAttempts; attempt++)
        {
            var choice = await SelectAsync(request, excluded, cancellationToken);
            if (choice.Node is not { Node: var node })
            {
                return new SessionMove(null, null, NoNodes(choice.Rejected, excluded.Count));
            }
            if ((await TryConnectAsync(node, session.Id, session.DevicePublicKey, session.ClaimSeq, cancellationToken)).Assigned is not { } assigned)
            {
                excluded.Add(node.Id);
                continue;
            }
            MoveOutcome moved;
            try
            {
                moved = await commit(node, assigned);
            }
            catch (Exception e)
            {
                // The store failed after the new node added the peer: the database still has the session on its old
                // node (the move commits as a whole or not at all), so the new peer goes. Should the commit have landed
                // with only its answer lost, both nodes' reconciliation converges to the database.
                var removed = await DisconnectQuietlyAsync(node, session.Id);
                LogMoveUndone(logger, node.Id, e.GetType().Name, removed);
                throw;
            }
            if (moved != MoveOutcome.Moved)
            {
                await TryDisconnectAsync(node, session.Id);
                if (moved == MoveOutcome.KeyChanged)
                {
                    return new SessionMove(null, null, new SessionFailure.InvalidSessionKey());
                }
                excluded.Add(node.Id);
                continue;
            }
            if (current is not null)
            {
                await TryDisconnectAsync(current, session.Id);
            }
            return new SessionMove(node, assigned, null);
        }
        return new SessionMove(null, null, new SessionFailure.NoNodeTookOver());
    }

    [LoggerMessage(EventId = 212, Level = LogLevel.Information, Message = "Session migrated from draining node {FromNodeId} to {ToNodeId}")]
    private static partial void LogMigrated(ILogger logger, Guid fromNodeId, Guid toNodeId);
}
