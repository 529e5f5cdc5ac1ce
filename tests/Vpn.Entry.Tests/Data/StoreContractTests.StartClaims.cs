using Vpn.Domain.Subscriptions;
using Vpn.Entry.Devices;

namespace Vpn.Entry.Tests.Data;

/// <summary>
/// The store contract of a session start's one-round-trip claim (ClaimStartAsync): the start's checks in their order
/// (entitlement, device, node, health, capacity, the customer's slot) and ClaimAsync's semantics kept (claim_seq,
/// replace_existing, the live count).
/// </summary>
public abstract partial class StoreContractTests
{
    private static readonly TimeSpan Freshness = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task ClaimStartAsync_HealthyNode_ClaimedWithDeviceKeyAndCounted()
    {
        await using var s = await CreateStoresAsync();
        var node = await NewHealthyNodeAsync(s, "node-a");
        var (customer, device) = await NewCustomerWithDeviceAsync(s);

        var claim = StartClaimOf(customer, device, node);
        var result = await s.Sessions.ClaimStartAsync(claim, Ct);

        Assert.Equal(ClaimOutcome.Claimed, result.Outcome);
        Assert.Equal(device.PublicKey, result.DevicePublicKey);
        Assert.True(result.Claim.ClaimSeq > 0);
        Assert.Equal(1, result.NodeLive);
        Assert.Equal(claim.Id, await s.Sessions.GetLiveIdAsync(customer, Ct));
        Assert.Equal(1, await LoadAsync(s, node));
        Assert.True(await s.Sessions.ActivateAsync(claim.Id, "10.64.0.2/32", null, ["10.64.0.1"], T0.AddSeconds(1), Ct));
        Assert.Equal(1, await LoadAsync(s, node));
        Assert.NotNull(await s.Sessions.TerminateActiveAsync(customer, "customer_request", T0.AddMinutes(1), Ct));
        Assert.Equal(0, await LoadAsync(s, node));
    }

    [Fact]
    public async Task ClaimStartAsync_NodeAtCapacity_NodeFullAndNothingLive()
    {
        await using var s = await CreateStoresAsync();
        var node = await NewHealthyNodeAsync(s, "node-a", capacity: 1);
        var (first, firstDevice) = await NewCustomerWithDeviceAsync(s);
        var (second, secondDevice) = await NewCustomerWithDeviceAsync(s);
        Assert.Equal(ClaimOutcome.Claimed, (await s.Sessions.ClaimStartAsync(StartClaimOf(first, firstDevice, node), Ct)).Outcome);

        var full = await s.Sessions.ClaimStartAsync(StartClaimOf(second, secondDevice, node), Ct);

        Assert.Equal((ClaimOutcome.NodeFull, 1), (full.Outcome, full.NodeLive));
        Assert.Null(await s.Sessions.GetLiveIdAsync(second, Ct));
        Assert.Equal(1, await LoadAsync(s, node));
    }

    [Fact]
    public async Task ClaimStartAsync_TwentyCustomersConcurrentlyOnCapacityFive_ExactlyFiveClaimed()
    {
        await using var s = await CreateStoresAsync();
        var node = await NewHealthyNodeAsync(s, "node-a", capacity: 5);
        var claims = new List<StartClaim>();
        for (var i = 0; i < 20; i++)
        {
            var (customer, device) = await NewCustomerWithDeviceAsync(s);
            claims.Add(StartClaimOf(customer, device, node));
        }

        var results = await Task.WhenAll(claims.Select(c => Task.Run(() => s.Sessions.ClaimStartAsync(c, Ct))));

        Assert.Equal(5, results.Count(r => r.Outcome == ClaimOutcome.Claimed));
        Assert.Equal(15, results.Count(r => r.Outcome == ClaimOutcome.NodeFull));
        Assert.Equal(5, await LoadAsync(s, node));
    }

    [Fact]
    public async Task ClaimStartAsync_CustomerAlreadyActive_ConflictNamingItUnlessReplacing()
    {
        await using var s = await CreateStoresAsync();
        var node = await NewHealthyNodeAsync(s, "node-a");
        var (customer, device) = await NewCustomerWithDeviceAsync(s);
        var active = await ClaimAndActivateAsync(s, customer, device, node, "10.64.0.2/32");
        var activeSeq = (await s.Sessions.GetActiveAsync(customer, Ct))!.ClaimSeq;

        var conflict = await s.Sessions.ClaimStartAsync(StartClaimOf(customer, device, node), Ct);
        Assert.Equal((ClaimOutcome.Conflict, active.Id), (conflict.Outcome, conflict.Claim.ActiveSessionId));

        var replacing = StartClaimOf(customer, device, node, replace: true);
        var replaced = await s.Sessions.ClaimStartAsync(replacing, Ct);
        Assert.Equal((ClaimOutcome.Claimed, active.Id), (replaced.Outcome, replaced.Claim.Replaced?.Id));
        Assert.True(replaced.Claim.ClaimSeq > activeSeq, $"the later claim has the higher number: {replaced.Claim.ClaimSeq} after {activeSeq}");
        Assert.Equal(1, await LoadAsync(s, node));

        // The replacing start is still provisioning: a second replace meets it instead of undoing it.
        var second = await s.Sessions.ClaimStartAsync(StartClaimOf(customer, device, node, replace: true), Ct);
        Assert.Equal((ClaimOutcome.Conflict, replacing.Id), (second.Outcome, second.Claim.ActiveSessionId));
        Assert.Equal(replacing.Id, await s.Sessions.GetLiveIdAsync(customer, Ct));
    }

