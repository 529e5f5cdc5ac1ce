using static Vpn.Core.Tests.Reconciliation.ReconcileRig;

namespace Vpn.Core.Tests.Reconciliation;

/// <summary>The device under reconciliation: recreated, changed while it is read, refusing or failing writes.</summary>
public class ReconcilerDeviceTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task RunPass_DeviceRecreated_ReinitializesAndRestoresEveryPeer()
    {
        using var rig = new ReconcileRig();
        var (a, b) = (Key(), Key());
        rig.Desired.Set(Active(a, "10.64.0.2"), Active(b, "10.64.0.3"));
        await rig.PassAsync();

        rig.Noop.Reset();
        var outcome = await rig.PassAsync();

        Assert.Equal((true, 2), (outcome.Succeeded, outcome.Added));
        Assert.False((await rig.Noop.ReadAsync(Token)).NeedsInitialization);
        Assert.Equal(Expected((a, "10.64.0.2"), (b, "10.64.0.3")), await rig.DeviceAsync());
        Assert.Equal(1, rig.Metrics.Snapshot().DeviceReinitializations);
    }

    [Fact]
    public async Task RunPass_DeviceRecreatedWhileEntryDown_RestoresLastKnownGood()
    {
        using var rig = new ReconcileRig();
        var a = Key();
        rig.Desired.Set(Active(a, "10.64.0.2"));
        await rig.PassAsync();
        rig.Desired.Fail();

        rig.Noop.Reset();
        await rig.PassAsync();

        Assert.Equal(Expected((a, "10.64.0.2")), await rig.DeviceAsync());
    }

    [Fact]
    public async Task RunPass_ConnectAndDisconnectWhileDeviceIsRead_LeftToTheirOwnChange()
    {
        var hooked = new HookedDataplane(new NoopDataplane());
        using var rig = new ReconcileRig(hooked);
        var leaving = Guid.NewGuid();
        var leavingKey = Key();
        rig.Desired.Set(Active(leavingKey, "10.64.0.2", leaving));
        await rig.PassAsync();
        var joiningKey = Key();
        hooked.AfterRead = async () =>
        {
            hooked.AfterRead = null;
            await rig.Registry.DisconnectAsync(leaving, Token);
            await rig.Registry.ConnectAsync(Guid.NewGuid(), joiningKey, 0, Token);
        };

        // The snapshot predates both changes: it still lists the leaving session and not the joining one.
        var outcome = await rig.PassAsync();

        Assert.Equal((0, 0, 0), (outcome.Added, outcome.Removed, outcome.Corrected));
        Assert.Equal(Expected((joiningKey, "10.64.0.3")), await rig.DeviceAsync());
    }

    [Fact]
    public async Task RunPass_DeviceWriteFailsOnce_RereadsAndRetries()
    {
        var hooked = new HookedDataplane(new NoopDataplane());
        using var rig = new ReconcileRig(hooked);
        var failures = 0;
        hooked.BeforeApply = changes => changes.Count > 0 && failures++ == 0 ? new UapiException(-22) : null;
        var key = Key();
        rig.Desired.Set(Active(key, "10.64.0.2"));

        var outcome = await rig.PassAsync();

        Assert.True(outcome.Succeeded);
        Assert.Equal(Expected((key, "10.64.0.2")), await rig.DeviceAsync());
        Assert.Contains(rig.Log.Entries, e => e.Id.Id == 611 && e.Message.Contains("errno=-22", StringComparison.Ordinal));
    }

    [Fact]
    public async Task RunPass_DeviceUnreachable_FailsWithoutTouchingLeases()
    {
        var hooked = new HookedDataplane(new NoopDataplane());
        using var rig = new ReconcileRig(hooked);
        var key = Key();
        rig.Desired.Set(Active(key, "10.64.0.2"));
        await rig.PassAsync();
        hooked.BeforeRead = () => new UapiUnavailableException("socket gone (test)", null);

        var outcome = await rig.PassAsync();

        Assert.Equal("device_error", outcome.FailureReason);
        Assert.Equal(1, rig.Registry.Count);
        Assert.Equal(1, rig.Metrics.Snapshot().Failures);
    }

    [Fact]
    public async Task ConnectAsync_DeviceWriteFails_ForgetsTheLeaseAndRequestsAPass()
    {
        using var signal = new ReconcileSignal();
        var options = new Vpn.Core.Configuration.CoreOptions { ClientPool = Domain.Addressing.Ipv4Network.Parse("10.64.0.0/24") };
        // Every Connect write fails as a refused UAPI set would.
        var dataplane = new HookedDataplane(new NoopDataplane()) { BeforeAdd = () => new UapiException(-22) };
        var registry = new PeerRegistry(options, dataplane, new ManualClock(), signal);

        await Assert.ThrowsAsync<UapiException>(() => registry.ConnectAsync(Guid.NewGuid(), Key(), 0, Token));

        Assert.True(await signal.WaitAsync(TimeSpan.Zero, Token));
        Assert.Equal(0, registry.Count);
    }
}
