using Vpn.Domain.Sessions;

namespace Vpn.Entry.Tests.Data;

/// <summary>The store contract: draining, migrating and deleting nodes.</summary>
public abstract partial class StoreContractTests
{
    [Fact]
    public async Task SetDrain_DrainTwiceThenUndrain_KeepsDrainStartAndClearsIt()
    {
        await using var s = await CreateStoresAsync();
        var node = await NewNodeAsync(s, "node-a");

        var drained = await s.NodeDrains.SetDrainAsync(node.Id, draining: true, migrate: false, T0.AddMinutes(1), Ct);
        var again = await s.NodeDrains.SetDrainAsync(node.Id, draining: true, migrate: true, T0.AddMinutes(2), Ct);
        var (reRegistered, _) = await s.Nodes.UpsertAsync(Registration("node-a", capacity: 50), T0.AddMinutes(3), Ct);
        var undrained = await s.NodeDrains.SetDrainAsync(node.Id, draining: false, migrate: true, T0.AddMinutes(4), Ct);

        Assert.NotNull(drained);
        Assert.Equal((true, false, (DateTimeOffset?)T0.AddMinutes(1)), (drained.Draining, drained.DrainMigrate, drained.DrainingSince));
        Assert.NotNull(again);
        Assert.Equal((true, true, (DateTimeOffset?)T0.AddMinutes(1)), (again.Draining, again.DrainMigrate, again.DrainingSince));
        // Re-registration (same name) keeps the drain.
        Assert.Equal((true, true, (DateTimeOffset?)T0.AddMinutes(1)), (reRegistered.Draining, reRegistered.DrainMigrate, reRegistered.DrainingSince));
        Assert.NotNull(undrained);
        Assert.Equal((false, false, (DateTimeOffset?)null), (undrained.Draining, undrained.DrainMigrate, undrained.DrainingSince));
        Assert.Equal(undrained, await s.Nodes.GetAsync(node.Id, Ct));
        Assert.Null(await s.NodeDrains.SetDrainAsync(Guid.NewGuid(), draining: true, migrate: false, T0, Ct));
    }

    [Fact]
    public async Task ListWithLoad_DrainingNode_CarriesTheDrain()
    {
        await using var s = await CreateStoresAsync();
        var a = await NewNodeAsync(s, "node-a");
        await NewNodeAsync(s, "node-b");

        await s.NodeDrains.SetDrainAsync(a.Id, draining: true, migrate: true, T0, Ct);

        Assert.Equal(new[] { ("node-a", true, true), ("node-b", false, false) },
            (await s.Nodes.ListWithLoadAsync(Ct)).Select(l => (l.Node.Name, l.Node.Draining, l.Node.DrainMigrate)));
    }

    [Fact]
    public async Task DeleteNode_EachState_RefusedUntilDrainingAndEmpty()
    {
        await using var s = await CreateStoresAsync();
        var node = await NewNodeAsync(s, "node-a");
        var other = await NewNodeAsync(s, "node-b");
        var (provisioning, provisioningDevice) = await NewCustomerWithDeviceAsync(s);
        var (ended, endedDevice) = await NewCustomerWithDeviceAsync(s);
        await ClaimAndActivateAsync(s, ended, endedDevice, node, "10.64.0.2/32");
        Assert.NotNull(await s.Sessions.TerminateActiveAsync(ended, "test", T0.AddMinutes(1), Ct));
        var claim = NewSession(provisioning, provisioningDevice, node);
        Assert.Equal(ClaimOutcome.Claimed, (await s.Sessions.ClaimAsync(claim, replaceExisting: false, Ct)).Outcome);

        Assert.Equal(NodeDeleteOutcome.NotFound, await s.NodeDrains.DeleteAsync(Guid.NewGuid(), Ct));
        Assert.Equal(NodeDeleteOutcome.NotDraining, await s.NodeDrains.DeleteAsync(node.Id, Ct));
        await s.NodeDrains.SetDrainAsync(node.Id, draining: true, migrate: false, T0, Ct);
        // A provisioning session counts as live.
        Assert.Equal(NodeDeleteOutcome.NotEmpty, await s.NodeDrains.DeleteAsync(node.Id, Ct));
        await s.Sessions.AbandonAsync(claim.Id, T0.AddMinutes(2), Ct);

        // Only history is left (a terminated and a failed session): deleted with it.
        Assert.Equal(NodeDeleteOutcome.Deleted, await s.NodeDrains.DeleteAsync(node.Id, Ct));
        Assert.Null(await s.Nodes.GetAsync(node.Id, Ct));
        Assert.Equal(new[] { other.Id }, (await s.Nodes.ListAsync(Ct)).Select(n => n.Id));
        Assert.Equal(NodeDeleteOutcome.NotFound, await s.NodeDrains.DeleteAsync(node.Id, Ct));
        // A claim on the deleted node finds it gone.
        var late = NewSession(provisioning, provisioningDevice, node);
        Assert.Equal(ClaimOutcome.NodeGone, (await s.Sessions.ClaimAsync(late, replaceExisting: false, Ct)).Outcome);
    }

