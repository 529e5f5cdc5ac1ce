using Vpn.Core.Health;
using static Vpn.Core.Tests.Reconciliation.ReconcileRig;

namespace Vpn.Core.Tests.Health;

/// <summary>The one health reading behind the heartbeat and GetNodeStatus.</summary>
public class NodeHealthTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static NodeHealth HealthOf(ReconcileRig rig) => new(rig.Registry, rig.Dataplane, new ResolverHealth(rig.Options, rig.Meters, rig.Clock));

    [Fact]
    public async Task Read_SyncedDeviceAnswers_HealthyWithTheRegistrysPeers_NotTheDevices()
    {
        using var rig = new ReconcileRig();
        rig.Desired.Set(Active(Key(), "10.64.0.2"));
        await rig.PassAsync();
        // A peer the device holds for no session (reconciliation would remove it): not an active peer of this node.
        await rig.Noop.AddPeerAsync(Key(), IPAddress.Parse("10.64.0.9"), IPAddress.Parse("fd64:6400::9"), Token);

        var reading = await HealthOf(rig).ReadAsync(Token);

        Assert.Equal(new NodeHealthReading(Healthy: true, ActivePeers: 1), reading);
        Assert.Equal(2, await rig.Noop.CountPeersAsync(Token));
    }

    [Fact]
    public async Task Read_DeviceDoesNotAnswer_UnhealthyStillCountingLeases()
    {
        var dataplane = new HookedDataplane(new Vpn.Core.Dataplane.NoopDataplane())
        {
            BeforeProbe = () => new UapiUnavailableException("WireGuard UAPI socket is unavailable (test).", null),
        };
        using var rig = new ReconcileRig(dataplane);
        rig.Desired.Set(Active(Key(), "10.64.0.2"));
        await rig.PassAsync();

        var reading = await HealthOf(rig).ReadAsync(Token);

        Assert.Equal(new NodeHealthReading(Healthy: false, ActivePeers: 1), reading);
    }

    [Fact]
    public async Task Read_NotSyncedYet_Unhealthy()
    {
        using var rig = new ReconcileRig();
        rig.Desired.Fail();
        await rig.PassAsync();

        var reading = await HealthOf(rig).ReadAsync(Token);

        Assert.Equal(new NodeHealthReading(Healthy: false, ActivePeers: 0), reading);
    }
}
