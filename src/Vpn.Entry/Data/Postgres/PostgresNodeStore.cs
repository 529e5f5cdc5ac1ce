using Npgsql;
using Vpn.Domain.Sessions;
using Vpn.Entry.Nodes;

namespace Vpn.Entry.Data.Postgres;

public sealed class PostgresNodeStore(NpgsqlDataSource dataSource) : INodeStore, INodeSeeder
{
    internal const string Columns = """
        id, name, region, country_code, city_code, pool, public_endpoint, public_key, core_endpoint, capacity,
        healthy, active_peer_count, last_heartbeat_at, updated_at, draining, drain_migrate, draining_since
        """;

    // xmax = 0 only for a freshly inserted row: tells insert from update in one round trip.
    private const string UpsertSql = $"""
        insert into vpn_nodes (id, name, region, country_code, city_code, pool, public_endpoint, public_key, core_endpoint, capacity, updated_at)
        values (@id, @name, @region, @country, @city, @pool, @public_endpoint, @public_key, @core_endpoint, @capacity, @now)
        on conflict (name) do update set region = excluded.region, country_code = excluded.country_code, city_code = excluded.city_code,
            pool = excluded.pool, public_endpoint = excluded.public_endpoint, public_key = excluded.public_key,
            core_endpoint = excluded.core_endpoint, capacity = excluded.capacity, updated_at = excluded.updated_at
        returning {Columns}, (xmax = 0) as created
        """;

    private const string ListSql = $"select {Columns} from vpn_nodes order by name";

    private const string GetSql = $"select {Columns} from vpn_nodes where id = @id";

    // Indexed by vpn_nodes_public_key (migration 0004).
    private const string IsNodeKeySql = "select exists (select 1 from vpn_nodes where public_key = @public_key)";

    private const string HeartbeatSql = """
        update vpn_nodes set healthy = @healthy, active_peer_count = @peers, last_heartbeat_at = @now, updated_at = @now where id = @id
        """;

    // live_sessions is kept by the triggers of migration 0007: no scan of the sessions table.
    private const string ListWithLoadSql = $"select {Columns}, live_sessions from vpn_nodes order by name";

    private const string DesiredPeersSql = """
        select id, device_public_key, assigned_address, state, assigned_address_v6, claim_seq, usage_generation, usage_rx, usage_tx from sessions
        where node_id = @node and state in ('provisioning', 'active')
        order by id
        """;

    public async Task<IReadOnlyList<NodeSessionPeer>> ListDesiredPeersAsync(Guid nodeId, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(DesiredPeersSql);
        command.Parameters.AddWithValue("node", nodeId);
        return await command.ReadAllAsync(reader => new NodeSessionPeer(reader.GetGuid(0), reader.GetString(1), reader.IsDBNull(2) ? null : reader.GetString(2),
            SessionStates.Parse(reader.GetString(3)), reader.IsDBNull(4) ? null : reader.GetString(4), reader.GetInt64(5),
            reader.IsDBNull(6) ? null : new Usage.SessionCounters(reader.GetGuid(0), reader.GetInt64(6), reader.GetInt64(7), reader.GetInt64(8))), cancellationToken);
    }

    public async Task<(Node Node, bool Created)> UpsertAsync(NodeRegistration registration, DateTimeOffset now, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(registration);
        await using var command = dataSource.CreateCommand(UpsertSql);
        command.Parameters.AddWithValue("id", Guid.CreateVersion7());
        command.Parameters.AddWithValue("name", registration.Name);
        command.Parameters.AddWithValue("region", registration.Region);
        command.Parameters.AddWithValue("country", (object?)registration.CountryCode ?? DBNull.Value);
        command.Parameters.AddWithValue("city", (object?)registration.CityCode ?? DBNull.Value);
        command.Parameters.AddWithValue("pool", (object?)registration.Pool ?? DBNull.Value);
        command.Parameters.AddWithValue("public_endpoint", registration.PublicEndpoint);
        command.Parameters.AddWithValue("public_key", registration.PublicKey);
        command.Parameters.AddWithValue("core_endpoint", registration.CoreEndpoint);
        command.Parameters.AddWithValue("capacity", registration.Capacity);
        command.Parameters.AddWithValue("now", now);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        return (Read(reader), reader.GetBoolean(17));
    }

    /// <summary>Registers the node by name like any other: the id is the database's own.</summary>
    public async Task SeedAsync(Guid id, NodeRegistration registration, DateTimeOffset now, CancellationToken cancellationToken) =>
        await UpsertAsync(registration, now, cancellationToken);

    public async Task<bool> IsNodePublicKeyAsync(string publicKey, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(IsNodeKeySql);
        command.Parameters.AddWithValue("public_key", publicKey);
        return (bool)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    public async Task<IReadOnlyList<Node>> ListAsync(CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(ListSql);
        return await command.ReadAllAsync(Read, cancellationToken);
    }

    public async Task<Node?> GetAsync(Guid nodeId, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(GetSql);
        command.Parameters.AddWithValue("id", nodeId);
        return await command.ReadFirstOrDefaultAsync(Read, cancellationToken);
    }

    public async Task<bool> RecordHeartbeatAsync(Guid nodeId, bool healthy, int activePeerCount, DateTimeOffset now, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(HeartbeatSql);
        command.Parameters.AddWithValue("id", nodeId);
        command.Parameters.AddWithValue("healthy", healthy);
        command.Parameters.AddWithValue("peers", activePeerCount);
        command.Parameters.AddWithValue("now", now);
        return await command.ExecuteNonQueryAsync(cancellationToken) == 1;
    }

    public async Task<IReadOnlyList<NodeWithLoad>> ListWithLoadAsync(CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(ListWithLoadSql);
        return await command.ReadAllAsync(reader => new NodeWithLoad(Read(reader), reader.GetInt32(17)), cancellationToken);
    }

    internal static Node Read(NpgsqlDataReader r) => new(
        r.GetGuid(0), r.GetString(1), r.GetString(2),
        r.IsDBNull(3) ? null : r.GetString(3), r.IsDBNull(4) ? null : r.GetString(4), r.IsDBNull(5) ? null : r.GetString(5),
        r.GetString(6), r.GetString(7), r.GetString(8), r.GetInt32(9), r.GetBoolean(10), r.GetInt32(11),
        r.IsDBNull(12) ? null : r.GetFieldValue<DateTimeOffset>(12), r.GetFieldValue<DateTimeOffset>(13))
    {
        Draining = r.GetBoolean(14),
        DrainMigrate = r.GetBoolean(15),
        DrainingSince = r.IsDBNull(16) ? null : r.GetFieldValue<DateTimeOffset>(16),
    };
}