    [Fact]
    public async Task ClaimStartAsync_ReplaceAcrossNodes_BothNodesCountedRight()
    {
        await using var s = await CreateStoresAsync();
        var a = await NewHealthyNodeAsync(s, "node-a");
        var b = await NewHealthyNodeAsync(s, "node-b");
        var (customer, device) = await NewCustomerWithDeviceAsync(s);
        var active = await ClaimAndActivateAsync(s, customer, device, a, "10.64.0.2/32");

        var replaced = await s.Sessions.ClaimStartAsync(StartClaimOf(customer, device, b, replace: true), Ct);

        Assert.Equal((ClaimOutcome.Claimed, active.Id, a.Id), (replaced.Outcome, replaced.Claim.Replaced?.Id, replaced.Claim.Replaced?.NodeId));
        Assert.Equal((0, 1), (await LoadAsync(s, a), await LoadAsync(s, b)));
    }

    [Fact]
    public async Task ClaimStartAsync_NotEntitled_AnswersTheSubscriptionAndClaimsNothing()
    {
        await using var s = await CreateStoresAsync();
        var node = await NewHealthyNodeAsync(s, "node-a");
        var (customer, device) = await NewCustomerWithDeviceAsync(s);

        var wrongRegion = await s.Sessions.ClaimStartAsync(StartClaimOf(customer, device, node) with { Region = "us-east" }, Ct);
        Assert.Equal(ClaimOutcome.NotEntitled, wrongRegion.Outcome);
        Assert.Equal(EntitlementDenial.RegionNotAllowed, Entitlements.Check(wrongRegion.Entitlement, "us-east").Denial);

        Assert.NotNull(await s.Plans.SetSubscriptionAsync(customer, Basic.Code, "canceled", T0.AddSeconds(1), Ct));
        var canceled = await s.Sessions.ClaimStartAsync(StartClaimOf(customer, device, node), Ct);
        Assert.Equal((ClaimOutcome.NotEntitled, "canceled"), (canceled.Outcome, canceled.Entitlement?.Status));

        var stranger = Guid.NewGuid();
        var none = await s.Sessions.ClaimStartAsync(StartClaimOf(stranger, device, node), Ct);
        Assert.Equal((ClaimOutcome.NotEntitled, null), (none.Outcome, none.Entitlement));
        Assert.Null(await s.Sessions.GetLiveIdAsync(customer, Ct));
        Assert.Equal(0, await LoadAsync(s, node));
    }

    [Fact]
    public async Task ClaimStartAsync_AnotherCustomersDevice_DeviceGone()
    {
        await using var s = await CreateStoresAsync();
        var node = await NewHealthyNodeAsync(s, "node-a");
        var (customer, _) = await NewCustomerWithDeviceAsync(s);
        var (_, othersDevice) = await NewCustomerWithDeviceAsync(s);

        var result = await s.Sessions.ClaimStartAsync(StartClaimOf(customer, othersDevice, node), Ct);

        Assert.Equal(ClaimOutcome.DeviceGone, result.Outcome);
        Assert.Null(await s.Sessions.GetLiveIdAsync(customer, Ct));
    }

    [Fact]
    public async Task ClaimStartAsync_PlanLoweredBelowTheDeviceCount_StillClaims()
    {
        // The device limit binds registering devices, not starting sessions on the ones already registered.
        await using var s = await CreateStoresAsync();
        var node = await NewHealthyNodeAsync(s, "node-a");
        var (customer, device) = await NewCustomerWithDeviceAsync(s);
        await NewDeviceAsync(s, customer);
        await s.Plans.UpsertPlanAsync(Basic with { MaxDevices = 1 }, Ct);

        Assert.Equal(ClaimOutcome.Claimed, (await s.Sessions.ClaimStartAsync(StartClaimOf(customer, device, node), Ct)).Outcome);
    }

    [Fact]
    public async Task ClaimStartAsync_UnknownUnhealthyOrStaleNode_NothingClaimed()
    {
        await using var s = await CreateStoresAsync();
        var (customer, device) = await NewCustomerWithDeviceAsync(s);
        var neverBeat = await NewNodeAsync(s, "node-never");
        var unhealthy = await NewNodeAsync(s, "node-sick");
        Assert.True(await s.Nodes.RecordHeartbeatAsync(unhealthy.Id, healthy: false, 0, T0, Ct));
        var stale = await NewNodeAsync(s, "node-stale");
        Assert.True(await s.Nodes.RecordHeartbeatAsync(stale.Id, healthy: true, 0, T0 - Freshness - TimeSpan.FromSeconds(1), Ct));
        var gone = neverBeat with { Id = Guid.NewGuid() };

        Assert.Equal(ClaimOutcome.NodeGone, (await s.Sessions.ClaimStartAsync(StartClaimOf(customer, device, gone), Ct)).Outcome);
        foreach (var node in new[] { neverBeat, unhealthy, stale })
        {
            Assert.Equal(ClaimOutcome.NodeUnfit, (await s.Sessions.ClaimStartAsync(StartClaimOf(customer, device, node), Ct)).Outcome);
        }
        Assert.Null(await s.Sessions.GetLiveIdAsync(customer, Ct));
    }

    private static StartClaim StartClaimOf(Guid customer, Device device, Node node, bool replace = false) =>
        new(Guid.CreateVersion7(), customer, device.Id, node.Id, RandomNumberGenerator.GetBytes(32), "eu-west", "DE", "fra", "default", T0, replace,
            T0 - Freshness);

    private static async Task<Node> NewHealthyNodeAsync(StoreSet s, string name, int capacity = 100)
    {
        var node = await NewNodeAsync(s, name, capacity);
        Assert.True(await s.Nodes.RecordHeartbeatAsync(node.Id, healthy: true, 0, T0, Ct));
        return node;
    }
}
