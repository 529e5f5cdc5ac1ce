namespace Vpn.Entry.Data.InMemory;

/// <summary>In-memory Idempotency-Key records with the same semantics as the PostgreSQL table.</summary>
public sealed class InMemoryIdempotencyStore(TimeProvider time) : IIdempotencyStore
{
    /// <summary>Drops records expired before <paramref name="now"/>; returns how many.</summary>
    public int Purge(DateTimeOffset now)
    {
        lock (_gate)
        {
            var expired = _entries.Where(e => e.Value.ExpiresAt < now).Select(e => e.Key).ToList();
            expired.ForEach(k => _entries.Remove(k));
            return expired.Count;
        }
    }

    /// <summary>How many records expired before <paramref name="before"/> (the privacy conformance check).</summary>
    public int CountExpiredBefore(DateTimeOffset before)
    {
        lock (_gate)
        {
            return _entries.Values.Count(e => e.ExpiresAt < before);
        }
    }

    private static readonly TimeSpan Retention = TimeSpan.FromHours(24);
    private readonly Lock _gate = new();
    private readonly Dictionary<(Guid, string), Entry> _entries = [];

    public Task<IdempotencyResult> BeginAsync(Guid customerId, string key, byte[] requestHash, DateTimeOffset now, TimeSpan abandonAfter,
        CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (_entries.TryGetValue((customerId, key), out var entry) && entry.ExpiresAt >= now
                && !(entry.Body is null && entry.ExpiresAt - Retention < now - abandonAfter))
            {
                return Task.FromResult(!entry.Hash.AsSpan().SequenceEqual(requestHash) ? new IdempotencyResult(IdempotencyOutcome.Mismatch)
                    : entry.Body is null ? new IdempotencyResult(IdempotencyOutcome.InProgress)
                    : new IdempotencyResult(IdempotencyOutcome.Replay, entry.Status, entry.Body));
            }
            // Expired entries are dropped on touch; bounded by the customers' own traffic.
            foreach (var stale in _entries.Where(e => e.Value.ExpiresAt < time.GetUtcNow()).Select(e => e.Key).ToList())
            {
                _entries.Remove(stale);
            }
            _entries[(customerId, key)] = new Entry(requestHash, now + Retention, 0, null);
            return Task.FromResult(new IdempotencyResult(IdempotencyOutcome.Started));
        }
    }

    public Task CompleteAsync(Guid customerId, string key, int status, string body, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (_entries.TryGetValue((customerId, key), out var entry))
            {
                _entries[(customerId, key)] = entry with { Status = status, Body = body };
            }
            return Task.CompletedTask;
        }
    }

    public Task ReleaseAsync(Guid customerId, string key, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (_entries.TryGetValue((customerId, key), out var entry) && entry.Body is null)
            {
                _entries.Remove((customerId, key));
            }
            return Task.CompletedTask;
        }
    }

    /// <summary>Drops every record of one customer (erasure); returns whether there were any.</summary>
    internal bool EraseCustomer(Guid customerId)
    {
        lock (_gate)
        {
            var keys = _entries.Keys.Where(k => k.Item1 == customerId).ToList();
            keys.ForEach(k => _entries.Remove(k));
            return keys.Count > 0;
        }
    }

    private sealed record Entry(byte[] Hash, DateTimeOffset ExpiresAt, int Status, string? Body);
}
