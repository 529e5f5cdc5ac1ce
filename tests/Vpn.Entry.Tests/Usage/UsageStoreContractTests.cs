using Vpn.Domain.Usage;
using Vpn.Entry.Accounts;
using Vpn.Entry.Auth;
using Vpn.Entry.Devices;
using Vpn.Entry.Usage;

namespace Vpn.Entry.Tests.Usage;

/// <summary>The stores a usage test needs, over one fresh, isolated store.</summary>
public sealed class UsageStoreSet(IPlanStore plans, IDeviceStore devices, INodeStore nodes, ISessionStore sessions, IUsageStore usage,
    ICustomerErasureStore erasure, Func<Guid, Task<int>> countUsageRows, Func<ValueTask>? dispose = null) : IAsyncDisposable
{
    public IPlanStore Plans { get; } = plans;

    public IDeviceStore Devices { get; } = devices;

    public INodeStore Nodes { get; } = nodes;

    public ISessionStore Sessions { get; } = sessions;

    public IUsageStore Usage { get; } = usage;

    public ICustomerErasureStore Erasure { get; } = erasure;

    /// <summary>The customer's stored per-period totals, any period, as the storage itself holds them.</summary>
    public Func<Guid, Task<int>> CountUsageRows { get; } = countUsageRows;

    public ValueTask DisposeAsync() => dispose?.Invoke() ?? ValueTask.CompletedTask;
}

/// <summary>
/// What every <see cref="IUsageStore"/> must do alike (record_node_usage on PostgreSQL, the in-memory twin): counters are
/// cumulative per generation, a report counts only what grew since the last one, a new generation counts all of it, and
/// only the reporting node's live (or just ended) sessions count.
/// </summary>
public abstract partial class UsageStoreContractTests
{
    /// <summary>The customer's first subscription: 31 January 2030, so its periods end on 28 February (2030 is not a leap year).</summary>
    protected static readonly DateTimeOffset T0 = new(2030, 1, 31, 10, 0, 0, TimeSpan.Zero);

    private static readonly DateTimeOffset PeriodStart = new(2030, 1, 31, 0, 0, 0, TimeSpan.Zero);
    private static readonly DateTimeOffset PeriodEnd = new(2030, 2, 28, 0, 0, 0, TimeSpan.Zero);

    private static readonly Plan Quota = new("quota", "Quota", 5, ["eu-west"], MonthlyDataBytes: 1000);
    private static readonly Plan Unlimited = new("unlimited", "Unlimited", 5, ["eu-west"]);

    private protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    protected abstract Task<UsageStoreSet> CreateStoresAsync();

    private protected sealed record Live(Guid Customer, Guid SessionId, Node Node, WireGuardKey DeviceKey = default);

    private static async Task<Node> NewNodeAsync(UsageStoreSet s, string name)
    {
        var (node, created) = await s.Nodes.UpsertAsync(new NodeRegistration(name, "eu-west", "DE", "fra", "default", "203.0.113.7:51820",
            WireGuardKey.Generate().ToBase64(), "core.test:50051", 100), T0, Ct);
        Assert.True(created);
        return node;
    }

    /// <summary>A customer subscribed at T0 with one device and an active session on <paramref name="node"/> (a new node when null).</summary>
    private protected static async Task<Live> NewLiveAsync(UsageStoreSet s, Plan? plan = null, Node? node = null, Guid? customer = null, int address = 2,
        WireGuardKey? deviceKey = null)
    {
        plan ??= Quota;
        node ??= await NewNodeAsync(s, "node-" + Guid.NewGuid().ToString("N")[..8]);
        await s.Plans.UpsertPlanAsync(plan, Ct);
        var customerId = customer ?? Guid.NewGuid();
        Assert.NotNull(await s.Plans.SetSubscriptionAsync(customerId, plan.Code, "active", T0, Ct));
        var device = new Device(Guid.NewGuid(), customerId, "laptop", deviceKey ?? WireGuardKey.Generate(), T0);
        if (deviceKey is { } key && (await s.Devices.ListAsync(customerId, Ct)).FirstOrDefault(d => d.PublicKey == key) is { } existing)
        {
            device = existing;
        }
        else
        {
            Assert.Equal(DeviceCreateOutcome.Created, (await s.Devices.CreateAsync(device, 5, Ct)).Outcome);
        }
        var session = new NewSession(Guid.CreateVersion7(), customerId, device.Id, device.PublicKey, node.Id, RandomNumberGenerator.GetBytes(32),
            "eu-west", "DE", "fra", "default", T0);
        Assert.Equal(ClaimOutcome.Claimed, (await s.Sessions.ClaimAsync(session, replaceExisting: false, Ct)).Outcome);
        Assert.True(await s.Sessions.ActivateAsync(session.Id, $"10.64.0.{address}", null, ["10.64.0.1"], T0.AddSeconds(1), Ct));
        return new Live(customerId, session.Id, node, device.PublicKey);
    }

