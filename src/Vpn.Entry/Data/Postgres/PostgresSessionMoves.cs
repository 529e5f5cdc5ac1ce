using Npgsql;

namespace Vpn.Entry.Data.Postgres;

/// <summary>
/// One active session moved to another node in one transaction, whoever moves it (a reconnect's move, the drain
/// migrator): both nodes' rows locked first in id order — as a replace claim locks them, and the live-count triggers
/// touch both — then the target's capacity checked, then the caller's update. The update decides the rest: no row
/// (the key or the node changed meanwhile) is KeyChanged; an address already live on the target is AddressTaken.
/// </summary>
internal static class PostgresSessionMoves
{
    private const string LockBothNodesSql = """
        select 1 from vpn_nodes where id = @node or id = (select node_id from sessions where id = @id) order by id for update
        """;

    public static async Task<MoveOutcome> MoveAsync(NpgsqlDataSource dataSource, Guid sessionId, Guid toNodeId, string moveSql,
        Action<NpgsqlParameterCollection> bind, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await using (var lockBoth = new NpgsqlCommand(LockBothNodesSql, connection, transaction))
        {
            lockBoth.Parameters.AddWithValue("node", toNodeId);
            lockBoth.Parameters.AddWithValue("id", sessionId);
            await lockBoth.ExecuteNonQueryAsync(cancellationToken);
        }
        if (await PostgresSessionStore.LockNodeAndCheckCapacityAsync(connection, transaction, toNodeId, cancellationToken) != true)
        {
            return MoveOutcome.NodeFull;
        }
        try
        {
            await using var move = new NpgsqlCommand(moveSql, connection, transaction);
            bind(move.Parameters);
            if (await move.ExecuteNonQueryAsync(cancellationToken) != 1)
            {
                return MoveOutcome.KeyChanged;
            }
            await transaction.CommitAsync(cancellationToken);
            return MoveOutcome.Moved;
        }
        // sessions_node_address or sessions_node_address_v6: the new node already has a live session on that address.
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation)
        {
            return MoveOutcome.AddressTaken;
        }
    }
}
