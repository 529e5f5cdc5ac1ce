using System.Collections.Concurrent;
using System.Globalization;
using Npgsql;
using Vpn.Entry.Configuration;
using Vpn.Entry.Http;

namespace Vpn.Entry.Auth;

/// <summary>Revoked access-token ids. Checked on every authenticated request, so the check is a memory lookup.</summary>
public interface ITokenRevocations
{
    /// <summary>True when revoked; throws 503 revocation_unavailable when this replica cannot vouch for its list (fail closed).</summary>
    ValueTask<bool> IsRevokedAsync(string jti, CancellationToken cancellationToken);

    /// <summary>Revokes until <paramref name="expiresAt"/> (after which the token is dead anyway and the entry is dropped).</summary>
    Task RevokeAsync(string jti, DateTimeOffset expiresAt, CancellationToken cancellationToken);
}

/// <summary>jti → exp, pruned as entries expire so the cache never outgrows the tokens still alive.</summary>
public sealed class RevokedTokenCache(TimeProvider time)
{
    private readonly ConcurrentDictionary<string, DateTimeOffset> _revoked = new(StringComparer.Ordinal);
    private long _nextPrune;

    public int Count => _revoked.Count;

    public bool Contains(string jti) => _revoked.ContainsKey(jti);

    public void Add(string jti, DateTimeOffset expiresAt)
    {
        _revoked[jti] = expiresAt;
        PruneIfDue();
    }

    public void PruneIfDue()
    {
        var now = time.GetUtcNow();
        var due = Interlocked.Read(ref _nextPrune);
        if (now.UtcTicks < due || Interlocked.CompareExchange(ref _nextPrune, (now + TimeSpan.FromSeconds(10)).UtcTicks, due) != due)
        {
            return;
        }
        // Keep a margin beyond exp: validation tolerates clock skew, so the entry must outlive the token's last valid moment.
        var cutoff = now - TimeSpan.FromMinutes(2);
        foreach (var (jti, expiresAt) in _revoked)
        {
            if (expiresAt < cutoff)
            {
                _revoked.TryRemove(jti, out _);
            }
        }
    }
}

/// <summary>The zero-setup store: one process, so the cache is the whole truth.</summary>
public sealed class InMemoryTokenRevocations(TimeProvider time) : ITokenRevocations
{
    private readonly RevokedTokenCache _cache = new(time);

    public ValueTask<bool> IsRevokedAsync(string jti, CancellationToken cancellationToken) => ValueTask.FromResult(_cache.Contains(jti));

    public Task RevokeAsync(string jti, DateTimeOffset expiresAt, CancellationToken cancellationToken)
    {
        _cache.Add(jti, expiresAt);
        return Task.CompletedTask;
    }
}

/// <summary>
/// Revocation shared by every entry replica through PostgreSQL. The table <c>revoked_tokens</c> is the truth; each
/// replica keeps it in memory and stays current two ways: LISTEN on channel <c>revoked_tokens</c> (a logout on any
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

    // Each read also returns the database's clock, the lower bound (minus an overlap) of the next incremental read.
    private const string LoadAllSql = "select jti, expires_at from revoked_tokens where expires_at > now() - interval '2 minutes'; select now()";

    private const string LoadSinceSql = "select jti, expires_at from revoked_tokens where revoked_at >= @since; select now()";

    private const string CleanupSql = "delete from revoked_tokens where expires_at < now() - interval '10 minutes'";

    private readonly RevokedTokenCache _cache = new(time);
    private readonly TaskCompletionSource _firstSync = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _lastSync = long.MinValue;
    private bool _failing;

    public async ValueTask<bool> IsRevokedAsync(string jti, CancellationToken cancellationToken)
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
        return _cache.Contains(jti);
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
            await reader.ReadAsync(cancellationToken);
            databaseNow = reader.GetFieldValue<DateTimeOffset>(0);
        }
        // Fresh as of when the read began: anything committed before then is in the cache now.
        Interlocked.Exchange(ref _lastSync, started);
        _cache.PruneIfDue();
        return databaseNow - PollOverlap;
    }

    private void OnNotification(string payload)
    {
        var space = payload.LastIndexOf(' ');
        if (space > 0 && long.TryParse(payload.AsSpan(space + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var exp))
        {
            _cache.Add(payload[..space], DateTimeOffset.FromUnixTimeSeconds(exp));
        }
    }

    private static ApiProblemException Unavailable() => new(StatusCodes.Status503ServiceUnavailable, ErrorCodes.RevocationUnavailable,
        "Token revocation cannot be checked right now; retry shortly.");

    [LoggerMessage(EventId = 41, Level = LogLevel.Information, Message = "Following token revocations again")]
    private static partial void LogFollowRecovered(ILogger logger);

    [LoggerMessage(EventId = 40, Level = LogLevel.Warning, Message = "Following token revocations failed ({ExceptionType}); authenticated requests fail closed until it recovers")]
    private static partial void LogFollowFailed(ILogger logger, string exceptionType);
}
