using static Vpn.Core.Tests.Reconciliation.ReconcileRig;

namespace Vpn.Core.Tests.Reconciliation;

/// <summary>Local knowledge against an older desired set: fresh Connects and Disconnects outrank it for the grace period, no longer.</summary>
public class ReconcilerGraceTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task RunPass_EntryUnreachableLongerThanGrace_KeepsFreshConnects()
    {
        using var rig = await SyncedAsync();
        var (_, key, lease) = await rig.ConnectNewAsync();
        rig.Desired.Fail();
        rig.Clock.Advance(Grace * 3);

        await rig.PassAsync();

        Assert.Equal(Expected((key, lease.Address.ToString())), await rig.DeviceAsync());
    }

    [Fact]
    public async Task RunPass_FreshConnectNotYetInDesiredSet_KeptForGraceThenRemovedAndAddressQuarantined()
    {
        using var rig = await SyncedAsync();
        var (session, key, lease) = await rig.ConnectNewAsync();

        rig.Clock.Advance(Grace - TimeSpan.FromSeconds(1));
        await rig.PassAsync();
        Assert.Equal(Expected((key, "10.64.0.2")), await rig.DeviceAsync());

        rig.Clock.Advance(TimeSpan.FromSeconds(1));
        var outcome = await rig.PassAsync();

        Assert.Equal(1, outcome.Removed);
        Assert.Empty(await rig.DeviceAsync());
        Assert.Null(rig.Registry.Find(session));
        Assert.Contains(rig.Log.Entries, e => e.Id.Id == 603 && e.Message.Contains(session.ToString(), StringComparison.Ordinal));
        var (_, _, next) = await rig.ConnectNewAsync();
        Assert.NotEqual(lease.Address, next.Address);
    }

    [Fact]
    public async Task RunPass_SessionStillProvisioning_KeptForGraceThenDropped()
    {
        using var rig = await SyncedAsync();
        var (session, key, _) = await rig.ConnectNewAsync();
        rig.Desired.Set(Provisioning(key, session));

        await rig.PassAsync();
        Assert.Equal(Expected((key, "10.64.0.2")), await rig.DeviceAsync());

        rig.Clock.Advance(Grace);
        await rig.PassAsync();
        Assert.Empty(await rig.DeviceAsync());
    }

    [Fact]
    public async Task RunPass_CoreRestartedBeforeEntryCommitted_KeepsTheProvisioningPeerAndItsAddress()
    {
        using var rig = new ReconcileRig();
        var key = Key();
        var session = Guid.NewGuid();
        // What the previous core process left on the device: a Connect entry has not committed yet.
        await rig.ByHandAsync(Peer(key, "10.64.0.2/32"));
        rig.Desired.Set(Provisioning(key, session));

        await rig.PassAsync();

        Assert.Equal(Expected((key, "10.64.0.2")), await rig.DeviceAsync());
        Assert.Equal("10.64.0.3", (await rig.Registry.ConnectAsync(Guid.NewGuid(), Key(), 0, Token)).Lease!.Address.ToString());
        Assert.Equal("10.64.0.2", rig.Registry.Find(session)!.Address.ToString());

        rig.Clock.Advance(Grace);
        rig.Desired.Set(Active(key, "10.64.0.2", session));
        var outcome = await rig.PassAsync();
        Assert.Equal((0, 0), (outcome.Added, outcome.Corrected));
        Assert.Equal(Expected((key, "10.64.0.2")), await rig.DeviceAsync());
    }

    [Fact]
    public async Task RunPass_ConnectConfirmedActive_SurvivesGraceAndGoesWhenTheSessionEnds()
    {
        using var rig = await SyncedAsync();
        var (session, key, lease) = await rig.ConnectNewAsync();
        rig.Desired.Set(Active(key, $"{lease.Address}", session));
        await rig.PassAsync();

        rig.Clock.Advance(Grace * 2);
        var kept = await rig.PassAsync();
        Assert.Equal(Expected((key, lease.Address.ToString())), await rig.DeviceAsync());
        Assert.Equal(0, kept.Removed);

        rig.Desired.Set();
        await rig.PassAsync();
        Assert.Empty(await rig.DeviceAsync());
    }

    [Fact]
    public async Task RunPass_StaleSnapshotListsJustDisconnectedSession_NotReaddedUntilGraceEnds()
    {
        using var rig = new ReconcileRig();
        var key = Key();
        var session = Guid.NewGuid();
        rig.Desired.Set(Active(key, "10.64.0.7", session));
        await rig.PassAsync();

        Assert.NotNull(await rig.Registry.DisconnectAsync(session, Token));
        await rig.PassAsync();
        Assert.Empty(await rig.DeviceAsync());

        // Entry never committed the end of the session: the database is the truth once local knowledge is old.
        rig.Clock.Advance(Grace);
        await rig.PassAsync();
        Assert.Equal(Expected((key, "10.64.0.7")), await rig.DeviceAsync());
    }

    [Fact]
    public async Task RunPass_ReplaceExistingOnSameDevice_KeepsTheNewSession()
    {
        // Entry's replace_existing: Disconnect(old) then Connect(new) with the same device key, committed afterwards.
        using var rig = new ReconcileRig();
        var key = Key();
        var old = Guid.NewGuid();
        rig.Desired.Set(Active(key, "10.64.0.2", old));
        await rig.PassAsync();
        await rig.Registry.DisconnectAsync(old, Token);
        var (outcome, lease) = await rig.Registry.ConnectAsync(Guid.NewGuid(), key, 0, Token);
        Assert.Equal(ConnectOutcome.Connected, outcome);

        await rig.PassAsync();

        Assert.Equal(Expected((key, lease!.Address.ToString())), await rig.DeviceAsync());
    }

    [Fact]
    public async Task RunPass_DatabaseAddressClashesWithFreshLease_DatabaseWins()
    {
        using var rig = await SyncedAsync();
        var (_, _, lease) = await rig.ConnectNewAsync();
        var owner = Key();
        rig.Desired.Set(Active(owner, lease.Address.ToString()));

        await rig.PassAsync();

        Assert.Equal(Expected((owner, lease.Address.ToString())), await rig.DeviceAsync());
        Assert.Equal(1, rig.Registry.Count);
    }
}
