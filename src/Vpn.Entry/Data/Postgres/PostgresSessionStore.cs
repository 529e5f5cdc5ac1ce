using Npgsql;
using Vpn.Domain.Sessions;
using Vpn.Domain.WireGuard;

namespace Vpn.Entry.Data.Postgres;

public sealed class PostgresSessionStore(NpgsqlDataSource dataSource) : ISessionStore
{
    internal const string Columns = "id, customer_id, device_id, device_public_key, node_id, state, assigned_address, dns, region, country_code, city_code, pool, created_at, session_key_hash, assigned_address_v6, claim_seq";

    // The node row lock serializes claims on one node so the live count cannot overshoot capacity. The count is a
    // separate statement on purpose: under READ COMMITTED a subquery in the locking statement would use the snapshot
    // taken before the lock was granted and miss the claims committed while we waited.
    private const string LockNodeSql = "select capacity from vpn_nodes where id = @node for update";

    private const string CountLiveSql = "select count(*) from sessions where node_id = @node and state in ('provisioning', 'active')";

    private const string InsertSql = """
        insert into sessions (id, customer_id, device_id, device_public_key, node_id, state, session_key_hash, region, country_code, city_code, pool, created_at, updated_at)
        values (@id, @customer, @device, @key, @node, 'provisioning', @hash, @region, @country, @city, @pool, @now, @now)
        returning claim_seq
        """;

    private const string LiveIdSql = "select id from sessions where customer_id = @customer and state in ('provisioning', 'active')";

