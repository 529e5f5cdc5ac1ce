using Vpn.Entry.Privacy;

namespace Vpn.Entry.Data.InMemory;

public sealed class InMemoryRetentionStore(InMemoryDatabase db, InMemoryAuditLog audit, InMemoryIdempotencyStore idempotency) : IRetentionStore
{
    public Task<PurgeCounts?> PurgeAsync(DateTimeOffset sessionsEndedBefore, DateTimeOffset auditBefore, DateTimeOffset now,
        CancellationToken cancellationToken) =>
        Task.FromResult<PurgeCounts?>(new PurgeCounts(PurgeEndedSessions(sessionsEndedBefore), audit.Purge(auditBefore), idempotency.Purge(now)));

    /// <summary>Deletes terminated and failed sessions that ended before <paramref name="endedBefore"/>; returns how many.</summary>
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
