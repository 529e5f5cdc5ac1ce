using Vpn.Entry.Privacy;

namespace Vpn.Entry.Data.InMemory;

/// <summary>The conformance facts of the in-memory store: the same counts; no schema (nothing is written anywhere).</summary>
public sealed class InMemoryPrivacyFacts(InMemoryDatabase db, InMemoryAuditLog audit, InMemoryIdempotencyStore idempotency) : IPrivacyFactsStore
{
    public Task<PrivacyFacts> ReadAsync(DateTimeOffset sessionsEndedBefore, DateTimeOffset auditBefore, DateTimeOffset expiredBefore,
        CancellationToken cancellationToken)
    {
        long ended;
        lock (db.Gate)
        {
            ended = db.Sessions.Values.Count(s => !InMemoryDatabase.IsLive(s) && (s.EndedAt ?? s.CreatedAt) < sessionsEndedBefore);
        }
        return Task.FromResult(new PrivacyFacts(ended, audit.CountBefore(auditBefore), idempotency.CountExpiredBefore(expiredBefore), null));
    }
}
