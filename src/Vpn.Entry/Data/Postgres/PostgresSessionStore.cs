using Npgsql;
using Vpn.Domain.WireGuard;
using Vpn.Entry.Sessions;

namespace Vpn.Entry.Data.Postgres;

public sealed class PostgresSessionStore(NpgsqlDataSource dataSource) : ISessionStore
{
    internal const string Columns = "id, customer_id, device_id, device_public_key, node_id, state, assigned_address, dns, region, country_code, city_code, pool, created_at";

    // The node row lock serializes claims on one node so the live count cannot overshoot capacity.
    private const string LockNodeSql = """
        select n.capacity, (select count(*) from sessions s where s.node_id = n.id and s.state in ('provisioning', 'active'))
        from vpn_nodes n where n.id = @node for update
        """;

    private const string InsertSql = """
        insert into sessions (id, customer_id, device_id, device_public_key, node_id, state, session_key_hash, region, country_code, city_code, pool, created_at, updated_at)
        values (@id, @customer, @device, @key, @node, 'provisioning', @hash, @region, @country, @city, @pool, @now, @now)
        """;

    private const string LiveIdSql = "select id from sessions where customer_id = @customer and state in ('provisioning', 'active')";

    private const string ActivateSql = """
        update sessions set state = 'active', assigned_address = @address, dns = @dns, activated_at = @now, updated_at = @now
        where id = @id and state = 'provisioning'
        """;

    private const string AbandonSql = """
        update sessions set state = 'failed', terminated_at = @now, updated_at = @now, terminate_reason = 'provisioning_failed'
        where id = @id and state in ('provisioning', 'active')
        """;

    private const string ActiveSql = $"select {Columns} from sessions where customer_id = @customer and state = 'active'";

    private const string TerminateSql = $"""
        update sessions set state = 'terminated', terminated_at = @now, updated_at = @now, terminate_reason = @reason
        where customer_id = @customer and state = 'active'
        returning {Columns}
        """;

    public async Task<ClaimResult> ClaimAsync(NewSession session, int nodeCapacity, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(session);
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await using (var lockNode = new NpgsqlCommand(LockNodeSql, connection, transaction))
        {
            lockNode.Parameters.AddWithValue("node", session.NodeId);
            await using var reader = await lockNode.ExecuteReaderAsync(cancellationToken);
            if (!await reader.ReadAsync(cancellationToken))
            {
                return new ClaimResult(ClaimOutcome.NodeGone);
            }
            if (reader.GetInt64(1) >= reader.GetInt32(0))
            {
                return new ClaimResult(ClaimOutcome.NodeFull);
            }
        }
        try
        {
            await using var insert = new NpgsqlCommand(InsertSql, connection, transaction);
            insert.Parameters.AddWithValue("id", session.Id);
            insert.Parameters.AddWithValue("customer", session.CustomerId);
            insert.Parameters.AddWithValue("device", session.DeviceId);
            insert.Parameters.AddWithValue("key", session.DevicePublicKey.ToBase64());
            insert.Parameters.AddWithValue("node", session.NodeId);
            insert.Parameters.AddWithValue("hash", session.KeyHash);
            insert.Parameters.AddWithValue("region", session.Region);
            insert.Parameters.AddWithValue("country", (object?)session.CountryCode ?? DBNull.Value);
            insert.Parameters.AddWithValue("city", (object?)session.CityCode ?? DBNull.Value);
            insert.Parameters.AddWithValue("pool", (object?)session.Pool ?? DBNull.Value);
            insert.Parameters.AddWithValue("now", session.CreatedAt);
            await insert.ExecuteNonQueryAsync(cancellationToken);
            await transaction.CommitAsync(cancellationToken);
            return new ClaimResult(ClaimOutcome.Claimed);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation && e.ConstraintName == "sessions_one_live_per_customer")
        {
            await transaction.RollbackAsync(CancellationToken.None);
            return new ClaimResult(ClaimOutcome.Conflict, await GetLiveIdAsync(session.CustomerId, cancellationToken));
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.ForeignKeyViolation)
        {
            // The device (or customer) was deleted between the read and the claim.
            return new ClaimResult(ClaimOutcome.DeviceGone);
        }
    }

    public async Task<bool> ActivateAsync(Guid sessionId, string assignedAddress, IReadOnlyList<string> dns, DateTimeOffset now, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(ActivateSql);
        command.Parameters.AddWithValue("id", sessionId);
        command.Parameters.AddWithValue("address", assignedAddress);
        command.Parameters.AddWithValue("dns", dns.ToArray());
        command.Parameters.AddWithValue("now", now);
        try
        {
            return await command.ExecuteNonQueryAsync(cancellationToken) == 1;
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation)
        {
            return false;
        }
    }

    public async Task AbandonAsync(Guid sessionId, DateTimeOffset now, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(AbandonSql);
        command.Parameters.AddWithValue("id", sessionId);
        command.Parameters.AddWithValue("now", now);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    public async Task<SessionRecord?> GetActiveAsync(Guid customerId, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(ActiveSql);
        command.Parameters.AddWithValue("customer", customerId);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? Read(reader) : null;
    }

    public async Task<Guid?> GetLiveIdAsync(Guid customerId, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(LiveIdSql);
        command.Parameters.AddWithValue("customer", customerId);
        return await command.ExecuteScalarAsync(cancellationToken) is Guid id ? id : null;
    }

    public async Task<SessionRecord?> TerminateActiveAsync(Guid customerId, string reason, DateTimeOffset now, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(TerminateSql);
        command.Parameters.AddWithValue("customer", customerId);
        command.Parameters.AddWithValue("reason", reason);
        command.Parameters.AddWithValue("now", now);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? Read(reader) : null;
    }

    internal static SessionRecord Read(NpgsqlDataReader r) => new(
        r.GetGuid(0), r.GetGuid(1), r.IsDBNull(2) ? null : r.GetGuid(2), WireGuardKey.ParseBase64(r.GetString(3)), r.GetGuid(4),
        r.GetString(5), r.IsDBNull(6) ? null : r.GetString(6), r.GetFieldValue<string[]>(7), r.GetString(8),
        r.IsDBNull(9) ? null : r.GetString(9), r.IsDBNull(10) ? null : r.GetString(10), r.IsDBNull(11) ? null : r.GetString(11),
        r.GetFieldValue<DateTimeOffset>(12));
}
