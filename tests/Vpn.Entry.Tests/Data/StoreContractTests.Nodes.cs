namespace Vpn.Entry.Tests.Data;

/// <summary>The store contract: node registration, heartbeats and load.</summary>
public abstract partial class StoreContractTests
{
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
}
