using Npgsql;
using Vpn.Domain.Sessions;
using Vpn.Domain.WireGuard;

namespace Vpn.Entry.Data.Postgres;

/// <summary>Sessions in PostgreSQL; the claims (one call of claim_session_start each) are in PostgresSessionStore.Claims.cs.</summary>
public sealed partial class PostgresSessionStore(NpgsqlDataSource dataSource) : ISessionStore
{
    internal const string Columns = "id, customer_id, device_id, device_public_key, node_id, state, assigned_address, dns, region, country_code, city_code, pool, created_at, session_key_hash, assigned_address_v6, claim_seq";

    // The node row lock serializes claims on one node so the live count cannot overshoot capacity. The count is a
    // separate statement on purpose: under READ COMMITTED a subquery in the locking statement would use the snapshot
    // taken before the lock was granted and miss the claims committed while we waited.
    private const string LockNodeSql = "select capacity from vpn_nodes where id = @node for update";


    private const string CountLiveSql = "select count(*) from sessions where node_id = @node and state in ('provisioning', 'active')";

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

    private const string FindByKeySql = $"select {Columns} from sessions where session_key_hash = @hash and state = 'active'";

    private const string RotateSql = """
        update sessions set session_key_hash = @new, updated_at = @now where id = @id and session_key_hash = @old and state = 'active'
        """;

    private const string MoveSql = """
        update sessions set session_key_hash = @new, node_id = @node, assigned_address = @address, assigned_address_v6 = @address_v6, dns = @dns,
            updated_at = @now
        where id = @id and session_key_hash = @old and state = 'active'
        """;

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

    public Task<MoveOutcome> MoveAsync(Guid sessionId, byte[] oldHash, byte[] newHash, Guid nodeId, string address, string? addressV6,
        IReadOnlyList<string> dns, DateTimeOffset now, CancellationToken cancellationToken) =>
        PostgresSessionMoves.MoveAsync(dataSource, sessionId, nodeId, MoveSql, p =>
        {
            p.AddWithValue("id", sessionId);
            p.AddWithValue("old", oldHash);
            p.AddWithValue("new", newHash);
            p.AddWithValue("node", nodeId);
            p.AddWithValue("address", address);
            p.AddWithValue("address_v6", (object?)addressV6 ?? DBNull.Value);
            p.AddWithValue("dns", dns.ToArray());
            p.AddWithValue("now", now);
        }, cancellationToken);

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
    internal static async Task<bool?> LockNodeAndCheckCapacityAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, Guid nodeId,
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
