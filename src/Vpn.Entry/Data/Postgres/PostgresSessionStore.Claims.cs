using Npgsql;
using Vpn.Domain.Subscriptions;
using Vpn.Domain.WireGuard;

namespace Vpn.Entry.Data.Postgres;

// Both claims are one call of claim_session_start (migration 0007; the quota check since 0008): one statement, one round trip, its own transaction.
public sealed partial class PostgresSessionStore
{
    // Columns 0-15 are the replaced session in Read's order (all null when none was replaced), then the answer.
    private const string ClaimSql = """
        select * from claim_session_start(@id, @customer, @device, @node, @hash, @region, @country, @city, @pool, @now, @replace, @check, @fresh, @key)
        """;

    private const int StatusColumn = 16;

    public async Task<ClaimResult> ClaimAsync(NewSession session, bool replaceExisting, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(session);
        var answer = await ClaimAsync(session.Id, session.CustomerId, session.DeviceId, session.NodeId, session.KeyHash, session.Region, session.CountryCode,
            session.CityCode, session.Pool, session.CreatedAt, replaceExisting, null, session.DevicePublicKey.ToBase64(), cancellationToken);
        return answer.Claim;
    }

    public Task<StartClaimResult> ClaimStartAsync(StartClaim claim, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(claim);
        return ClaimAsync(claim.Id, claim.CustomerId, claim.DeviceId, claim.NodeId, claim.KeyHash, claim.Region, claim.CountryCode, claim.CityCode,
            claim.Pool, claim.CreatedAt, claim.ReplaceExisting, claim.FreshAfter, null, cancellationToken);
    }

    /// <summary>
    /// <paramref name="freshAfter"/> null: the plain claim (no entitlement, device or node health checks; the device key
    /// given as <paramref name="deviceKey"/>). A unique violation cannot reach here (the function claims with
    /// ON CONFLICT DO NOTHING); a foreign key violation is the device (or customer) deleted meanwhile.
    /// </summary>
    private async Task<StartClaimResult> ClaimAsync(Guid id, Guid customer, Guid device, Guid node, byte[] keyHash, string region, string? country,
        string? city, string? pool, DateTimeOffset now, bool replace, DateTimeOffset? freshAfter, string? deviceKey, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(ClaimSql);
        command.Parameters.AddWithValue("id", id);
        command.Parameters.AddWithValue("customer", customer);
        command.Parameters.AddWithValue("device", device);
        command.Parameters.AddWithValue("node", node);
        command.Parameters.AddWithValue("hash", keyHash);
        command.Parameters.AddWithValue("region", region);
        command.Parameters.AddWithValue("country", NpgsqlTypes.NpgsqlDbType.Text, (object?)country ?? DBNull.Value);
        command.Parameters.AddWithValue("city", NpgsqlTypes.NpgsqlDbType.Text, (object?)city ?? DBNull.Value);
        command.Parameters.AddWithValue("pool", NpgsqlTypes.NpgsqlDbType.Text, (object?)pool ?? DBNull.Value);
        command.Parameters.AddWithValue("now", now);
        command.Parameters.AddWithValue("replace", replace);
        command.Parameters.AddWithValue("check", freshAfter is not null);
        command.Parameters.AddWithValue("fresh", NpgsqlTypes.NpgsqlDbType.TimestampTz, (object?)freshAfter ?? DBNull.Value);
        command.Parameters.AddWithValue("key", NpgsqlTypes.NpgsqlDbType.Text, (object?)deviceKey ?? DBNull.Value);
        try
        {
            await using var reader = await command.ExecuteReaderAsync(cancellationToken);
            await reader.ReadAsync(cancellationToken);
            var nodeLive = reader.IsDBNull(StatusColumn + 4) ? -1 : reader.GetInt32(StatusColumn + 4);
            switch (reader.GetString(StatusColumn))
            {
                case "claimed":
                    var replaced = reader.IsDBNull(0) ? null : Read(reader);
                    var claim = new ClaimResult(ClaimOutcome.Claimed, Replaced: replaced, ClaimSeq: reader.GetInt64(StatusColumn + 1));
                    return new StartClaimResult(claim, WireGuardKey.ParseBase64(reader.GetString(StatusColumn + 2)), NodeLive: nodeLive);
                case "conflict":
                    return new StartClaimResult(new ClaimResult(ClaimOutcome.Conflict, reader.IsDBNull(StatusColumn + 3) ? null : reader.GetGuid(StatusColumn + 3)));
                case "not_entitled":
                    Entitlement? entitlement = reader.IsDBNull(StatusColumn + 6) ? null : new Entitlement(reader.GetString(StatusColumn + 5),
                        reader.GetString(StatusColumn + 6), reader.GetInt32(StatusColumn + 7), reader.GetFieldValue<string[]>(StatusColumn + 8));
                    return new StartClaimResult(new ClaimResult(ClaimOutcome.NotEntitled), Entitlement: entitlement);
                case "quota_exceeded":
                    return new StartClaimResult(new ClaimResult(ClaimOutcome.QuotaExceeded), QuotaResetsAt: reader.GetFieldValue<DateTimeOffset>(StatusColumn + 9));
                case var status:
                    return new StartClaimResult(new ClaimResult(status switch
                    {
                        "device_gone" => ClaimOutcome.DeviceGone,
                        "node_gone" => ClaimOutcome.NodeGone,
                        "node_unfit" => ClaimOutcome.NodeUnfit,
                        "node_full" => ClaimOutcome.NodeFull,
                        _ => throw new InvalidOperationException($"claim_session_start answered an unknown status '{status}'."),
                    }), NodeLive: nodeLive);
            }
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.ForeignKeyViolation)
        {
            // The device (or customer) was deleted between the function's read and its insert.
            return new StartClaimResult(new ClaimResult(ClaimOutcome.DeviceGone));
        }
    }
}