    private protected static Task<IReadOnlyList<QuotaReached>> RecordAsync(UsageStoreSet s, Live live, long generation, long rx, long tx, DateTimeOffset? at = null) =>
        s.Usage.RecordAsync(live.Node.Id, [new SessionCounters(live.SessionId, generation, rx, tx)], at ?? T0.AddMinutes(5), Ct);

    private static async Task<long> UsedAsync(UsageStoreSet s, Live live, DateTimeOffset? at = null) =>
        (await s.Usage.GetAsync(live.Customer, at ?? T0.AddMinutes(5), Ct)).UsedBytes;

    [Fact]
    public async Task Record_FirstReport_CountsReceivedPlusSent_InThePeriodAnchoredOnTheFirstSubscription()
    {
        await using var s = await CreateStoresAsync();
        var live = await NewLiveAsync(s);

        Assert.Empty(await RecordAsync(s, live, 1, 100, 50));

        var usage = await s.Usage.GetAsync(live.Customer, T0.AddMinutes(5), Ct);
        Assert.Equal(new DataUsage(150, 1000, new BillingPeriod(PeriodStart, PeriodEnd)), usage);
        Assert.False(usage.Exhausted);
    }

    [Fact]
    public async Task Record_SameReportTwice_CountsOnce()
    {
        await using var s = await CreateStoresAsync();
        var live = await NewLiveAsync(s);

        await RecordAsync(s, live, 1, 100, 50);
        await RecordAsync(s, live, 1, 100, 50);
        await RecordAsync(s, live, 1, 100, 50, T0.AddMinutes(9));

        Assert.Equal(150, await UsedAsync(s, live));
    }

    [Fact]
    public async Task Record_GrowthWithinAGeneration_CountsTheDifference()
    {
        await using var s = await CreateStoresAsync();
        var live = await NewLiveAsync(s);

        await RecordAsync(s, live, 1, 100, 50);
        await RecordAsync(s, live, 1, 300, 80);

        Assert.Equal(380, await UsedAsync(s, live));
    }

    [Fact]
    public async Task Record_NewGeneration_CountsFromZero()
    {
        await using var s = await CreateStoresAsync();
        var live = await NewLiveAsync(s);
        await RecordAsync(s, live, 1, 300, 80);

        // wireguard-go or core restarted (or the peer was re-added): the counters start again from zero.
        await RecordAsync(s, live, 2, 10, 5);
        Assert.Equal(395, await UsedAsync(s, live));
        // ...and that generation then counts its growth only.
        await RecordAsync(s, live, 2, 40, 5);
        Assert.Equal(425, await UsedAsync(s, live));
        // A new generation whose counters happen to be higher than the old one's counts all of it too.
        await RecordAsync(s, live, 3, 500, 0);
        Assert.Equal(925, await UsedAsync(s, live));
    }

    [Fact]
    public async Task Record_LowerCountersInTheSameGeneration_CountZeroPerDirection_AndTheHighestIsKept()
    {
        await using var s = await CreateStoresAsync();
        var live = await NewLiveAsync(s);
        await RecordAsync(s, live, 1, 300, 80);

        // rx went down (a stale read): it counts 0; tx grew by 10: that counts.
        await RecordAsync(s, live, 1, 100, 90);
        Assert.Equal(390, await UsedAsync(s, live));
        // Growth is measured from the highest counter seen (300), not from the lower one just reported.
        await RecordAsync(s, live, 1, 310, 90);
        Assert.Equal(400, await UsedAsync(s, live));
        await RecordAsync(s, live, 1, 0, 0);
        Assert.Equal(400, await UsedAsync(s, live));
    }

