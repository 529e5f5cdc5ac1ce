using Vpn.Entry.Privacy;

namespace Vpn.Entry.Data.InMemory;

/// <summary>The conformance facts of the in-memory store: the same counts; no schema (nothing is written anywhere).</summary>
public sealed class InMemoryPrivacyFacts(InMemoryDatabase db, InMemoryAuditLog audit, InMemoryIdempotencyStore idempotency, InMemoryUsageStore usage)
    : IPrivacyFactsStore
{
    public Task<PrivacyFacts> ReadAsync(DateTimeOffset sessionsEndedBefore, DateTimeOffset auditBefore, DateTimeOffset expiredBefore,
        CancellationToken cancellationToken)
    {
        long ended, totals;
        lock (db.Gate)
        {
            ended = db.Sessions.Values.Count(s => !InMemoryDatabase.IsLive(s) && (s.EndedAt ?? s.CreatedAt) < sessionsEndedBefore);
            totals = usage.CountLocked(expiredBefore - Usage.UsageRetention.KeptFor);
        }
        return Task.FromResult(new PrivacyFacts(ended, audit.CountBefore(auditBefore), idempotency.CountExpiredBefore(expiredBefore), null, totals));
    }
}
