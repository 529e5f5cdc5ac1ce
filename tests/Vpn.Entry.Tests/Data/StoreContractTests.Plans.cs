namespace Vpn.Entry.Tests.Data;

/// <summary>The store contract: plans and subscription periods.</summary>
public abstract partial class StoreContractTests
{
    [Fact]
    public async Task UpsertPlan_NewAndExistingCodes_ListShowsLatestByCode()
    {
        await using var s = await CreateStoresAsync();
        Assert.Empty(await s.Plans.ListPlansAsync(Ct));

        await s.Plans.UpsertPlanAsync(new Plan("pro", "Pro", 10, ["eu-west", "us-east"]), Ct);
        await s.Plans.UpsertPlanAsync(new Plan("basic", "Basic", 2, ["eu-west"]), Ct);
        var returned = await s.Plans.UpsertPlanAsync(new Plan("basic", "Basic Plus", 3, ["eu-west", "ap-south"]), Ct);

        AssertPlan(new Plan("basic", "Basic Plus", 3, ["eu-west", "ap-south"]), returned);
        var plans = await s.Plans.ListPlansAsync(Ct);
        Assert.Equal(new[] { "basic", "pro" }, plans.Select(p => p.Code));
        AssertPlan(new Plan("basic", "Basic Plus", 3, ["eu-west", "ap-south"]), plans[0]);
        AssertPlan(new Plan("pro", "Pro", 10, ["eu-west", "us-east"]), plans[1]);
    }

    [Fact]
    public async Task GetSubscription_NeverSubscribed_ReturnsNull()
    {
        await using var s = await CreateStoresAsync();
        await s.Plans.UpsertPlanAsync(Basic, Ct);

        Assert.Null(await s.Plans.GetSubscriptionAsync(Guid.NewGuid(), Ct));
    }

    [Fact]
    public async Task SetSubscription_OpenPeriodExists_ClosesItOpensNewAndKeepsHistory()
    {
        await using var s = await CreateStoresAsync();
        await s.Plans.UpsertPlanAsync(Basic, Ct);
        await s.Plans.UpsertPlanAsync(new Plan("pro", "Pro", 10, ["eu-west", "us-east"]), Ct);
        var customer = Guid.NewGuid();

        var first = await s.Plans.SetSubscriptionAsync(customer, "basic", "trialing", T0, Ct);
        var second = await s.Plans.SetSubscriptionAsync(customer, "pro", "active", T0.AddHours(1), Ct);

        Assert.NotNull(first);
        Assert.Equal(("basic", "trialing", 5, T0, (DateTimeOffset?)null), (first.PlanCode, first.Status, first.MaxDevices, first.StartedAt, first.EndedAt));
        Assert.NotNull(second);
        Assert.Equal((customer, "pro", "active", 10, T0.AddHours(1), (DateTimeOffset?)null),
            (second.CustomerId, second.PlanCode, second.Status, second.MaxDevices, second.StartedAt, second.EndedAt));
        Assert.Equal(new[] { "eu-west", "us-east" }, second.AllowedRegions);
        var current = await s.Plans.GetSubscriptionAsync(customer, Ct);
        Assert.NotNull(current);
        Assert.Equal(("pro", "active", T0.AddHours(1), (DateTimeOffset?)null), (current.PlanCode, current.Status, current.StartedAt, current.EndedAt));
        if (await ReadSubscriptionHistoryAsync(customer) is { } history)
        {
            Assert.Equal(
                new[] { new SubscriptionPeriod("basic", T0, T0.AddHours(1)), new SubscriptionPeriod("pro", T0.AddHours(1), null) },
                history);
        }
    }

    [Fact]
    public async Task SetSubscription_UnknownPlan_ReturnsNullAndKeepsCurrentPeriod()
    {
        await using var s = await CreateStoresAsync();
        await s.Plans.UpsertPlanAsync(Basic, Ct);
        var customer = Guid.NewGuid();
        var stranger = Guid.NewGuid();
        await s.Plans.SetSubscriptionAsync(customer, "basic", "active", T0, Ct);

        Assert.Null(await s.Plans.SetSubscriptionAsync(customer, "gold", "active", T0.AddHours(1), Ct));
        Assert.Null(await s.Plans.SetSubscriptionAsync(stranger, "gold", "active", T0.AddHours(1), Ct));

        var current = await s.Plans.GetSubscriptionAsync(customer, Ct);
        Assert.NotNull(current);
        Assert.Equal(("basic", T0, (DateTimeOffset?)null), (current.PlanCode, current.StartedAt, current.EndedAt));
        Assert.Null(await s.Plans.GetSubscriptionAsync(stranger, Ct));
    }

    [Fact]
    public async Task GetSubscription_PlanChangedAfterwards_ReportsCurrentPlanLimits()
    {
        await using var s = await CreateStoresAsync();
        await s.Plans.UpsertPlanAsync(Basic, Ct);
        var customer = Guid.NewGuid();
        await s.Plans.SetSubscriptionAsync(customer, "basic", "active", T0, Ct);

        await s.Plans.UpsertPlanAsync(new Plan("basic", "Basic", 7, ["eu-west", "us-east"]), Ct);

        var current = await s.Plans.GetSubscriptionAsync(customer, Ct);
        Assert.NotNull(current);
        Assert.Equal(7, current.MaxDevices);
        Assert.Equal(new[] { "eu-west", "us-east" }, current.AllowedRegions);
    }

    [Fact]
    public async Task SetSubscription_TwentyConcurrentForOneCustomer_ExactlyOneOpenPeriod()
    {
        await using var s = await CreateStoresAsync();
        await s.Plans.UpsertPlanAsync(Basic, Ct);
        await s.Plans.UpsertPlanAsync(new Plan("pro", "Pro", 10, ["eu-west"]), Ct);
        var customer = Guid.NewGuid();

        var results = await Task.WhenAll(Enumerable.Range(0, 20).Select(i => Task.Run(() =>
            s.Plans.SetSubscriptionAsync(customer, i % 2 == 0 ? "basic" : "pro", "active", T0.AddSeconds(i), Ct))));

        Assert.All(results, r => Assert.NotNull(r));
        var current = await s.Plans.GetSubscriptionAsync(customer, Ct);
        Assert.NotNull(current);
        Assert.Null(current.EndedAt);
        if (await CountOpenSubscriptionPeriodsAsync(customer) is { } open)
        {
            Assert.Equal(1, open);
        }
        if (await ReadSubscriptionHistoryAsync(customer) is { } history)
        {
            Assert.Equal(20, history.Count);
            Assert.Equal(current.StartedAt, Assert.Single(history, p => p.EndedAt is null).StartedAt);
        }
    }
}