    [Fact]
    public async Task Record_AnotherNodesSessionOrAnUnknownSession_Ignored()
    {
        await using var s = await CreateStoresAsync();
        var live = await NewLiveAsync(s);
        var other = await NewNodeAsync(s, "other-node");

        Assert.Empty(await s.Usage.RecordAsync(other.Id, [new SessionCounters(live.SessionId, 1, 5000, 5000)], T0.AddMinutes(5), Ct));
        Assert.Empty(await s.Usage.RecordAsync(live.Node.Id, [new SessionCounters(Guid.NewGuid(), 1, 5000, 5000)], T0.AddMinutes(5), Ct));
        Assert.Equal(0, await UsedAsync(s, live));

        // The other node's report did not set the session's counters either: its own node's first report counts all of it.
        await RecordAsync(s, live, 1, 100, 0);
        Assert.Equal(100, await UsedAsync(s, live));
    }

    [Fact]
    public async Task Record_SessionEndedUpToTenMinutesAgo_Counts_EndedLonger_Ignored()
    {
        await using var s = await CreateStoresAsync();
        var live = await NewLiveAsync(s);
        await RecordAsync(s, live, 1, 100, 0, T0.AddMinutes(1));
        var endedAt = T0.AddMinutes(2);
        Assert.NotNull(await s.Sessions.TerminateActiveAsync(live.Customer, "user_request", endedAt, Ct));

        // A report read before the peer was removed still arrives: it counts.
        await RecordAsync(s, live, 1, 200, 0, endedAt.AddMinutes(10));
        Assert.Equal(200, await UsedAsync(s, live, endedAt.AddMinutes(10)));
        await RecordAsync(s, live, 1, 300, 0, endedAt.AddMinutes(10).AddSeconds(1));
        Assert.Equal(200, await UsedAsync(s, live, endedAt.AddMinutes(11)));
    }

    [Fact]
    public async Task Record_OneReportOfSeveralCustomers_EachCountsItsOwn_QuotaReachedAtTheLimit()
    {
        await using var s = await CreateStoresAsync();
        var a = await NewLiveAsync(s);
        var b = await NewLiveAsync(s, node: a.Node, address: 3);
        var unlimited = await NewLiveAsync(s, Unlimited, a.Node, address: 4);

        var reached = await s.Usage.RecordAsync(a.Node.Id,
            [new SessionCounters(a.SessionId, 1, 600, 399), new SessionCounters(b.SessionId, 1, 400, 100), new SessionCounters(unlimited.SessionId, 1, 1L << 40, 0)],
            T0.AddMinutes(5), Ct);
        Assert.Empty(reached);
        Assert.Equal(999, await UsedAsync(s, a));
        Assert.Equal(500, await UsedAsync(s, b));
        Assert.Equal(1L << 40, await UsedAsync(s, unlimited));
        Assert.False((await s.Usage.GetAsync(unlimited.Customer, T0.AddMinutes(5), Ct)).Exhausted);
        Assert.Null((await s.Usage.GetAsync(unlimited.Customer, T0.AddMinutes(5), Ct)).LimitBytes);

        // a reaches exactly its limit (at or over is reached); the unlimited customer never does.
        reached = await s.Usage.RecordAsync(a.Node.Id,
            [new SessionCounters(a.SessionId, 1, 601, 399), new SessionCounters(unlimited.SessionId, 1, 1L << 41, 0)], T0.AddMinutes(6), Ct);
        var only = Assert.Single(reached);
        Assert.Equal(new QuotaReached(a.Customer, a.SessionId, 1000, 1000, PeriodEnd), only);
        Assert.True((await s.Usage.GetAsync(a.Customer, T0.AddMinutes(6), Ct)).Exhausted);

        // Over it and still live: answered again with each report that adds to it, never for a report adding nothing.
        Assert.Empty(await s.Usage.RecordAsync(a.Node.Id, [new SessionCounters(a.SessionId, 1, 601, 399)], T0.AddMinutes(7), Ct));
        Assert.Single(await s.Usage.RecordAsync(a.Node.Id, [new SessionCounters(a.SessionId, 1, 700, 399)], T0.AddMinutes(7), Ct));
    }

    [Fact]
    public async Task Record_ReachedAfterTheSessionEnded_AnswersTheCustomerWithoutALiveSession()
    {
        await using var s = await CreateStoresAsync();
        var live = await NewLiveAsync(s);
        Assert.NotNull(await s.Sessions.TerminateActiveAsync(live.Customer, "user_request", T0.AddMinutes(1), Ct));

        var reached = Assert.Single(await RecordAsync(s, live, 1, 2000, 0, T0.AddMinutes(3)));
        Assert.Equal(new QuotaReached(live.Customer, null, 2000, 1000, PeriodEnd), reached);
    }

