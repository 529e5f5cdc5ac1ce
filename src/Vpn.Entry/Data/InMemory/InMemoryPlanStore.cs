using Vpn.Entry.Subscriptions;

namespace Vpn.Entry.Data.InMemory;

public sealed class InMemoryPlanStore(InMemoryDatabase db) : IPlanStore
{
    public Task<Plan> UpsertPlanAsync(Plan plan, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(plan);
        lock (db.Gate)
        {
            db.Plans[plan.Code] = plan;
            return Task.FromResult(plan);
        }
    }

    public Task<IReadOnlyList<Plan>> ListPlansAsync(CancellationToken cancellationToken)
    {
        lock (db.Gate)
        {
            return Task.FromResult<IReadOnlyList<Plan>>([.. db.Plans.Values.OrderBy(p => p.Code, StringComparer.Ordinal)]);
        }
    }

    public Task<Subscription?> SetSubscriptionAsync(Guid customerId, string planCode, string status, DateTimeOffset now, CancellationToken cancellationToken)
    {
        lock (db.Gate)
        {
            if (!db.Plans.TryGetValue(planCode, out var plan))
            {
                return Task.FromResult<Subscription?>(null);
            }
            var open = db.Subscriptions.FindIndex(s => s.CustomerId == customerId && s.EndedAt is null);
            if (open >= 0)
            {
                db.Subscriptions[open] = db.Subscriptions[open] with { EndedAt = now };
            }
            var subscription = new Subscription(customerId, plan.Code, status, plan.MaxDevices, plan.AllowedRegions, now, null);
            db.Subscriptions.Add(subscription);
            return Task.FromResult<Subscription?>(subscription);
        }
    }

    public Task<Subscription?> GetSubscriptionAsync(Guid customerId, CancellationToken cancellationToken)
    {
        lock (db.Gate)
        {
            return Task.FromResult(db.CurrentSubscription(customerId));
        }
    }
}