    [Fact]
    public async Task ListActiveSessions_MixedStates_ActiveOnlyOldestClaimFirstUpToLimit()
    {
        await using var s = await CreateStoresAsync();
        var node = await NewNodeAsync(s, "node-a");
        var other = await NewNodeAsync(s, "node-b");
        var active = new List<NewSession>();
        for (var i = 0; i < 3; i++)
        {
            var (customer, device) = await NewCustomerWithDeviceAsync(s);
            active.Add(await ClaimAndActivateAsync(s, customer, device, node, $"10.64.0.{i + 2}/32"));
        }
        var (pending, pendingDevice) = await NewCustomerWithDeviceAsync(s);
        await s.Sessions.ClaimAsync(NewSession(pending, pendingDevice, node), replaceExisting: false, Ct);
        var (elsewhere, elsewhereDevice) = await NewCustomerWithDeviceAsync(s);
        await ClaimAndActivateAsync(s, elsewhere, elsewhereDevice, other, "10.64.0.2/32");

        var two = await s.NodeDrains.ListActiveSessionsAsync(node.Id, 2, Ct);
        var all = await s.NodeDrains.ListActiveSessionsAsync(node.Id, 100, Ct);

        Assert.Equal(active.Take(2).Select(a => a.Id), two.Select(r => r.Id));
        Assert.Equal(active.Select(a => a.Id), all.Select(r => r.Id));
        Assert.All(all, r => Assert.Equal((SessionState.Active, node.Id), (r.State, r.NodeId)));
        Assert.Equal(active[0].KeyHash, all[0].KeyHash);
    }

    [Fact]
    public async Task MigrateSession_Moves_KeepsKeyAndRefusesStaleFullOrTakenTargets()
    {
        await using var s = await CreateStoresAsync();
        var from = await NewNodeAsync(s, "node-a");
        var to = await NewNodeAsync(s, "node-b", capacity: 3);
        var full = await NewNodeAsync(s, "node-c", capacity: 1);
        var (customer, device) = await NewCustomerWithDeviceAsync(s);
        var session = await ClaimAndActivateAsync(s, customer, device, from, "10.64.0.2/32", "fd64:6400::2/128");
        var (holder, holderDevice) = await NewCustomerWithDeviceAsync(s);
        await ClaimAndActivateAsync(s, holder, holderDevice, to, "10.64.0.9/32");
        var (filler, fillerDevice) = await NewCustomerWithDeviceAsync(s);
        await ClaimAndActivateAsync(s, filler, fillerDevice, full, "10.64.0.2/32");

        Assert.Equal(MoveOutcome.NodeFull, await s.NodeDrains.MigrateSessionAsync(session.Id, from.Id, full.Id, "10.64.0.3/32", null, [], T0, Ct));
        Assert.Equal(MoveOutcome.NodeFull, await s.NodeDrains.MigrateSessionAsync(session.Id, from.Id, Guid.NewGuid(), "10.64.0.3/32", null, [], T0, Ct));
        Assert.Equal(MoveOutcome.AddressTaken, await s.NodeDrains.MigrateSessionAsync(session.Id, from.Id, to.Id, "10.64.0.9/32", null, [], T0, Ct));
        // Read as on another node (moved meanwhile): refused.
        Assert.Equal(MoveOutcome.KeyChanged, await s.NodeDrains.MigrateSessionAsync(session.Id, full.Id, to.Id, "10.64.0.3/32", null, [], T0, Ct));
        Assert.Equal(MoveOutcome.Moved,
            await s.NodeDrains.MigrateSessionAsync(session.Id, from.Id, to.Id, "10.64.0.3/32", "fd64:6400::3/128", ["10.64.0.1"], T0.AddMinutes(1), Ct));
        // Done once: a second migrator's move of the same session finds it gone from the draining node.
        Assert.Equal(MoveOutcome.KeyChanged, await s.NodeDrains.MigrateSessionAsync(session.Id, from.Id, to.Id, "10.64.0.4/32", null, [], T0, Ct));

        var moved = await s.Sessions.GetActiveAsync(customer, Ct);
        Assert.NotNull(moved);
        Assert.Equal((to.Id, "10.64.0.3/32", "fd64:6400::3/128"), (moved.NodeId, moved.AssignedAddress, moved.AssignedAddressV6));
        Assert.Equal(["10.64.0.1"], moved.Dns);
        // The key is unchanged: the client's next reconnect finds the session by it.
        Assert.Equal(session.KeyHash, moved.KeyHash);
        Assert.Equal(moved.Id, (await s.Sessions.FindActiveByKeyHashAsync(session.KeyHash, Ct))?.Id);
        Assert.Equal(0, await LoadAsync(s, from));
        Assert.Equal(2, await LoadAsync(s, to));
    }
}