    [Fact]
    public async Task Reset_ZeroesTheCurrentPeriod_TheSessionsCountersStayKnown()
    {
        await using var s = await CreateStoresAsync();
        var live = await NewLiveAsync(s);
        Assert.Single(await RecordAsync(s, live, 1, 1000, 200));

        var after = await s.Usage.ResetAsync(live.Customer, T0.AddMinutes(6), Ct);
        Assert.Equal(new DataUsage(0, 1000, new BillingPeriod(PeriodStart, PeriodEnd)), after);
        Assert.Equal(0, await UsedAsync(s, live));

        // The same counters again add nothing: the reset forgives what was used, it does not count it twice.
        Assert.Empty(await RecordAsync(s, live, 1, 1000, 200, T0.AddMinutes(7)));
        Assert.Equal(0, await UsedAsync(s, live, T0.AddMinutes(7)));
        await RecordAsync(s, live, 1, 1100, 200, T0.AddMinutes(8));
        Assert.Equal(100, await UsedAsync(s, live, T0.AddMinutes(8)));
        // Resetting with nothing recorded is fine too.
        var stranger = Guid.NewGuid();
        Assert.Equal(0, (await s.Usage.ResetAsync(stranger, T0, Ct)).UsedBytes);
    }

    [Fact]
    public async Task Record_AfterThePeriodEnds_CountsInTheNextPeriod_WhichStartsFromZero()
    {
        await using var s = await CreateStoresAsync();
        var live = await NewLiveAsync(s);
        await RecordAsync(s, live, 1, 900, 0, PeriodEnd.AddTicks(-TimeSpan.TicksPerMicrosecond));

        var next = await s.Usage.GetAsync(live.Customer, PeriodEnd, Ct);
        Assert.Equal(new DataUsage(0, 1000, new BillingPeriod(PeriodEnd, new DateTimeOffset(2030, 3, 31, 0, 0, 0, TimeSpan.Zero))), next);

        await RecordAsync(s, live, 1, 950, 0, PeriodEnd);
        Assert.Equal(50, await UsedAsync(s, live, PeriodEnd));
        Assert.Equal(900, await UsedAsync(s, live, PeriodEnd.AddDays(-1)));
    }

    [Fact]
    public async Task Get_AnchorIsTheFirstSubscriptionsDay_ThePlanIsTheCurrentOnes()
    {
        await using var s = await CreateStoresAsync();
        var live = await NewLiveAsync(s);
        await s.Plans.UpsertPlanAsync(Unlimited, Ct);
        var upgradedAt = new DateTimeOffset(2030, 2, 10, 9, 0, 0, TimeSpan.Zero);
        Assert.NotNull(await s.Plans.SetSubscriptionAsync(live.Customer, Unlimited.Code, "active", upgradedAt, Ct));

        // Still anchored on the 31st (the first subscription), now unlimited.
        var usage = await s.Usage.GetAsync(live.Customer, upgradedAt.AddHours(1), Ct);
        Assert.Equal(new DataUsage(0, null, new BillingPeriod(PeriodStart, PeriodEnd)), usage);

        // Without any subscription: anchored on the 1st, unlimited, nothing used.
        var none = await s.Usage.GetAsync(Guid.NewGuid(), upgradedAt, Ct);
        Assert.Equal(new DataUsage(0, null, new BillingPeriod(new(2030, 2, 1, 0, 0, 0, TimeSpan.Zero), new(2030, 3, 1, 0, 0, 0, TimeSpan.Zero))), none);
    }

    [Fact]
    public async Task Record_EmptyReport_RecordsNothing()
    {
        await using var s = await CreateStoresAsync();
        var live = await NewLiveAsync(s);

        Assert.Empty(await s.Usage.RecordAsync(live.Node.Id, [], T0.AddMinutes(5), Ct));
        Assert.Equal(0, await s.CountUsageRows(live.Customer));
    }

    [Fact]
    public async Task Erase_RemovesTheCustomersUsage_OthersKept()
    {
        await using var s = await CreateStoresAsync();
        var erased = await NewLiveAsync(s);
        var kept = await NewLiveAsync(s, node: erased.Node, address: 3);
        await s.Usage.RecordAsync(erased.Node.Id,
            [new SessionCounters(erased.SessionId, 1, 100, 0), new SessionCounters(kept.SessionId, 1, 200, 0)], T0.AddMinutes(5), Ct);
        // A second period's total too.
        await RecordAsync(s, erased, 1, 150, 0, PeriodEnd.AddMinutes(1));
        Assert.Equal(2, await s.CountUsageRows(erased.Customer));

        var result = await s.Erasure.EraseAsync(erased.Customer,
            new CustomerRevocation(CustomerRevocation.KeyOf(erased.Customer), T0.AddMinutes(6), true, T0.AddHours(2)), revokeIfUnknown: false, Ct);
        Assert.True(result.Found);

        Assert.Equal(0, await s.CountUsageRows(erased.Customer));
        Assert.Equal(0, await UsedAsync(s, erased));
        Assert.Equal(200, await UsedAsync(s, kept));
        // The erased session's counters went with it: a late report of it counts for nobody.
        Assert.Empty(await RecordAsync(s, erased, 1, 5000, 0, PeriodEnd.AddMinutes(2)));
        Assert.Equal(0, await s.CountUsageRows(erased.Customer));
    }

