using System.Security.Cryptography;
using Vpn.Domain.Sessions;
using Vpn.Domain.WireGuard;
using Vpn.Entry.Devices;
using Vpn.Entry.Nodes;
using Vpn.Entry.Sessions;
using Vpn.Entry.Subscriptions;

namespace Vpn.Entry.Tests.Data;

/// <summary>The four store interfaces over one fresh, isolated store.</summary>
public sealed class StoreSet(IPlanStore plans, IDeviceStore devices, INodeStore nodes, ISessionStore sessions, Func<ValueTask>? dispose = null)
    : IAsyncDisposable
{
    public IPlanStore Plans { get; } = plans;

    public IDeviceStore Devices { get; } = devices;

    public INodeStore Nodes { get; } = nodes;

    public ISessionStore Sessions { get; } = sessions;

    public ValueTask DisposeAsync() => dispose?.Invoke() ?? ValueTask.CompletedTask;
}

/// <summary>One stored subscription period, for stores whose history is visible beyond the interface.</summary>
public sealed record SubscriptionPeriod(string PlanCode, DateTimeOffset StartedAt, DateTimeOffset? EndedAt);

/// <summary>
/// The behaviour every store behind IPlanStore/IDeviceStore/INodeStore/ISessionStore must share: the in-memory store
/// for local runs and the PostgreSQL stores must be interchangeable, races included.
/// </summary>
public abstract class StoreContractTests
{
    protected static readonly DateTimeOffset T0 = new(2030, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>A store nobody else uses: a new in-memory store, or the PostgreSQL stores over a new migrated database.</summary>
    protected abstract Task<StoreSet> CreateStoresAsync();

    /// <summary>Every period of the customer in insertion order; null when the store shows no more than its interface.</summary>
    protected virtual Task<IReadOnlyList<SubscriptionPeriod>?> ReadSubscriptionHistoryAsync(Guid customerId) =>
        Task.FromResult<IReadOnlyList<SubscriptionPeriod>?>(null);

    /// <summary>Open periods as the storage itself counts them; null when only the interface can tell.</summary>
    protected virtual Task<long?> CountOpenSubscriptionPeriodsAsync(Guid customerId) => Task.FromResult<long?>(null);

    // ---- Plans and subscriptions -------------------------------------------------------------------------------

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

    // ---- Devices -----------------------------------------------------------------------------------------------

    [Fact]
    public async Task CreateDevice_UnderLimit_ListedAndReadableByOwner()
    {
        await using var s = await CreateStoresAsync();
        var customer = await NewCustomerAsync(s);
        var laptop = NewDevice(customer, "laptop", T0);
        var phone = NewDevice(customer, "phone", T0.AddMinutes(1));

        var created = await s.Devices.CreateAsync(laptop, 5, Ct);
        Assert.Equal(DeviceCreateOutcome.Created, created.Outcome);
        Assert.Equal(laptop, created.Device);
        Assert.Equal(DeviceCreateOutcome.Created, (await s.Devices.CreateAsync(phone, 5, Ct)).Outcome);

        Assert.Equal(new[] { laptop, phone }, await s.Devices.ListAsync(customer, Ct));
        Assert.Equal(phone, await s.Devices.GetAsync(customer, phone.Id, Ct));
        Assert.Null(await s.Devices.GetAsync(customer, Guid.NewGuid(), Ct));
    }

    [Fact]
    public async Task GetDevice_OtherCustomersDevice_ReturnsNullAndCannotDelete()
    {
        await using var s = await CreateStoresAsync();
        var owner = await NewCustomerAsync(s);
        var other = await NewCustomerAsync(s);
        var device = await NewDeviceAsync(s, owner);

        Assert.Null(await s.Devices.GetAsync(other, device.Id, Ct));
        Assert.Empty(await s.Devices.ListAsync(other, Ct));
        Assert.Equal((false, (SessionRecord?)null), await s.Devices.DeleteAsync(other, device.Id, T0, Ct));
        Assert.Equal(device, await s.Devices.GetAsync(owner, device.Id, Ct));
    }

    [Fact]
    public async Task CreateDevice_KeyUsedByAnotherCustomer_KeyInUse()
    {
        await using var s = await CreateStoresAsync();
        var owner = await NewCustomerAsync(s);
        var other = await NewCustomerAsync(s);
        var device = await NewDeviceAsync(s, owner);

        var stolen = await s.Devices.CreateAsync(NewDevice(other, "copy", T0) with { PublicKey = device.PublicKey }, 5, Ct);
        var twice = await s.Devices.CreateAsync(NewDevice(owner, "again", T0) with { PublicKey = device.PublicKey }, 5, Ct);

        Assert.Equal(new DeviceCreateResult(DeviceCreateOutcome.KeyInUse, null), stolen);
        Assert.Equal(new DeviceCreateResult(DeviceCreateOutcome.KeyInUse, null), twice);
        Assert.Empty(await s.Devices.ListAsync(other, Ct));
        Assert.Equal(new[] { device }, await s.Devices.ListAsync(owner, Ct));
    }

    [Fact]
    public async Task CreateDevice_AtLimit_LimitReached()
    {
        await using var s = await CreateStoresAsync();
        var customer = await NewCustomerAsync(s);
        await NewDeviceAsync(s, customer, maxDevices: 2);
        await NewDeviceAsync(s, customer, maxDevices: 2);

        var third = await s.Devices.CreateAsync(NewDevice(customer, "third", T0), 2, Ct);

        Assert.Equal(new DeviceCreateResult(DeviceCreateOutcome.LimitReached, null), third);
        Assert.Equal(2, (await s.Devices.ListAsync(customer, Ct)).Count);
    }

    [Fact]
    public async Task CreateDevice_TwentyConcurrentWithLimitFive_ExactlyFiveCreated()
    {
        await using var s = await CreateStoresAsync();
        var customer = await NewCustomerAsync(s);
        var devices = Enumerable.Range(0, 20).Select(i => NewDevice(customer, $"device-{i}", T0.AddSeconds(i))).ToList();

        var results = await Task.WhenAll(devices.Select(d => Task.Run(() => s.Devices.CreateAsync(d, 5, Ct))));

        Assert.Equal(5, results.Count(r => r.Outcome == DeviceCreateOutcome.Created));
        Assert.Equal(15, results.Count(r => r.Outcome == DeviceCreateOutcome.LimitReached));
        Assert.Equal(5, (await s.Devices.ListAsync(customer, Ct)).Count);
    }

    [Fact]
    public async Task DeleteDevice_WithActiveSession_TerminatesAndReturnsIt()
    {
        await using var s = await CreateStoresAsync();
        var node = await NewNodeAsync(s, "node-a");
        var (customer, device) = await NewCustomerWithDeviceAsync(s);
        var session = await ClaimAndActivateAsync(s, customer, device, node, "10.64.0.2/32");

        var (deleted, terminated) = await s.Devices.DeleteAsync(customer, device.Id, T0.AddHours(1), Ct);

        Assert.True(deleted);
        Assert.NotNull(terminated);
        Assert.Equal((session.Id, customer, node.Id, device.PublicKey, "10.64.0.2/32"),
            (terminated.Id, terminated.CustomerId, terminated.NodeId, terminated.DevicePublicKey, terminated.AssignedAddress));
        Assert.Null(await s.Sessions.GetActiveAsync(customer, Ct));
        Assert.Null(await s.Sessions.GetLiveIdAsync(customer, Ct));
        Assert.Equal(0, await LoadAsync(s, node));
        Assert.Null(await s.Devices.GetAsync(customer, device.Id, Ct));
        Assert.Empty(await s.Devices.ListAsync(customer, Ct));
        Assert.Equal((false, (SessionRecord?)null), await s.Devices.DeleteAsync(customer, device.Id, T0.AddHours(2), Ct));
    }

    [Fact]
    public async Task DeleteDevice_WithProvisioningSession_TerminatesItAndFreesTheSlot()
    {
        await using var s = await CreateStoresAsync();
        var node = await NewNodeAsync(s, "node-a");
        var (customer, device) = await NewCustomerWithDeviceAsync(s);
        var session = NewSession(customer, device, node);
        Assert.Equal(ClaimOutcome.Claimed, (await s.Sessions.ClaimAsync(session, replaceExisting: false, Ct)).Outcome);

        var (deleted, terminated) = await s.Devices.DeleteAsync(customer, device.Id, T0.AddHours(1), Ct);

        Assert.True(deleted);
        Assert.Equal(session.Id, terminated?.Id);
        Assert.Null(await s.Sessions.GetLiveIdAsync(customer, Ct));
        Assert.False(await s.Sessions.ActivateAsync(session.Id, "10.64.0.2/32", null, [], T0.AddHours(2), Ct));
        var replacement = await NewDeviceAsync(s, customer);
        Assert.Equal(ClaimOutcome.Claimed, (await s.Sessions.ClaimAsync(NewSession(customer, replacement, node), replaceExisting: false, Ct)).Outcome);
    }

    [Fact]
    public async Task DeleteDevice_SessionOnAnotherDevice_LeavesItActive()
    {
        await using var s = await CreateStoresAsync();
        var node = await NewNodeAsync(s, "node-a");
        var (customer, inUse) = await NewCustomerWithDeviceAsync(s);
        var spare = await NewDeviceAsync(s, customer);
        var session = await ClaimAndActivateAsync(s, customer, inUse, node, "10.64.0.2/32");

        Assert.Equal((true, (SessionRecord?)null), await s.Devices.DeleteAsync(customer, spare.Id, T0.AddHours(1), Ct));

        Assert.Equal(session.Id, (await s.Sessions.GetActiveAsync(customer, Ct))?.Id);
    }

    // ---- Nodes -------------------------------------------------------------------------------------------------

    [Fact]
    public async Task UpsertNode_SameNameTwice_CreatedThenUpdatedInPlace()
    {
        await using var s = await CreateStoresAsync();

        var (first, firstCreated) = await s.Nodes.UpsertAsync(Registration("node-a", capacity: 10), T0, Ct);
        var (second, secondCreated) = await s.Nodes.UpsertAsync(Registration("node-a", capacity: 20, region: "eu-central"), T0.AddMinutes(1), Ct);
        var (other, otherCreated) = await s.Nodes.UpsertAsync(Registration("node-b"), T0, Ct);

        Assert.True(firstCreated);
        Assert.False(secondCreated);
        Assert.True(otherCreated);
        Assert.Equal(first.Id, second.Id);
        Assert.NotEqual(first.Id, other.Id);
        Assert.Equal((20, "eu-central", T0.AddMinutes(1)), (second.Capacity, second.Region, second.UpdatedAt));
        Assert.Equal((false, 0, (DateTimeOffset?)null), (first.Healthy, first.ActivePeerCount, first.LastHeartbeatAt));
        var listed = await s.Nodes.ListAsync(Ct);
        Assert.Equal(new[] { ("node-a", first.Id, 20), ("node-b", other.Id, 100) }, listed.Select(n => (n.Name, n.Id, n.Capacity)));
        Assert.Equal(second, await s.Nodes.GetAsync(first.Id, Ct));
        Assert.Null(await s.Nodes.GetAsync(Guid.NewGuid(), Ct));
    }

    [Fact]
    public async Task RecordHeartbeat_UnknownNode_ReturnsFalse()
    {
        await using var s = await CreateStoresAsync();
        await NewNodeAsync(s, "node-a");

        Assert.False(await s.Nodes.RecordHeartbeatAsync(Guid.NewGuid(), true, 3, T0, Ct));

        Assert.All(await s.Nodes.ListAsync(Ct), n => Assert.Null(n.LastHeartbeatAt));
    }

    [Fact]
    public async Task RecordHeartbeat_KnownNode_RecordedAndKeptAcrossReRegistration()
    {
        await using var s = await CreateStoresAsync();
        var node = await NewNodeAsync(s, "node-a");

        Assert.True(await s.Nodes.RecordHeartbeatAsync(node.Id, true, 7, T0.AddSeconds(5), Ct));
        var (reRegistered, created) = await s.Nodes.UpsertAsync(Registration("node-a", capacity: 50), T0.AddSeconds(10), Ct);

        Assert.False(created);
        var stored = await s.Nodes.GetAsync(node.Id, Ct);
        Assert.NotNull(stored);
        Assert.Equal((true, 7, (DateTimeOffset?)T0.AddSeconds(5), 50), (stored.Healthy, stored.ActivePeerCount, stored.LastHeartbeatAt, stored.Capacity));
        Assert.Equal(stored, reRegistered);
    }

    [Fact]
    public async Task ListWithLoad_SessionsInEveryState_CountsProvisioningAndActiveOnly()
    {
        await using var s = await CreateStoresAsync();
        var a = await NewNodeAsync(s, "node-a");
        var b = await NewNodeAsync(s, "node-b");
        var c = await NewNodeAsync(s, "node-c");
        var (provisioning, provisioningDevice) = await NewCustomerWithDeviceAsync(s);
        var (active, activeDevice) = await NewCustomerWithDeviceAsync(s);
        var (terminated, terminatedDevice) = await NewCustomerWithDeviceAsync(s);
        var (failed, failedDevice) = await NewCustomerWithDeviceAsync(s);
        var (elsewhere, elsewhereDevice) = await NewCustomerWithDeviceAsync(s);
        await s.Sessions.ClaimAsync(NewSession(provisioning, provisioningDevice, a), replaceExisting: false, Ct);
        await ClaimAndActivateAsync(s, active, activeDevice, a, "10.64.0.2/32");
        await ClaimAndActivateAsync(s, terminated, terminatedDevice, a, "10.64.0.3/32");
        Assert.NotNull(await s.Sessions.TerminateActiveAsync(terminated, "test", T0.AddMinutes(1), Ct));
        var abandoned = NewSession(failed, failedDevice, a);
        await s.Sessions.ClaimAsync(abandoned, replaceExisting: false, Ct);
        await s.Sessions.AbandonAsync(abandoned.Id, T0.AddMinutes(1), Ct);
        await ClaimAndActivateAsync(s, elsewhere, elsewhereDevice, b, "10.64.0.2/32");

        var load = await s.Nodes.ListWithLoadAsync(Ct);

        Assert.Equal(new[] { (a.Id, 2), (b.Id, 1), (c.Id, 0) }, load.Select(l => (l.Node.Id, l.LiveSessions)));
    }

    // ---- Sessions ----------------------------------------------------------------------------------------------

    [Fact]
    public async Task ClaimAsync_FiftyConcurrentForOneCustomer_OneClaimedRestConflictWithWinner()
    {
        await using var s = await CreateStoresAsync();
        var node = await NewNodeAsync(s, "node-a", capacity: 1000);
        var (customer, device) = await NewCustomerWithDeviceAsync(s);
        var attempts = Enumerable.Range(0, 50).Select(_ => NewSession(customer, device, node)).ToList();

        var results = await Task.WhenAll(attempts.Select(a => Task.Run(() => s.Sessions.ClaimAsync(a, replaceExisting: false, Ct))));

        var winner = attempts[Array.FindIndex(results, r => r.Outcome == ClaimOutcome.Claimed)].Id;
        Assert.Single(results, r => r.Outcome == ClaimOutcome.Claimed);
        Assert.All(results.Where(r => r.Outcome != ClaimOutcome.Claimed), r => Assert.Equal(new ClaimResult(ClaimOutcome.Conflict, winner), r));
        Assert.Equal(winner, await s.Sessions.GetLiveIdAsync(customer, Ct));
        Assert.Equal(1, await LoadAsync(s, node));
    }

    [Fact]
    public async Task ClaimAsync_NodeAtCapacity_NodeFullUntilASlotFrees()
    {
        await using var s = await CreateStoresAsync();
        var node = await NewNodeAsync(s, "node-a", capacity: 2);
        var (first, firstDevice) = await NewCustomerWithDeviceAsync(s);
        var (second, secondDevice) = await NewCustomerWithDeviceAsync(s);
        var (third, thirdDevice) = await NewCustomerWithDeviceAsync(s);
        var firstSession = NewSession(first, firstDevice, node);
        Assert.Equal(ClaimOutcome.Claimed, (await s.Sessions.ClaimAsync(firstSession, replaceExisting: false, Ct)).Outcome);
        await ClaimAndActivateAsync(s, second, secondDevice, node, "10.64.0.3/32");

        var full = await s.Sessions.ClaimAsync(NewSession(third, thirdDevice, node), replaceExisting: false, Ct);

        Assert.Equal(new ClaimResult(ClaimOutcome.NodeFull), full);
        Assert.Null(await s.Sessions.GetLiveIdAsync(third, Ct));
        await s.Sessions.AbandonAsync(firstSession.Id, T0.AddMinutes(1), Ct);
        Assert.Equal(ClaimOutcome.Claimed, (await s.Sessions.ClaimAsync(NewSession(third, thirdDevice, node), replaceExisting: false, Ct)).Outcome);
        Assert.Equal(2, await LoadAsync(s, node));
    }

    [Fact]
    public async Task ClaimAsync_TwentyCustomersConcurrentlyOnCapacityFive_ExactlyFiveClaimed()
    {
        await using var s = await CreateStoresAsync();
        var node = await NewNodeAsync(s, "node-a", capacity: 5);
        var attempts = new List<NewSession>();
        for (var i = 0; i < 20; i++)
        {
            var (customer, device) = await NewCustomerWithDeviceAsync(s);
            attempts.Add(NewSession(customer, device, node));
        }

        var results = await Task.WhenAll(attempts.Select(a => Task.Run(() => s.Sessions.ClaimAsync(a, replaceExisting: false, Ct))));

        Assert.Equal(5, results.Count(r => r.Outcome == ClaimOutcome.Claimed));
        Assert.Equal(15, results.Count(r => r.Outcome == ClaimOutcome.NodeFull));
        Assert.Equal(5, await LoadAsync(s, node));
    }

    [Fact]
    public async Task ClaimAsync_UnknownNode_NodeGone()
    {
        await using var s = await CreateStoresAsync();
        await NewNodeAsync(s, "node-a");
        var (customer, device) = await NewCustomerWithDeviceAsync(s);
        var ghost = new Node(Guid.NewGuid(), "ghost", "eu-west", null, null, null, "203.0.113.9:51820", NewKey(), "core.test:50051", 10,
            true, 0, T0, T0);

        var result = await s.Sessions.ClaimAsync(NewSession(customer, device, ghost), replaceExisting: false, Ct);

        Assert.Equal(new ClaimResult(ClaimOutcome.NodeGone), result);
        Assert.Null(await s.Sessions.GetLiveIdAsync(customer, Ct));
    }

    /// <summary>The race the outcome exists for: the device is read, then deleted, then claimed for.</summary>
    [Fact]
    public async Task ClaimAsync_DeviceDeletedAfterRead_DeviceGoneAndNothingLive()
    {
        await using var s = await CreateStoresAsync();
        var node = await NewNodeAsync(s, "node-a");
        var (customer, device) = await NewCustomerWithDeviceAsync(s);
        Assert.NotNull(await s.Devices.GetAsync(customer, device.Id, Ct));
        Assert.True((await s.Devices.DeleteAsync(customer, device.Id, T0, Ct)).Deleted);

        var result = await s.Sessions.ClaimAsync(NewSession(customer, device, node), replaceExisting: false, Ct);

        Assert.Equal(new ClaimResult(ClaimOutcome.DeviceGone), result);
        Assert.Null(await s.Sessions.GetLiveIdAsync(customer, Ct));
        Assert.Equal(0, await LoadAsync(s, node));
    }

    [Fact]
    public async Task ActivateAsync_Provisioning_ActiveWithAddressAndDns()
    {
        await using var s = await CreateStoresAsync();
        var node = await NewNodeAsync(s, "node-a");
        var (customer, device) = await NewCustomerWithDeviceAsync(s);
        var session = NewSession(customer, device, node);
        Assert.Equal(ClaimOutcome.Claimed, (await s.Sessions.ClaimAsync(session, replaceExisting: false, Ct)).Outcome);
        Assert.Null(await s.Sessions.GetActiveAsync(customer, Ct));
        Assert.Equal(session.Id, await s.Sessions.GetLiveIdAsync(customer, Ct));

        Assert.True(await s.Sessions.ActivateAsync(session.Id, "10.64.0.2/32", null, ["10.64.0.1", "1.1.1.1"], T0.AddSeconds(1), Ct));

        var active = await s.Sessions.GetActiveAsync(customer, Ct);
        Assert.NotNull(active);
        Assert.Equal(
            (session.Id, customer, (Guid?)device.Id, device.PublicKey, node.Id, SessionState.Active, "10.64.0.2/32", "eu-west", "DE", "fra", "default", T0),
            (active.Id, active.CustomerId, active.DeviceId, active.DevicePublicKey, active.NodeId, active.State, active.AssignedAddress,
                active.Region, active.CountryCode, active.CityCode, active.Pool, active.CreatedAt));
        Assert.Equal(new[] { "10.64.0.1", "1.1.1.1" }, active.Dns);
        Assert.False(await s.Sessions.ActivateAsync(session.Id, "10.64.0.9/32", null, [], T0.AddSeconds(2), Ct));
        Assert.Equal("10.64.0.2/32", (await s.Sessions.GetActiveAsync(customer, Ct))?.AssignedAddress);
    }

    [Fact]
    public async Task ActivateAsync_AddressHeldByAnotherLiveSessionOnNode_ReturnsFalse()
    {
        await using var s = await CreateStoresAsync();
        var node = await NewNodeAsync(s, "node-a");
        var (holder, holderDevice) = await NewCustomerWithDeviceAsync(s);
        var (late, lateDevice) = await NewCustomerWithDeviceAsync(s);
        await ClaimAndActivateAsync(s, holder, holderDevice, node, "10.64.0.2/32");
        var session = NewSession(late, lateDevice, node);
        Assert.Equal(ClaimOutcome.Claimed, (await s.Sessions.ClaimAsync(session, replaceExisting: false, Ct)).Outcome);

        Assert.False(await s.Sessions.ActivateAsync(session.Id, "10.64.0.2/32", null, [], T0.AddSeconds(1), Ct));

        Assert.Null(await s.Sessions.GetActiveAsync(late, Ct));
        Assert.Equal(session.Id, await s.Sessions.GetLiveIdAsync(late, Ct));
        Assert.True(await s.Sessions.ActivateAsync(session.Id, "10.64.0.3/32", null, [], T0.AddSeconds(2), Ct));
    }

    [Fact]
    public async Task ActivateAsync_SameAddressOnAnotherNode_ReturnsTrue()
    {
        await using var s = await CreateStoresAsync();
        var a = await NewNodeAsync(s, "node-a");
        var b = await NewNodeAsync(s, "node-b");
        var (first, firstDevice) = await NewCustomerWithDeviceAsync(s);
        var (second, secondDevice) = await NewCustomerWithDeviceAsync(s);
        await ClaimAndActivateAsync(s, first, firstDevice, a, "10.64.0.2/32");

        var session = await ClaimAndActivateAsync(s, second, secondDevice, b, "10.64.0.2/32");

        Assert.Equal(session.Id, (await s.Sessions.GetActiveAsync(second, Ct))?.Id);
    }

    [Fact]
    public async Task ActivateAsync_AddressOfTerminatedSession_ReusableOnSameNode()
    {
        await using var s = await CreateStoresAsync();
        var node = await NewNodeAsync(s, "node-a");
        var (first, firstDevice) = await NewCustomerWithDeviceAsync(s);
        var (second, secondDevice) = await NewCustomerWithDeviceAsync(s);
        await ClaimAndActivateAsync(s, first, firstDevice, node, "10.64.0.2/32");
        Assert.NotNull(await s.Sessions.TerminateActiveAsync(first, "customer_request", T0.AddMinutes(1), Ct));

        var session = await ClaimAndActivateAsync(s, second, secondDevice, node, "10.64.0.2/32");

        Assert.Equal("10.64.0.2/32", (await s.Sessions.GetActiveAsync(second, Ct))?.AssignedAddress);
        Assert.Equal(session.Id, await s.Sessions.GetLiveIdAsync(second, Ct));
    }

    [Fact]
    public async Task ActivateAsync_DualStack_StoresIpv6EverywhereTheSessionIsRead()
    {
        await using var s = await CreateStoresAsync();
        var node = await NewNodeAsync(s, "node-a");
        var (dual, dualDevice) = await NewCustomerWithDeviceAsync(s);
        var (legacy, legacyDevice) = await NewCustomerWithDeviceAsync(s);
        var session = NewSession(dual, dualDevice, node);
        var claim = await s.Sessions.ClaimAsync(session, replaceExisting: false, Ct);
        Assert.Equal(ClaimOutcome.Claimed, claim.Outcome);
        var v4Only = await ClaimAndActivateAsync(s, legacy, legacyDevice, node, "10.64.0.3/32");
        var v4OnlySeq = (await s.Sessions.GetActiveAsync(legacy, Ct))!.ClaimSeq;
        Assert.True(claim.ClaimSeq > 0 && v4OnlySeq > claim.ClaimSeq, $"claims in order: {claim.ClaimSeq}, {v4OnlySeq}");

        Assert.True(await s.Sessions.ActivateAsync(session.Id, "10.64.0.2/32", "fd64:6400::2/128", ["10.64.0.1", "fd64:6400::1"], T0.AddSeconds(1), Ct));

        var active = await s.Sessions.GetActiveAsync(dual, Ct);
        Assert.NotNull(active);
        Assert.Equal(("10.64.0.2/32", "fd64:6400::2/128"), (active.AssignedAddress, active.AssignedAddressV6));
        Assert.Equal(new[] { "10.64.0.1", "fd64:6400::1" }, active.Dns);
        Assert.Equal("fd64:6400::2/128", (await s.Sessions.FindActiveByKeyHashAsync(session.KeyHash, Ct))?.AssignedAddressV6);
        Assert.Null((await s.Sessions.GetActiveAsync(legacy, Ct))?.AssignedAddressV6);
        Assert.Equal(
            new[]
            {
                new DesiredPeer(session.Id, dualDevice.PublicKey.ToBase64(), "10.64.0.2/32", SessionState.Active.ToName(), "fd64:6400::2/128", claim.ClaimSeq),
                new DesiredPeer(v4Only.Id, legacyDevice.PublicKey.ToBase64(), "10.64.0.3/32", SessionState.Active.ToName(), null, v4OnlySeq),
            }.OrderBy(p => p.SessionId),
            await s.Nodes.ListDesiredPeersAsync(node.Id, Ct));
        var terminated = await s.Sessions.TerminateActiveAsync(dual, "customer_request", T0.AddMinutes(1), Ct);
        Assert.Equal("fd64:6400::2/128", terminated?.AssignedAddressV6);
    }

    [Fact]
    public async Task ActivateAsync_Ipv6HeldByAnotherLiveSessionOnNode_ReturnsFalse()
    {
        await using var s = await CreateStoresAsync();
        var node = await NewNodeAsync(s, "node-a");
        var (holder, holderDevice) = await NewCustomerWithDeviceAsync(s);
        var (late, lateDevice) = await NewCustomerWithDeviceAsync(s);
        await ClaimAndActivateAsync(s, holder, holderDevice, node, "10.64.0.2/32", "fd64:6400::2/128");
        var session = NewSession(late, lateDevice, node);
        Assert.Equal(ClaimOutcome.Claimed, (await s.Sessions.ClaimAsync(session, replaceExisting: false, Ct)).Outcome);

        // Only the IPv6 address collides: the database's second index decides, as the first does for IPv4.
        Assert.False(await s.Sessions.ActivateAsync(session.Id, "10.64.0.3/32", "fd64:6400::2/128", [], T0.AddSeconds(1), Ct));

        Assert.Null(await s.Sessions.GetActiveAsync(late, Ct));
        Assert.Equal(session.Id, await s.Sessions.GetLiveIdAsync(late, Ct));
        Assert.True(await s.Sessions.ActivateAsync(session.Id, "10.64.0.3/32", "fd64:6400::3/128", [], T0.AddSeconds(2), Ct));
    }

    [Fact]
    public async Task ActivateAsync_Ipv6OnAnotherNodeOrOfEndedSession_Reusable()
    {
        await using var s = await CreateStoresAsync();
        var a = await NewNodeAsync(s, "node-a");
        var b = await NewNodeAsync(s, "node-b");
        var (first, firstDevice) = await NewCustomerWithDeviceAsync(s);
        var (second, secondDevice) = await NewCustomerWithDeviceAsync(s);
        var (third, thirdDevice) = await NewCustomerWithDeviceAsync(s);
        await ClaimAndActivateAsync(s, first, firstDevice, a, "10.64.0.2/32", "fd64:6400::2/128");

        await ClaimAndActivateAsync(s, second, secondDevice, b, "10.64.0.2/32", "fd64:6400::2/128");
        Assert.NotNull(await s.Sessions.TerminateActiveAsync(first, "customer_request", T0.AddMinutes(1), Ct));
        await ClaimAndActivateAsync(s, third, thirdDevice, a, "10.64.0.4/32", "fd64:6400::2/128");

        Assert.Equal("fd64:6400::2/128", (await s.Sessions.GetActiveAsync(second, Ct))?.AssignedAddressV6);
        Assert.Equal("fd64:6400::2/128", (await s.Sessions.GetActiveAsync(third, Ct))?.AssignedAddressV6);
    }

    [Fact]
    public async Task ActivateAsync_SeveralSessionsWithoutIpv6OnOneNode_AllActive()
    {
        await using var s = await CreateStoresAsync();
        var node = await NewNodeAsync(s, "node-a");
        var (first, firstDevice) = await NewCustomerWithDeviceAsync(s);
        var (second, secondDevice) = await NewCustomerWithDeviceAsync(s);
        var (third, thirdDevice) = await NewCustomerWithDeviceAsync(s);

        await ClaimAndActivateAsync(s, first, firstDevice, node, "10.64.0.2/32");
        await ClaimAndActivateAsync(s, second, secondDevice, node, "10.64.0.3/32");
        await ClaimAndActivateAsync(s, third, thirdDevice, node, "10.64.0.4/32", "fd64:6400::4/128");

        Assert.Equal(3, await LoadAsync(s, node));
    }

    [Fact]
    public async Task MoveAsync_ToAnotherNode_StoresBothNewAddressesAndRotatesKey()
    {
        await using var s = await CreateStoresAsync();
        var a = await NewNodeAsync(s, "node-a");
        var b = await NewNodeAsync(s, "node-b");
        var (customer, device) = await NewCustomerWithDeviceAsync(s);
        var session = await ClaimAndActivateAsync(s, customer, device, a, "10.64.0.2/32", "fd64:6400::2/128");
        var newHash = RandomNumberGenerator.GetBytes(32);

        var outcome = await s.Sessions.MoveAsync(session.Id, session.KeyHash, newHash, b.Id, "10.64.0.7/32", "fd64:6400::7/128",
            ["10.64.0.1", "fd64:6400::1"], T0.AddMinutes(1), Ct);

        Assert.Equal(MoveOutcome.Moved, outcome);
        var moved = await s.Sessions.GetActiveAsync(customer, Ct);
        Assert.NotNull(moved);
        Assert.Equal((session.Id, b.Id, "10.64.0.7/32", "fd64:6400::7/128"), (moved.Id, moved.NodeId, moved.AssignedAddress, moved.AssignedAddressV6));
        Assert.Equal(new[] { "10.64.0.1", "fd64:6400::1" }, moved.Dns);
        Assert.Null(await s.Sessions.FindActiveByKeyHashAsync(session.KeyHash, Ct));
        Assert.Equal(session.Id, (await s.Sessions.FindActiveByKeyHashAsync(newHash, Ct))?.Id);
        Assert.Empty(await s.Nodes.ListDesiredPeersAsync(a.Id, Ct));
        Assert.Equal("fd64:6400::7/128", Assert.Single(await s.Nodes.ListDesiredPeersAsync(b.Id, Ct)).AddressV6);
    }

    [Fact]
    public async Task MoveAsync_ToNodeWhoseCoreHasNoIpv6_ClearsIpv6()
    {
        await using var s = await CreateStoresAsync();
        var a = await NewNodeAsync(s, "node-a");
        var b = await NewNodeAsync(s, "node-b");
        var (customer, device) = await NewCustomerWithDeviceAsync(s);
        var session = await ClaimAndActivateAsync(s, customer, device, a, "10.64.0.2/32", "fd64:6400::2/128");

        Assert.Equal(MoveOutcome.Moved, await s.Sessions.MoveAsync(session.Id, session.KeyHash, RandomNumberGenerator.GetBytes(32), b.Id,
            "10.64.0.2/32", null, ["10.64.0.1"], T0.AddMinutes(1), Ct));

        var moved = await s.Sessions.GetActiveAsync(customer, Ct);
        Assert.Equal((b.Id, "10.64.0.2/32", (string?)null), (moved?.NodeId, moved?.AssignedAddress, moved?.AssignedAddressV6));
        Assert.Null(Assert.Single(await s.Nodes.ListDesiredPeersAsync(b.Id, Ct)).AddressV6);
    }

    [Fact]
    public async Task MoveAsync_Ipv6HeldOnTargetNode_AddressTakenAndSessionUnchanged()
    {
        await using var s = await CreateStoresAsync();
        var a = await NewNodeAsync(s, "node-a");
        var b = await NewNodeAsync(s, "node-b");
        var (customer, device) = await NewCustomerWithDeviceAsync(s);
        var (holder, holderDevice) = await NewCustomerWithDeviceAsync(s);
        var session = await ClaimAndActivateAsync(s, customer, device, a, "10.64.0.2/32", "fd64:6400::2/128");
        await ClaimAndActivateAsync(s, holder, holderDevice, b, "10.64.0.5/32", "fd64:6400::5/128");

        var outcome = await s.Sessions.MoveAsync(session.Id, session.KeyHash, RandomNumberGenerator.GetBytes(32), b.Id, "10.64.0.9/32", "fd64:6400::5/128",
            ["10.64.0.1"], T0.AddMinutes(1), Ct);

        Assert.Equal(MoveOutcome.AddressTaken, outcome);
        var unchanged = await s.Sessions.GetActiveAsync(customer, Ct);
        Assert.Equal((a.Id, "10.64.0.2/32", "fd64:6400::2/128"), (unchanged?.NodeId, unchanged?.AssignedAddress, unchanged?.AssignedAddressV6));
        Assert.Equal(session.Id, (await s.Sessions.FindActiveByKeyHashAsync(session.KeyHash, Ct))?.Id);
        Assert.Equal(1, await LoadAsync(s, b));
    }

    [Fact]
    public async Task AbandonAsync_ProvisioningClaim_FreesCustomerSlot()
    {
        await using var s = await CreateStoresAsync();
        var node = await NewNodeAsync(s, "node-a");
        var (customer, device) = await NewCustomerWithDeviceAsync(s);
        var abandoned = NewSession(customer, device, node);
        Assert.Equal(ClaimOutcome.Claimed, (await s.Sessions.ClaimAsync(abandoned, replaceExisting: false, Ct)).Outcome);

        await s.Sessions.AbandonAsync(abandoned.Id, T0.AddSeconds(1), Ct);

        Assert.Null(await s.Sessions.GetLiveIdAsync(customer, Ct));
        Assert.Equal(0, await LoadAsync(s, node));
        Assert.False(await s.Sessions.ActivateAsync(abandoned.Id, "10.64.0.2/32", null, [], T0.AddSeconds(2), Ct));
        var retry = NewSession(customer, device, node);
        Assert.Equal(ClaimOutcome.Claimed, (await s.Sessions.ClaimAsync(retry, replaceExisting: false, Ct)).Outcome);
        Assert.Equal(retry.Id, await s.Sessions.GetLiveIdAsync(customer, Ct));
    }

    [Fact]
    public async Task TerminateActiveAsync_ActiveSession_ReturnsItOnceThenNull()
    {
        await using var s = await CreateStoresAsync();
        var node = await NewNodeAsync(s, "node-a");
        var (customer, device) = await NewCustomerWithDeviceAsync(s);
        var session = await ClaimAndActivateAsync(s, customer, device, node, "10.64.0.2/32");

        var terminated = await s.Sessions.TerminateActiveAsync(customer, "customer_request", T0.AddMinutes(1), Ct);
        var again = await s.Sessions.TerminateActiveAsync(customer, "customer_request", T0.AddMinutes(2), Ct);

        Assert.NotNull(terminated);
        Assert.Equal((session.Id, customer, node.Id, device.PublicKey, "10.64.0.2/32"),
            (terminated.Id, terminated.CustomerId, terminated.NodeId, terminated.DevicePublicKey, terminated.AssignedAddress));
        Assert.Null(again);
        Assert.Null(await s.Sessions.GetActiveAsync(customer, Ct));
        Assert.Null(await s.Sessions.GetLiveIdAsync(customer, Ct));
        Assert.Equal(0, await LoadAsync(s, node));
        Assert.Equal(ClaimOutcome.Claimed, (await s.Sessions.ClaimAsync(NewSession(customer, device, node), replaceExisting: false, Ct)).Outcome);
    }

    [Fact]
    public async Task TerminateActiveAsync_OnlyProvisioning_ReturnsNullAndKeepsClaim()
    {
        await using var s = await CreateStoresAsync();
        var node = await NewNodeAsync(s, "node-a");
        var (customer, device) = await NewCustomerWithDeviceAsync(s);
        var session = NewSession(customer, device, node);
        Assert.Equal(ClaimOutcome.Claimed, (await s.Sessions.ClaimAsync(session, replaceExisting: false, Ct)).Outcome);

        Assert.Null(await s.Sessions.TerminateActiveAsync(customer, "customer_request", T0.AddMinutes(1), Ct));

        Assert.Equal(session.Id, await s.Sessions.GetLiveIdAsync(customer, Ct));
    }

    // ---- Helpers -----------------------------------------------------------------------------------------------

    private static readonly Plan Basic = new("basic", "Basic", 5, ["eu-west"]);

    private static string NewKey() => WireGuardKey.Generate().ToBase64();

    private static void AssertPlan(Plan expected, Plan actual)
    {
        Assert.Equal((expected.Code, expected.Name, expected.MaxDevices), (actual.Code, actual.Name, actual.MaxDevices));
        Assert.Equal(expected.AllowedRegions, actual.AllowedRegions);
    }

    /// <summary>A customer with an open subscription (which also creates the customer row the foreign keys need).</summary>
    private static async Task<Guid> NewCustomerAsync(StoreSet s)
    {
        await s.Plans.UpsertPlanAsync(Basic, Ct);
        var customer = Guid.NewGuid();
        Assert.NotNull(await s.Plans.SetSubscriptionAsync(customer, Basic.Code, "active", T0, Ct));
        return customer;
    }

    private static Device NewDevice(Guid customer, string name, DateTimeOffset createdAt) =>
        new(Guid.NewGuid(), customer, name, WireGuardKey.Generate(), createdAt);

    private static async Task<Device> NewDeviceAsync(StoreSet s, Guid customer, int maxDevices = 5)
    {
        var device = NewDevice(customer, "device", T0);
        var result = await s.Devices.CreateAsync(device, maxDevices, Ct);
        Assert.Equal(DeviceCreateOutcome.Created, result.Outcome);
        return device;
    }

    private static async Task<(Guid Customer, Device Device)> NewCustomerWithDeviceAsync(StoreSet s)
    {
        var customer = await NewCustomerAsync(s);
        return (customer, await NewDeviceAsync(s, customer));
    }

    private static NodeRegistration Registration(string name, int capacity = 100, string region = "eu-west") =>
        new(name, region, "DE", "fra", "default", "203.0.113.7:51820", NewKey(), "core.test:50051", capacity);

    private static async Task<Node> NewNodeAsync(StoreSet s, string name, int capacity = 100)
    {
        var (node, created) = await s.Nodes.UpsertAsync(Registration(name, capacity), T0, Ct);
        Assert.True(created);
        return node;
    }

    private static NewSession NewSession(Guid customer, Device device, Node node) =>
        new(Guid.CreateVersion7(), customer, device.Id, device.PublicKey, node.Id, RandomNumberGenerator.GetBytes(32),
            "eu-west", "DE", "fra", "default", T0);

    [Fact]
    public async Task ClaimAsync_ReplaceExisting_ReplacesActiveButNotAStartInProgress()
    {
        await using var s = await CreateStoresAsync();
        var node = await NewNodeAsync(s, "node-a");
        var (customer, device) = await NewCustomerWithDeviceAsync(s);
        var active = await ClaimAndActivateAsync(s, customer, device, node, "10.64.0.2/32");
        var activeSeq = (await s.Sessions.GetActiveAsync(customer, Ct))!.ClaimSeq;

        var replacing = NewSession(customer, device, node);
        var replaced = await s.Sessions.ClaimAsync(replacing, replaceExisting: true, Ct);
        Assert.Equal((ClaimOutcome.Claimed, active.Id), (replaced.Outcome, replaced.Replaced?.Id));
        Assert.True(replaced.ClaimSeq > activeSeq, $"the later claim has the higher number: {replaced.ClaimSeq} after {activeSeq}");

        // The replacing start is still provisioning: a second replace meets it instead of undoing it.
        var second = await s.Sessions.ClaimAsync(NewSession(customer, device, node), replaceExisting: true, Ct);
        Assert.Equal(new ClaimResult(ClaimOutcome.Conflict, replacing.Id), second);
        Assert.Equal(replacing.Id, await s.Sessions.GetLiveIdAsync(customer, Ct));
    }

    private static async Task<NewSession> ClaimAndActivateAsync(StoreSet s, Guid customer, Device device, Node node, string address,
        string? addressV6 = null)
    {
        var session = NewSession(customer, device, node);
        Assert.Equal(ClaimOutcome.Claimed, (await s.Sessions.ClaimAsync(session, replaceExisting: false, Ct)).Outcome);
        Assert.True(await s.Sessions.ActivateAsync(session.Id, address, addressV6, ["10.64.0.1"], T0.AddSeconds(1), Ct));
        return session;
    }

    private static async Task<int> LoadAsync(StoreSet s, Node node) =>
        (await s.Nodes.ListWithLoadAsync(Ct)).Single(l => l.Node.Id == node.Id).LiveSessions;
}
