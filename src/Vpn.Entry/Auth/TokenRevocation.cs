using System.Collections.Concurrent;
using System.Security.Cryptography;

namespace Vpn.Entry.Auth;

/// <summary>Revoked access-token ids. Checked on every authenticated request, so the check is a memory lookup.</summary>
public interface ITokenRevocations
{
    /// <summary>True when revoked; throws 503 revocation_unavailable when this replica cannot vouch for its list (fail closed).</summary>
    ValueTask<bool> IsRevokedAsync(string jti, CancellationToken cancellationToken);

    /// <summary>Revokes until <paramref name="expiresAt"/> (after which the token is dead anyway and the entry is dropped).</summary>
    Task RevokeAsync(string jti, DateTimeOffset expiresAt, CancellationToken cancellationToken);

    /// <summary>
    /// True when the customer was erased, or when every token of theirs issued at or before some moment was revoked and
    /// this one was issued by then. <paramref name="issuedAt"/> null (the legacy header, no token): true only when erased.
    /// Throws 503 revocation_unavailable exactly as <see cref="IsRevokedAsync"/>.
    /// </summary>
    ValueTask<bool> IsCustomerRevokedAsync(Guid customerId, DateTimeOffset? issuedAt, CancellationToken cancellationToken);

    /// <summary>Revokes every token of one customer issued at or before <see cref="CustomerRevocation.Before"/>, on every replica (logout-all).</summary>
    Task RevokeCustomerAsync(CustomerRevocation revocation, CancellationToken cancellationToken);

    /// <summary>Takes a customer revocation that was written elsewhere (the erasure's own transaction) into this replica's list at once.</summary>
    void Remember(CustomerRevocation revocation);
}

/// <summary>
/// Every token of one customer issued at or before <see cref="Before"/> is dead; when <see cref="Erased"/>, every token
/// of that customer is, and the customer id cannot be created again. Kept until <see cref="ExpiresAt"/>, when the last
/// token it covers has expired. The customer is named only by <see cref="CustomerKey"/>, the SHA-256 of its id (as
/// PostgreSQL's <c>sha256(uuid_send(id))</c>): once a customer is erased nothing stored names it, and the key says
/// nothing to anyone who does not already hold the id.
/// </summary>
public sealed record CustomerRevocation(byte[] CustomerKey, DateTimeOffset Before, bool Erased, DateTimeOffset ExpiresAt)
{
    public static byte[] KeyOf(Guid customerId) => SHA256.HashData(customerId.ToByteArray(bigEndian: true));

    /// <summary>
    /// Covers tokens issued up to <paramref name="before"/>: they expire by before + lifetime, and are refused as expired
    /// only after the clock skew on top; the entry is kept that long (whole seconds, rounded up).
    /// </summary>
    public static CustomerRevocation Create(Guid customerId, DateTimeOffset before, bool erased, AccessTokenOptions tokens)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        var expires = before + tokens.Lifetime + tokens.ClockSkew;
        return new CustomerRevocation(KeyOf(customerId), before, erased, DateTimeOffset.FromUnixTimeSeconds(expires.ToUnixTimeSeconds() + 1));
    }
}

/// <summary>Customer key (hex) → revocation, merged (latest cut-off, erased wins) and pruned as they expire.</summary>
public sealed class RevokedCustomerCache(TimeProvider time)
{
    private readonly ConcurrentDictionary<string, CustomerRevocation> _revoked = new(StringComparer.Ordinal);
    private long _nextPrune;

    public int Count => _revoked.Count;

    public void Add(CustomerRevocation revocation)
    {
        ArgumentNullException.ThrowIfNull(revocation);
        _revoked.AddOrUpdate(Convert.ToHexString(revocation.CustomerKey), revocation, (_, known) => known with
        {
            Before = known.Before > revocation.Before ? known.Before : revocation.Before,
            Erased = known.Erased || revocation.Erased,
            ExpiresAt = known.ExpiresAt > revocation.ExpiresAt ? known.ExpiresAt : revocation.ExpiresAt,
        });
        PruneIfDue();
    }

    public bool IsRevoked(Guid customerId, DateTimeOffset? issuedAt)
    {
        if (_revoked.IsEmpty || !_revoked.TryGetValue(Convert.ToHexString(CustomerRevocation.KeyOf(customerId)), out var revocation))
        {
            return false;
        }
        return revocation.Erased || (issuedAt is { } iat && iat <= revocation.Before);
    }

    public void PruneIfDue() => RevocationPruning.PruneIfDue(_revoked, r => r.ExpiresAt, time, ref _nextPrune);
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

    public void PruneIfDue() => RevocationPruning.PruneIfDue(_revoked, expiresAt => expiresAt, time, ref _nextPrune);
}

/// <summary>The pruning both revocation caches share: at most every 10 s, entries past their expiry plus a margin.</summary>
internal static class RevocationPruning
{
    public static void PruneIfDue<TValue>(ConcurrentDictionary<string, TValue> entries, Func<TValue, DateTimeOffset> expiresAt,
        TimeProvider time, ref long nextPrune)
    {
        var now = time.GetUtcNow();
        var due = Interlocked.Read(ref nextPrune);
        if (now.UtcTicks < due || Interlocked.CompareExchange(ref nextPrune, (now + TimeSpan.FromSeconds(10)).UtcTicks, due) != due)
        {
            return;
        }
        // Keep a margin beyond exp: validation tolerates clock skew, so the entry must outlive the token's last valid moment.
        var cutoff = now - TimeSpan.FromMinutes(2);
        foreach (var (key, value) in entries)
        {
            if (expiresAt(value) < cutoff)
            {
                entries.TryRemove(key, out _);
            }
        }
    }
}