    [Fact]
    public async Task Record_RandomReportSequences_MatchAReferenceModel()
    {
        await using var s = await CreateStoresAsync();
        var a = await NewLiveAsync(s);
        var b = await NewLiveAsync(s, Unlimited, a.Node, address: 3);
        var random = new Random(15_015);
        // The reference: per session the generation and the highest counters seen in it; the total adds what grew.
        var model = new Dictionary<Guid, (long Gen, long Rx, long Tx)>();
        var expected = new Dictionary<Guid, long> { [a.Customer] = 0, [b.Customer] = 0 };
        var last = new Dictionary<Guid, SessionCounters>();
        for (var step = 0; step < 60; step++)
        {
            var report = new List<SessionCounters>();
            foreach (var live in new[] { a, b }.Where(_ => random.Next(4) != 0))
            {
                SessionCounters counters;
                if (last.TryGetValue(live.SessionId, out var previous) && random.Next(5) == 0)
                {
                    counters = previous; // a replay
                }
                else if (!model.TryGetValue(live.SessionId, out var known) || random.Next(6) == 0)
                {
                    counters = new SessionCounters(live.SessionId, (known.Gen + 1) * 10, random.Next(0, 50), random.Next(0, 50));
                }
                else
                {
                    // Mostly growth, sometimes a lower (stale) read of either direction.
                    counters = new SessionCounters(live.SessionId, known.Gen, Math.Max(0, known.Rx + random.Next(-20, 100)),
                        Math.Max(0, known.Tx + random.Next(-20, 100)));
                }
                report.Add(counters);
                last[live.SessionId] = counters;
                var had = model.TryGetValue(live.SessionId, out var old);
                var customer = live.Customer;
                if (!had || old.Gen != counters.Generation)
                {
                    expected[customer] += counters.ReceivedBytes + counters.SentBytes;
                    model[live.SessionId] = (counters.Generation, counters.ReceivedBytes, counters.SentBytes);
                }
                else
                {
                    expected[customer] += Math.Max(0, counters.ReceivedBytes - old.Rx) + Math.Max(0, counters.SentBytes - old.Tx);
                    model[live.SessionId] = (old.Gen, Math.Max(old.Rx, counters.ReceivedBytes), Math.Max(old.Tx, counters.SentBytes));
                }
            }
            await s.Usage.RecordAsync(a.Node.Id, report, T0.AddMinutes(5 + step), Ct);
            Assert.Equal(expected[a.Customer], await UsedAsync(s, a, T0.AddMinutes(5 + step)));
            Assert.Equal(expected[b.Customer], await UsedAsync(s, b, T0.AddMinutes(5 + step)));
        }
        Assert.True(expected[a.Customer] > 0 && expected[b.Customer] > 0);
    }

    [Fact]
    public async Task Record_OverlappingReportsConcurrently_EachGrowthCountsOnce_NoDeadlock()
    {
        await using var s = await CreateStoresAsync();
        var a = await NewLiveAsync(s, Unlimited);
        var b = await NewLiveAsync(s, Unlimited, a.Node, address: 3);
        var forward = new[] { new SessionCounters(a.SessionId, 1, 1000, 10), new SessionCounters(b.SessionId, 1, 2000, 20) };
        SessionCounters[] backward = [forward[1], forward[0]];

        // The same counters in both orders, many at once: the rows lock in id order, so they queue instead of deadlocking.
        await Task.WhenAll(Enumerable.Range(0, 16).Select(i => Task.Run(() => s.Usage.RecordAsync(a.Node.Id, i % 2 == 0 ? forward : backward,
            T0.AddMinutes(5), Ct))));

        Assert.Equal(1010, await UsedAsync(s, a));
        Assert.Equal(2020, await UsedAsync(s, b));
    }
}