    private const string ActivateSql = """
        update sessions set state = 'active', assigned_address = @address, assigned_address_v6 = @address_v6, dns = @dns, activated_at = @now, updated_at = @now
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

    // Terminates the customer's active session, in the claim's transaction: other requests see either the old session
    // or the new claim, never neither or both. A start still provisioning is not replaced: it is another request's,
    // about to answer its own client, so the insert below meets it and this request answers 409 (a storm of replaces
    // then ends with the one start that got there first, instead of each undoing the one before it).
    private const string ReplaceSql = $"""
        update sessions set state = 'terminated', terminated_at = @now, updated_at = @now, terminate_reason = 'replaced'
        where customer_id = @customer and state = 'active'
        returning {Columns}
        """;

    private const string FindByKeySql = $"select {Columns} from sessions where session_key_hash = @hash and state = 'active'";

    private const string RotateSql = """
        update sessions set session_key_hash = @new, updated_at = @now where id = @id and session_key_hash = @old and state = 'active'
        """;

    private const string MoveSql = """
        update sessions set session_key_hash = @new, node_id = @node, assigned_address = @address, assigned_address_v6 = @address_v6, dns = @dns,
            updated_at = @now
        where id = @id and session_key_hash = @old and state = 'active'
        """;

    public async Task<ClaimResult> ClaimAsync(NewSession session, bool replaceExisting, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(session);
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        switch (await LockNodeAndCheckCapacityAsync(connection, transaction, session.NodeId, cancellationToken))
        {
            case null:
                return new ClaimResult(ClaimOutcome.NodeGone);
            case false:
                return new ClaimResult(ClaimOutcome.NodeFull);
        }
        SessionRecord? replaced = null;
        if (replaceExisting)
        {
            await using var replace = new NpgsqlCommand(ReplaceSql, connection, transaction);
            replace.Parameters.AddWithValue("customer", session.CustomerId);
            replace.Parameters.AddWithValue("now", session.CreatedAt);
            replaced = await replace.ReadFirstOrDefaultAsync(Read, cancellationToken);
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
            var seq = (long)(await insert.ExecuteScalarAsync(cancellationToken))!;
            await transaction.CommitAsync(cancellationToken);
            return new ClaimResult(ClaimOutcome.Claimed, Replaced: replaced, ClaimSeq: seq);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation && e.ConstraintName == "sessions_one_live_per_customer")
        {
            // The winner's id is read on this same connection once our transaction is gone, never on a second pooled
            // connection while this one is held: with the pool's every connection in a conflicting claim, each would
            // wait for a second one forever (until the pool's timeout answers 503) — conflicts are the common case of a
            // retry storm. One connection per request path.
            await transaction.RollbackAsync(CancellationToken.None);
            await using var live = new NpgsqlCommand(LiveIdSql, connection);
            live.Parameters.AddWithValue("customer", session.CustomerId);
            return new ClaimResult(ClaimOutcome.Conflict, await live.ExecuteScalarAsync(cancellationToken) is Guid id ? id : null);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.ForeignKeyViolation)
        {
            // The device (or customer) was deleted between the read and the claim.
            return new ClaimResult(ClaimOutcome.DeviceGone);
        }
    }

    public async Task<SessionRecord?> FindActiveByKeyHashAsync(byte[] keyHash, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(FindByKeySql);
        command.Parameters.AddWithValue("hash", keyHash);
        return await command.ReadFirstOrDefaultAsync(Read, cancellationToken);
    }

    public async Task<bool> RotateKeyAsync(Guid sessionId, byte[] oldHash, byte[] newHash, DateTimeOffset now, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(RotateSql);
        command.Parameters.AddWithValue("id", sessionId);
        command.Parameters.AddWithValue("old", oldHash);
        command.Parameters.AddWithValue("new", newHash);
        command.Parameters.AddWithValue("now", now);
        return await command.ExecuteNonQueryAsync(cancellationToken) == 1;
    }

    public async Task<MoveOutcome> MoveAsync(Guid sessionId, byte[] oldHash, byte[] newHash, Guid nodeId, string address, string? addressV6,
        IReadOnlyList<string> dns, DateTimeOffset now, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        if (await LockNodeAndCheckCapacityAsync(connection, transaction, nodeId, cancellationToken) != true)
        {
            return MoveOutcome.NodeFull;
        }
        try
        {
            await using var move = new NpgsqlCommand(MoveSql, connection, transaction);
            move.Parameters.AddWithValue("id", sessionId);
            move.Parameters.AddWithValue("old", oldHash);
            move.Parameters.AddWithValue("new", newHash);
            move.Parameters.AddWithValue("node", nodeId);
            move.Parameters.AddWithValue("address", address);
            move.Parameters.AddWithValue("address_v6", (object?)addressV6 ?? DBNull.Value);
            move.Parameters.AddWithValue("dns", dns.ToArray());
            move.Parameters.AddWithValue("now", now);
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

    public async Task<bool> ActivateAsync(Guid sessionId, string assignedAddress, string? assignedAddressV6, IReadOnlyList<string> dns, DateTimeOffset now,
        CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(ActivateSql);
        command.Parameters.AddWithValue("id", sessionId);
        command.Parameters.AddWithValue("address", assignedAddress);
        command.Parameters.AddWithValue("address_v6", (object?)assignedAddressV6 ?? DBNull.Value);
        command.Parameters.AddWithValue("dns", dns.ToArray());
        command.Parameters.AddWithValue("now", now);
        try
        {
            return await command.ExecuteNonQueryAsync(cancellationToken) == 1;
        }
        // sessions_node_address or sessions_node_address_v6: another live session on the node holds the address.
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

    private const string FailStaleSql = """
        update sessions set state = 'failed', terminated_at = @now, updated_at = @now, terminate_reason = 'provisioning_abandoned'
        where state = 'provisioning' and created_at < @cutoff
        """;

    // Columns, qualified for the join below (derived, so a column added to Columns cannot be missed here).
    private static readonly string QualifiedColumns = string.Join(", ", Columns.Split(", ").Select(c => "s." + c));

    private static readonly string TerminateOutsidePlanSql = $"""
        update sessions s set state = 'terminated', terminated_at = @now, updated_at = @now, terminate_reason = 'entitlement_changed'
        from customer_subscriptions cs
        where cs.customer_id = s.customer_id and cs.ended_at is null and cs.plan_code = @plan
          and s.state in ('provisioning', 'active') and not (lower(s.region) = any(@regions))
        returning {QualifiedColumns}
        """;


    public async Task<IReadOnlyList<SessionRecord>> TerminateOutsidePlanRegionsAsync(string planCode, IReadOnlyList<string> allowedRegions,
        DateTimeOffset now, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(TerminateOutsidePlanSql);
        command.Parameters.AddWithValue("plan", planCode);
        command.Parameters.AddWithValue("regions", allowedRegions.Select(r => r.ToLowerInvariant()).ToArray());
        command.Parameters.AddWithValue("now", now);
        return await command.ReadAllAsync(Read, cancellationToken);
    }

    public async Task<int> FailStaleProvisioningAsync(DateTimeOffset olderThan, DateTimeOffset now, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(FailStaleSql);
        command.Parameters.AddWithValue("cutoff", olderThan);
        command.Parameters.AddWithValue("now", now);
        return await command.ExecuteNonQueryAsync(cancellationToken);
    }

    public async Task<SessionRecord?> GetActiveAsync(Guid customerId, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(ActiveSql);
        command.Parameters.AddWithValue("customer", customerId);
        return await command.ReadFirstOrDefaultAsync(Read, cancellationToken);
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
        return await command.ReadFirstOrDefaultAsync(Read, cancellationToken);
    }

    /// <summary>Locks the node row; null when the node is gone, false when it is full, true when one more session fits.</summary>
    private static async Task<bool?> LockNodeAndCheckCapacityAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, Guid nodeId,
        CancellationToken cancellationToken)
    {
        int capacity;
        await using (var lockNode = new NpgsqlCommand(LockNodeSql, connection, transaction))
        {
            lockNode.Parameters.AddWithValue("node", nodeId);
            if (await lockNode.ExecuteScalarAsync(cancellationToken) is not int value)
            {
                return null;
            }
            capacity = value;
        }
        await using var count = new NpgsqlCommand(CountLiveSql, connection, transaction);
        count.Parameters.AddWithValue("node", nodeId);
        return (long)(await count.ExecuteScalarAsync(cancellationToken))! < capacity;
    }

    internal static SessionRecord Read(NpgsqlDataReader r) => new(
        r.GetGuid(0), r.GetGuid(1), r.IsDBNull(2) ? null : r.GetGuid(2), WireGuardKey.ParseBase64(r.GetString(3)), r.GetGuid(4),
        SessionStates.Parse(r.GetString(5)), r.IsDBNull(6) ? null : r.GetString(6), r.GetFieldValue<string[]>(7), r.GetString(8),
        r.IsDBNull(9) ? null : r.GetString(9), r.IsDBNull(10) ? null : r.GetString(10), r.IsDBNull(11) ? null : r.GetString(11),
        r.GetFieldValue<DateTimeOffset>(12))
    {
        KeyHash = r.GetFieldValue<byte[]>(13),
        AssignedAddressV6 = r.IsDBNull(14) ? null : r.GetString(14),
        ClaimSeq = r.GetInt64(15),
    };
}
