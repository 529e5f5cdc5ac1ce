namespace Vpn.Entry.Tests.Data;

/// <summary>The store contract: claiming, replacing, abandoning and terminating sessions.</summary>
public abstract partial class StoreContractTests
{
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
}
