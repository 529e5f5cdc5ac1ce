using Npgsql;
using Vpn.Entry.Nodes;

namespace Vpn.Entry.Data.Postgres;

public sealed class PostgresNodeDrainStore(NpgsqlDataSource dataSource) : INodeDrainStore
{
    private const string SetDrainSql = $"""
        update vpn_nodes set draining = @draining, drain_migrate = @draining and @migrate,
            draining_since = case when @draining then coalesce(draining_since, @now) end, updated_at = @now
        where id = @id
        returning {PostgresNodeStore.Columns}
        """;

    // The same row lock a claim and a move take first: once it is held, no session can land on the node.
    private const string LockSql = "select draining from vpn_nodes where id = @id for update";

    private const string CountLiveSql = "select exists (select 1 from sessions where node_id = @id and state in ('provisioning', 'active'))";

    private const string DeleteHistorySql = "delete from sessions where node_id = @id and state in ('terminated', 'failed')";

    private const string DeleteNodeSql = "delete from vpn_nodes where id = @id";

    private static readonly string ActiveOnNodeSql = $"""
        select {PostgresSessionStore.Columns} from sessions where node_id = @node and state = 'active' order by claim_seq limit @limit
        """;

    private const string MigrateSql = """
        update sessions set node_id = @to, assigned_address = @address, assigned_address_v6 = @address_v6, dns = @dns, updated_at = @now
        where id = @id and node_id = @from and state = 'active'
        """;

    public async Task<Node?> SetDrainAsync(Guid nodeId, bool draining, bool migrate, DateTimeOffset now, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(SetDrainSql);
        command.Parameters.AddWithValue("id", nodeId);
        command.Parameters.AddWithValue("draining", draining);
        command.Parameters.AddWithValue("migrate", migrate);
        command.Parameters.AddWithValue("now", now);
        return await command.ReadFirstOrDefaultAsync(PostgresNodeStore.Read, cancellationToken);
    }

    public async Task<NodeDeleteOutcome> DeleteAsync(Guid nodeId, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await using (var lockNode = new NpgsqlCommand(LockSql, connection, transaction))
        {
            lockNode.Parameters.AddWithValue("id", nodeId);
            switch (await lockNode.ExecuteScalarAsync(cancellationToken))
            {
                case null:
                    return NodeDeleteOutcome.NotFound;
                case false:
                    return NodeDeleteOutcome.NotDraining;
            }
        }
        // Its own statement after the lock (READ COMMITTED): sees every claim committed while we waited for the lock.
        await using (var live = new NpgsqlCommand(CountLiveSql, connection, transaction))
        {
            live.Parameters.AddWithValue("id", nodeId);
            if ((bool)(await live.ExecuteScalarAsync(cancellationToken))!)
            {
                return NodeDeleteOutcome.NotEmpty;
            }
        }
        foreach (var sql in (string[])[DeleteHistorySql, DeleteNodeSql])
        {
            await using var delete = new NpgsqlCommand(sql, connection, transaction);
            delete.Parameters.AddWithValue("id", nodeId);
            await delete.ExecuteNonQueryAsync(cancellationToken);
        }
        await transaction.CommitAsync(cancellationToken);
        return NodeDeleteOutcome.Deleted;
    }

    public async Task<IReadOnlyList<SessionRecord>> ListActiveSessionsAsync(Guid nodeId, int limit, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(ActiveOnNodeSql);
        command.Parameters.AddWithValue("node", nodeId);
        command.Parameters.AddWithValue("limit", limit);
        return await command.ReadAllAsync(PostgresSessionStore.Read, cancellationToken);
    }

    public Task<MoveOutcome> MigrateSessionAsync(Guid sessionId, Guid fromNodeId, Guid toNodeId, string address, string? addressV6,
        IReadOnlyList<string> dns, DateTimeOffset now, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(dns);
        return PostgresSessionMoves.MoveAsync(dataSource, sessionId, toNodeId, MigrateSql, p =>
        {
            p.AddWithValue("id", sessionId);
            p.AddWithValue("from", fromNodeId);
            p.AddWithValue("to", toNodeId);
            p.AddWithValue("address", address);
            p.AddWithValue("address_v6", (object?)addressV6 ?? DBNull.Value);
            p.AddWithValue("dns", dns.ToArray());
            p.AddWithValue("now", now);
        }, cancellationToken);
    }
}
