using System.Runtime.CompilerServices;
using Vpn.Entry.Subscriptions;

namespace Vpn.Entry.Data.InMemory;

/// <summary>
/// The admin reports over <see cref="InMemoryDatabase"/>'s subscription periods, read under its lock. Each call scans all
/// periods: this store is for local runs, not for a book of customers at scale. The export takes a snapshot under the
/// lock and streams it afterwards.
/// </summary>
public sealed class InMemorySubscriptionReportStore(InMemoryDatabase db) : ISubscriptionReportStore
{
    private static readonly Comparer<Guid> ByUuidOrder = Comparer<Guid>.Create(SubscriptionCursor.Compare);

    public Task<IReadOnlyList<Subscription>> ListCurrentAsync(SubscriptionFilter filter, Guid? after, int limit, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(filter);
        var page = ReadSubscriptions((periods, plans) =>
            Current(periods, plans, filter)
                .Where(row => after is not { } last || SubscriptionCursor.Compare(row.Subscription.CustomerId, last) > 0)
                .OrderBy(row => row.Subscription.CustomerId, ByUuidOrder)
                .Take(limit)
                .Select(row => row.Subscription)
                .ToList());
        return Task.FromResult<IReadOnlyList<Subscription>>(page);
    }

    public Task<long> CountCurrentAsync(SubscriptionFilter filter, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(filter);
        return Task.FromResult(ReadSubscriptions((periods, plans) => Current(periods, plans, filter).LongCount()));
    }

    public async IAsyncEnumerable<SubscriptionExportRow> ExportCurrentAsync(SubscriptionFilter filter, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(filter);
        var snapshot = ReadSubscriptions((periods, plans) =>
            Current(periods, plans, filter).OrderBy(row => row.Subscription.CustomerId, ByUuidOrder).ToList());
        foreach (var row in snapshot)
        {
            cancellationToken.ThrowIfCancellationRequested();
            yield return row;
        }
        await Task.CompletedTask;
    }

    public Task<IReadOnlyList<Subscription>> GetHistoryAsync(Guid customerId, CancellationToken cancellationToken)
    {
        // Periods are appended in the order they were opened, which is the PostgreSQL store's (started_at, id) order.
        var history = ReadSubscriptions((periods, plans) =>
            periods.Where(s => s.CustomerId == customerId).Select(s => WithPlan(s, plans).Subscription).ToList());
        return Task.FromResult<IReadOnlyList<Subscription>>(history);
    }

    private static IEnumerable<SubscriptionExportRow> Current(IReadOnlyList<Subscription> periods, IReadOnlyDictionary<string, Plan> plans, SubscriptionFilter filter) =>
        periods.Where(s => s.EndedAt is null
                && (filter.Status is null || s.Status == filter.Status)
                && (filter.PlanCode is null || s.PlanCode == filter.PlanCode))
            .Select(s => WithPlan(s, plans));

    // Limits and name from the plan as it is now, as the SQL join does (plans are never deleted, so the fallback is defensive).
    private static SubscriptionExportRow WithPlan(Subscription period, IReadOnlyDictionary<string, Plan> plans) =>
        plans.TryGetValue(period.PlanCode, out var plan)
            ? new(period with { MaxDevices = plan.MaxDevices, AllowedRegions = plan.AllowedRegions }, plan.Name)
            : new(period, period.PlanCode);

    /// <summary>Runs <paramref name="read"/> under the lock over all subscription periods (in the order they were opened) and the plans by code.</summary>
    private T ReadSubscriptions<T>(Func<IReadOnlyList<Subscription>, IReadOnlyDictionary<string, Plan>, T> read)
    {
        lock (db.Gate)
        {
            return read(db.Subscriptions, db.Plans);
        }
    }
}
