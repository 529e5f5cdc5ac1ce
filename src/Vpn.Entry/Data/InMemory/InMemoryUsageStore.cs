using Vpn.Domain.Usage;
using Vpn.Entry.Usage;

namespace Vpn.Entry.Data.InMemory;

/// <summary>The same counting as record_node_usage (migration 0008), under the one lock.</summary>
public sealed class InMemoryUsageStore(InMemoryDatabase db) : IUsageStore
{
    private static readonly TimeSpan EndedGrace = TimeSpan.FromMinutes(10);

    public Task<IReadOnlyList<QuotaReached>> RecordAsync(Guid nodeId, IReadOnlyList<SessionCounters> counters, DateTimeOffset now,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(counters);
        lock (db.Gate)
        {
            var added = new Dictionary<Guid, long>();
            foreach (var c in counters)
            {
                if (!db.Sessions.TryGetValue(c.SessionId, out var session) || session.NodeId != nodeId
                    || !(InMemoryDatabase.IsLive(session) || session.EndedAt >= now - EndedGrace))
                {
                    continue;
                }
                var known = db.SessionUsage.TryGetValue(c.SessionId, out var old) && old.Generation == c.Generation ? old : PriorLocked(session, c);
                var sameRun = known is not null;
                var delta = sameRun ? Add(Math.Max(c.ReceivedBytes - known!.ReceivedBytes, 0), Math.Max(c.SentBytes - known.SentBytes, 0))
                    : Add(c.ReceivedBytes, c.SentBytes);
                db.SessionUsage[c.SessionId] = sameRun
                    ? new SessionCounters(c.SessionId, c.Generation, Math.Max(known!.ReceivedBytes, c.ReceivedBytes), Math.Max(known.SentBytes, c.SentBytes))
                    : c;
                if (delta > 0)
                {
                    added[session.CustomerId] = Add(added.GetValueOrDefault(session.CustomerId), delta);
                }
            }
            var reached = new List<QuotaReached>();
            foreach (var (customerId, delta) in added)
            {
                var period = PeriodLocked(customerId, now);
                var key = (customerId, period.Start);
                var used = Add(db.Usage.GetValueOrDefault(key).UsedBytes, delta);
                db.Usage[key] = (used, new DateTimeOffset(now.UtcDateTime.Date, TimeSpan.Zero));
                if (LimitLocked(customerId) is { } limit && used >= limit)
                {
                    var live = db.Sessions.Values.FirstOrDefault(s => s.CustomerId == customerId && s.State == Domain.Sessions.SessionState.Active);
                    reached.Add(new QuotaReached(customerId, live?.Id, used, limit, period.End));
                }
            }
            return Task.FromResult<IReadOnlyList<QuotaReached>>(reached);
        }
    }

    /// <summary>Two non-negative byte counts added, saturating at <see cref="long.MaxValue"/> as record_node_usage does.</summary>
    private static long Add(long a, long b) => a > long.MaxValue - b ? long.MaxValue : a + b;

    public Task<DataUsage> GetAsync(Guid customerId, DateTimeOffset now, CancellationToken cancellationToken)
    {
        lock (db.Gate)
        {
            return Task.FromResult(UsageLocked(customerId, now));
        }
    }

    public Task<DataUsage> ResetAsync(Guid customerId, DateTimeOffset now, CancellationToken cancellationToken)
    {
        lock (db.Gate)
        {
            db.Usage.Remove((customerId, PeriodLocked(customerId, now).Start));
            return Task.FromResult(UsageLocked(customerId, now));
        }
    }

    /// <summary>
    /// The generation's last counters as another session of the same device key on the node reported them (a device key that passed to a new
    /// session without the peer being re-added keeps its counter run); null when none did.
    /// </summary>
    private SessionCounters? PriorLocked(Sessions.SessionRecord session, SessionCounters report) =>
        db.SessionUsage.Values
            .Where(u => u.Generation == report.Generation && u.SessionId != report.SessionId
                && db.Sessions.TryGetValue(u.SessionId, out var other) && other.NodeId == session.NodeId && other.DevicePublicKey == session.DevicePublicKey)
            .OrderByDescending(u => u.ReceivedBytes + (double)u.SentBytes)
            .FirstOrDefault();

    /// <summary>The use now; the caller holds the database's lock.</summary>
    internal DataUsage UsageLocked(Guid customerId, DateTimeOffset now)
    {
        var period = PeriodLocked(customerId, now);
        return new DataUsage(db.Usage.GetValueOrDefault((customerId, period.Start)).UsedBytes, LimitLocked(customerId), period);
    }

    private BillingPeriod PeriodLocked(Guid customerId, DateTimeOffset now)
    {
        var first = db.Subscriptions.Where(s => s.CustomerId == customerId).Select(s => (DateTimeOffset?)s.StartedAt).Min();
        return BillingPeriod.Containing(first is { } at ? BillingPeriod.AnchorDayOf(at) : 1, now);
    }

    private long? LimitLocked(Guid customerId) =>
        db.CurrentSubscription(customerId) is { } subscription && db.Plans.TryGetValue(subscription.PlanCode, out var plan) ? plan.MonthlyDataBytes : null;

    /// <summary>Deletes the totals last updated before <paramref name="before"/> (retention); returns how many.</summary>
    internal int PurgeLocked(DateTimeOffset before)
    {
        var old = db.Usage.Where(u => u.Value.UpdatedAt < before).Select(u => u.Key).ToList();
        old.ForEach(k => db.Usage.Remove(k));
        return old.Count;
    }

    /// <summary>How many totals were last updated before <paramref name="before"/> (the conformance check).</summary>
    internal int CountLocked(DateTimeOffset before) => db.Usage.Values.Count(u => u.UpdatedAt < before);
}
