using static Vpn.Core.Tests.Reconciliation.ReconcileRig;

namespace Vpn.Core.Tests.Control;

/// <summary>
/// Two sessions of one device key on one node (issue 11 item 2): the later claim takes the peer over, the earlier is
/// refused, and neither a late Disconnect of the loser nor a snapshot older than the takeover undoes the winner.
/// </summary>
public class PeerRegistryClaimOrderTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Connect_LaterClaimOfHeldKey_TakesPeerOverWithSameAddress()
    {
        using var rig = await Reconciliation.ReconcileRig.SyncedAsync();
        var key = Key();
        var (older, newer) = (Guid.NewGuid(), Guid.NewGuid());
        var (_, first) = await rig.Registry.ConnectAsync(older, key, 7, Token);

        var (outcome, second) = await rig.Registry.ConnectAsync(newer, key, 8, Token);

        Assert.Equal(ConnectOutcome.Connected, outcome);
        Assert.Equal(first!.Address, second!.Address);
        Assert.Equal(first.Address6, second.Address6);
        Assert.Null(rig.Registry.Find(older));
        Assert.Equal(newer, rig.Registry.Find(newer)?.SessionId);
        Assert.Equal(1, rig.Registry.Count);
        Assert.Equal(Expected((key, first.Address.ToString())), await rig.DeviceAsync());
    }

    [Theory]
    [InlineData(7UL)]
    [InlineData(6UL)]
    [InlineData(0UL)]
    public async Task Connect_EarlierOrUnknownClaimOfHeldKey_RefusedAndHolderKept(ulong claimSeq)
    {
        using var rig = await Reconciliation.ReconcileRig.SyncedAsync();
        var key = Key();
        var holder = Guid.NewGuid();
        var (_, held) = await rig.Registry.ConnectAsync(holder, key, 7, Token);

        var (outcome, lease) = await rig.Registry.ConnectAsync(Guid.NewGuid(), key, claimSeq, Token);

        Assert.Equal(ConnectOutcome.KeyInUse, outcome);
        Assert.Null(lease);
        Assert.Equal(held, rig.Registry.Find(holder));
        Assert.Equal(Expected((key, held!.Address.ToString())), await rig.DeviceAsync());
    }

    [Fact]
    public async Task Connect_RetriedForSameSession_IdempotentAfterTakeover()
    {
        using var rig = await Reconciliation.ReconcileRig.SyncedAsync();
        var key = Key();
        await rig.Registry.ConnectAsync(Guid.NewGuid(), key, 1, Token);
        var newer = Guid.NewGuid();
        var (_, taken) = await rig.Registry.ConnectAsync(newer, key, 2, Token);

        // A lost acknowledgement retried: the same answer, nothing refused.
        var (outcome, again) = await rig.Registry.ConnectAsync(newer, key, 2, Token);

        Assert.Equal(ConnectOutcome.Connected, outcome);
        Assert.Equal(taken, again);
    }

    [Fact]
    public async Task Disconnect_OfTakenOverSession_LeavesSuccessorsPeer()
    {
        using var rig = await Reconciliation.ReconcileRig.SyncedAsync();
        var key = Key();
        var (older, newer) = (Guid.NewGuid(), Guid.NewGuid());
        await rig.Registry.ConnectAsync(older, key, 1, Token);
        var (_, lease) = await rig.Registry.ConnectAsync(newer, key, 2, Token);

        Assert.Null(await rig.Registry.DisconnectAsync(older, Token));

        Assert.Equal(lease, rig.Registry.Find(newer));
        Assert.Equal(Expected((key, lease!.Address.ToString())), await rig.DeviceAsync());
    }

    [Fact]
    public async Task RunPass_SnapshotStillListingTakenOverSession_KeepsSuccessorUntilConfirmed()
    {
        using var rig = await Reconciliation.ReconcileRig.SyncedAsync();
        var key = Key();
        var older = Guid.NewGuid();
        var (_, first) = await rig.Registry.ConnectAsync(older, key, 1, Token);
        rig.Desired.Set(Active(key, first!.Address.ToString(), older) with { ClaimSeq = 1 });
        await rig.PassAsync();
        var newer = Guid.NewGuid();
        await rig.Registry.ConnectAsync(newer, key, 2, Token);

        // The snapshot predates the takeover: it still lists the older session as active.
        await rig.PassAsync();
        Assert.Equal(newer, rig.Registry.Find(newer)?.SessionId);
        Assert.Null(rig.Registry.Find(older));
        Assert.Equal(Expected((key, first.Address.ToString())), await rig.DeviceAsync());

        // Entry commits the newer session (same address): it is confirmed, the older stays gone.
        rig.Desired.Set(Active(key, first.Address.ToString(), newer) with { ClaimSeq = 2 });
        await rig.PassAsync();
        rig.Clock.Advance(Grace);
        await rig.PassAsync();
        Assert.Equal(newer, rig.Registry.Find(newer)?.SessionId);
        Assert.Equal(Expected((key, first.Address.ToString())), await rig.DeviceAsync());
    }

    [Fact]
    public async Task RunPass_AdoptedSessionCarriesItsClaimOrder()
    {
        using var rig = new Reconciliation.ReconcileRig();
        var key = Key();
        var adopted = Guid.NewGuid();
        rig.Desired.Set(Active(key, "10.64.0.5", adopted) with { ClaimSeq = 40 });
        await rig.PassAsync();

        Assert.Equal(ConnectOutcome.KeyInUse, (await rig.Registry.ConnectAsync(Guid.NewGuid(), key, 39, Token)).Outcome);
        Assert.Equal(ConnectOutcome.Connected, (await rig.Registry.ConnectAsync(Guid.NewGuid(), key, 41, Token)).Outcome);
        Assert.Null(rig.Registry.Find(adopted));
    }
}
