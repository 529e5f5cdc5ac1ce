using Vpn.Entry.Privacy;

namespace Vpn.Entry.Data.InMemory;

public sealed class InMemoryRetentionStore(InMemoryDatabase db, InMemoryAuditLog audit, InMemoryIdempotencyStore idempotency, InMemoryUsageStore usage)
    : IRetentionStore
{
    public Task<PurgeCounts?> PurgeAsync(DateTimeOffset sessionsEndedBefore, DateTimeOffset auditBefore, DateTimeOffset now,
        CancellationToken cancellationToken)
    {
        var sessions = PurgeEndedSessions(sessionsEndedBefore);
        lock (db.Gate)
        {
            usage.PurgeLocked(now - Usage.UsageRetention.KeptFor);
        }
        return Task.FromResult<PurgeCounts?>(new PurgeCounts(sessions, audit.Purge(auditBefore), idempotency.Purge(now)));
    }

    /// <summary>Deletes terminated and failed sessions that ended before <paramref name="endedBefore"/> (and their counters); returns how many.</summary>
    private int PurgeEndedSessions(DateTimeOffset endedBefore)
    {
        lock (db.Gate)
        {
            var ended = db.Sessions.Values.Where(s => !InMemoryDatabase.IsLive(s) && (s.EndedAt ?? s.CreatedAt) < endedBefore).Select(s => s.Id).ToList();
            ended.ForEach(id => db.Sessions.Remove(id));
            ended.ForEach(id => db.SessionUsage.Remove(id));
            return ended.Count;
        }
    }
}
