using System.Globalization;
using Npgsql;

namespace Vpn.Entry.Data.Postgres;

/// <summary>
/// Revocation shared by every entry replica through PostgreSQL. The tables <c>revoked_tokens</c> (one token) and
/// <c>revoked_customers</c> (every token of a customer up to a moment: logout-all, erasure) are the truth; each
/// replica keeps them in memory and stays current two ways: LISTEN on channel <c>revoked_tokens</c> (a logout on any
/// replica NOTIFYs in the same statement as its insert, so others learn within milliseconds) and, because notifications
/// are lost while a connection is down, an incremental re-read every <see cref="PollInterval"/> of rows revoked since
/// the previous read (with an overlap, so a slow commit is not missed). Every successful read refreshes the list's
/// freshness; when it is older than APP_REVOCATION_MAX_STALENESS_MS (PostgreSQL unreachable), authenticated requests
/// answer 503 instead of trusting a list that may be missing a revocation. Expired rows are deleted periodically.
/// </summary>
public sealed partial class PostgresTokenRevocations(NpgsqlDataSource dataSource, EntryOptions options, TimeProvider time, ILogger<PostgresTokenRevocations> logger)
    : BackgroundService, ITokenRevocations
{
    public const string Channel = "revoked_tokens";

    public static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(250);

    private static readonly TimeSpan PollOverlap = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan CleanupInterval = TimeSpan.FromMinutes(10);

    private const string RevokeSql = """
        insert into revoked_tokens (jti, expires_at) values (@jti, @exp) on conflict (jti) do nothing;
        select pg_notify('revoked_tokens', @jti || ' ' || @exp_unix);
        """;

    /// <summary>
    /// Upserts one customer revocation (the later cut-off, erased wins) and NOTIFYs the merged row on the same channel
    /// as single tokens, as <c>c &lt;key hex&gt; &lt;before, unix ms&gt; &lt;erased 0|1&gt; &lt;exp, unix s&gt;</c>. Also run
    /// inside the erasure's transaction, so the notification goes out exactly when the erasure commits.
    /// </summary>
    public const string RevokeCustomerSql = """
        with upserted as (
            insert into revoked_customers as r (customer_key, revoked_before, erased, expires_at) values (@key, @before, @erased, @exp)
            on conflict (customer_key) do update set
                revoked_before = greatest(r.revoked_before, excluded.revoked_before), erased = r.erased or excluded.erased,
                expires_at = greatest(r.expires_at, excluded.expires_at), revoked_at = now()
            returning customer_key, revoked_before, erased, expires_at)
        select pg_notify('revoked_tokens', 'c ' || encode(customer_key, 'hex') || ' ' || floor(extract(epoch from revoked_before) * 1000)::bigint
            || ' ' || erased::int || ' ' || floor(extract(epoch from expires_at))::bigint) from upserted
        """;

    // Each read also returns the database's clock, the lower bound (minus an overlap) of the next incremental read.
    private const string LoadAllSql = """
        select jti, expires_at from revoked_tokens where expires_at > now() - interval '2 minutes';
        select customer_key, revoked_before, erased, expires_at from revoked_customers where expires_at > now() - interval '2 minutes';
        select now()
        """;

    private const string LoadSinceSql = """
        select jti, expires_at from revoked_tokens where revoked_at >= @since;
        select customer_key, revoked_before, erased, expires_at from revoked_customers where revoked_at >= @since;
        select now()
        """;

    private const string CleanupSql = """
        delete from revoked_tokens where expires_at < now() - interval '10 minutes';
        delete from revoked_customers where expires_at < now() - interval '10 minutes'
        """;

    private readonly RevokedTokenCache _cache = new(time);
    private readonly RevokedCustomerCache _customers = new(time);
    private readonly TaskCompletionSource _firstSync = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _lastSync = long.MinValue;
    private bool _failing;

    public async ValueTask<bool> IsRevokedAsync(string jti, CancellationToken cancellationToken)
    {
        await EnsureFreshAsync(cancellationToken);
        return _cache.Contains(jti);
    }

    public async ValueTask<bool> IsCustomerRevokedAsync(Guid customerId, DateTimeOffset? issuedAt, CancellationToken cancellationToken)
    {
        await EnsureFreshAsync(cancellationToken);
        return _customers.IsRevoked(customerId, issuedAt);
    }

    public async Task RevokeCustomerAsync(CustomerRevocation revocation, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(revocation);
        await using var command = dataSource.CreateCommand(RevokeCustomerSql);
        AddParameters(command.Parameters, revocation);
        await command.ExecuteNonQueryAsync(cancellationToken);
        _customers.Add(revocation);
    }

    public void Remember(CustomerRevocation revocation) => _customers.Add(revocation);

    /// <summary>The parameters of <see cref="RevokeCustomerSql"/>.</summary>
    public static void AddParameters(NpgsqlParameterCollection parameters, CustomerRevocation revocation)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(revocation);
        parameters.AddWithValue("key", revocation.CustomerKey);
        parameters.AddWithValue("before", revocation.Before);
        parameters.AddWithValue("erased", revocation.Erased);
        parameters.AddWithValue("exp", revocation.ExpiresAt);
    }

    private async ValueTask EnsureFreshAsync(CancellationToken cancellationToken)
    {
        if (!_firstSync.Task.IsCompleted)
        {
            // Right after start the list is not loaded yet: wait briefly rather than fail the first requests.
            try
            {
                await _firstSync.Task.WaitAsync(options.RevocationMaxStaleness, time, cancellationToken);
            }
            catch (TimeoutException)
            {
                throw Unavailable();
            }
        }
        if (time.GetElapsedTime(Interlocked.Read(ref _lastSync)) > options.RevocationMaxStaleness)
        {
            throw Unavailable();
        }
    }

    public async Task RevokeAsync(string jti, DateTimeOffset expiresAt, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(RevokeSql);
        command.Parameters.AddWithValue("jti", jti);
        command.Parameters.AddWithValue("exp", expiresAt);
        command.Parameters.AddWithValue("exp_unix", expiresAt.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture));
        await command.ExecuteNonQueryAsync(cancellationToken);
        _cache.Add(jti, expiresAt);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await FollowAsync(stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                // Whatever failed (PostgreSQL down, schema not migrated yet), keep following; staleness fails requests closed.
                if (!_failing)
                {
                    LogFollowFailed(logger, e.GetType().Name);
                    _failing = true;
                }
                await Task.Delay(TimeSpan.FromMilliseconds(250), time, stoppingToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                continue;
            }
        }
    }

    private async Task FollowAsync(CancellationToken stoppingToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(stoppingToken);
        connection.Notification += (_, e) => OnNotification(e.Payload);
        await using (var listen = new NpgsqlCommand($"listen {Channel}", connection))
        {
            await listen.ExecuteNonQueryAsync(stoppingToken);
        }
        // LISTEN first, then load: a revocation committed in between arrives by notification or by the load itself.
        var since = await ReadAsync(connection, null, stoppingToken);
        _firstSync.TrySetResult();
        if (_failing)
        {
            LogFollowRecovered(logger);
            _failing = false;
        }
        var lastCleanup = long.MinValue;
        while (!stoppingToken.IsCancellationRequested)
        {
            var pollStarted = time.GetTimestamp();
            while (true)
            {
                // Whole milliseconds, rounded up: Npgsql's WaitAsync(0) would wait forever and stall the poll.
                var remaining = (int)Math.Ceiling((PollInterval - time.GetElapsedTime(pollStarted)).TotalMilliseconds);
                if (remaining <= 0)
                {
                    break;
                }
                await connection.WaitAsync(remaining, stoppingToken);
            }
            since = await ReadAsync(connection, since, stoppingToken);
            if (lastCleanup == long.MinValue || time.GetElapsedTime(lastCleanup) > CleanupInterval)
            {
                await using var cleanup = new NpgsqlCommand(CleanupSql, connection);
                await cleanup.ExecuteNonQueryAsync(stoppingToken);
                lastCleanup = time.GetTimestamp();
            }
        }
    }

    // Reads rows revoked since the last read (or all live rows), returns the next lower bound by the database's clock.
    private async Task<DateTimeOffset> ReadAsync(NpgsqlConnection connection, DateTimeOffset? since, CancellationToken cancellationToken)
    {
        // A half-open connection must not hold the loop for Npgsql's default 30 s: fail, reconnect (staleness fails closed meanwhile).
        await using var command = new NpgsqlCommand(since is null ? LoadAllSql : LoadSinceSql, connection) { CommandTimeout = 2 };
        if (since is not null)
        {
            command.Parameters.AddWithValue("since", since.Value);
        }
        var started = time.GetTimestamp();
        DateTimeOffset databaseNow;
        await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
        {
            while (await reader.ReadAsync(cancellationToken))
            {
                _cache.Add(reader.GetString(0), reader.GetFieldValue<DateTimeOffset>(1));
            }
            await reader.NextResultAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                _customers.Add(new CustomerRevocation(reader.GetFieldValue<byte[]>(0), reader.GetFieldValue<DateTimeOffset>(1), reader.GetBoolean(2),
                    reader.GetFieldValue<DateTimeOffset>(3)));
            }
            await reader.NextResultAsync(cancellationToken);
            await reader.ReadAsync(cancellationToken);
            databaseNow = reader.GetFieldValue<DateTimeOffset>(0);
        }
        // Fresh as of when the read began: anything committed before then is in the cache now.
        Interlocked.Exchange(ref _lastSync, started);
        _cache.PruneIfDue();
        _customers.PruneIfDue();
        return databaseNow - PollOverlap;
    }

    private void OnNotification(string payload)
    {
        if (payload.StartsWith("c ", StringComparison.Ordinal))
        {
            OnCustomerNotification(payload);
            return;
        }
        var space = payload.LastIndexOf(' ');
        if (space > 0 && long.TryParse(payload.AsSpan(space + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var exp))
        {
            _cache.Add(payload[..space], DateTimeOffset.FromUnixTimeSeconds(exp));
        }
    }

    // "c <key hex> <before ms> <erased 0|1> <exp s>"; anything malformed is left to the next poll.
    private void OnCustomerNotification(string payload)
    {
        var parts = payload.Split(' ');
        if (parts.Length == 5 && parts[1].Length == 64
            && long.TryParse(parts[2], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var beforeMs)
            && parts[3] is "0" or "1"
            && long.TryParse(parts[4], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var exp))
        {
            try
            {
                _customers.Add(new CustomerRevocation(Convert.FromHexString(parts[1]), DateTimeOffset.FromUnixTimeMilliseconds(beforeMs), parts[3] == "1",
                    DateTimeOffset.FromUnixTimeSeconds(exp)));
            }
            catch (Exception e) when (e is FormatException or ArgumentOutOfRangeException)
            {
                // The poll reads the row itself.
            }
        }
    }

    private static ApiProblemException Unavailable() => new(StatusCodes.Status503ServiceUnavailable, ErrorCodes.RevocationUnavailable,
        "Token revocation cannot be checked right now; retry shortly.");

    [LoggerMessage(EventId = 41, Level = LogLevel.Information, Message = "Following token revocations again")]
    private static partial void LogFollowRecovered(ILogger logger);

    [LoggerMessage(EventId = 40, Level = LogLevel.Warning, Message = "Following token revocations failed ({ExceptionType}); authenticated requests fail closed until it recovers")]
    private static partial void LogFollowFailed(ILogger logger, string exceptionType);
}
