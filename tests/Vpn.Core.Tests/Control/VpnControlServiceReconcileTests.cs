using Grpc.Core;
using Vpn.Contracts.Core.V1;
using static Vpn.Core.Tests.Reconciliation.ReconcileRig;

namespace Vpn.Core.Tests.Control;

/// <summary>What reconciliation changes in the gRPC API: Connect waits for the first sync; GetNodeStatus reports drift.</summary>
public class VpnControlServiceReconcileTests
{
    private static VpnControlService Service(ReconcileRig rig)
    {
        var resolver = new Vpn.Core.Dns.ResolverHealth(rig.Options, rig.Meters, rig.Clock);
        return new(rig.Registry, rig.Dataplane, new CoreOptionsView(rig.Options.ClientPool.ToString(), rig.Options.ClientPool6.ToString()), rig.Metrics,
            resolver, new Vpn.Core.Health.NodeHealth(rig.Registry, rig.Dataplane, resolver), new ListLogger<VpnControlService>());
    }

    private static ConnectRequest Connect() => new() { SessionId = Guid.NewGuid().ToString(), DevicePublicKey = Key().ToBase64() };

    [Fact]
    public async Task Connect_NoSyncBeforeTheCallsDeadline_IsUnavailable()
    {
        using var rig = new ReconcileRig();
        rig.Desired.Fail();
        await rig.PassAsync();
        using var deadline = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));

        var error = await Assert.ThrowsAsync<RpcException>(() => Service(rig).Connect(Connect(), new TestCallContext(deadline.Token)));

        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
        Assert.Empty(await rig.DeviceAsync());
    }

    [Fact]
    public async Task Connect_BeforeFirstSync_AsksForAPassWaitsAndConnects()
    {
        using var rig = new ReconcileRig();
        rig.Desired.Fail();
        await rig.PassAsync();
        // Drain the request the failed pass may have left, so the one asserted below is the Connect's.
        await rig.Signal.WaitAsync(TimeSpan.Zero, TestContext.Current.CancellationToken);

        var connect = Service(rig).Connect(Connect(), new TestCallContext());
        Assert.True(await rig.Signal.WaitAsync(TimeSpan.FromSeconds(5), TestContext.Current.CancellationToken), "the waiting Connect asked for a pass");
        Assert.False(connect.IsCompleted);
        rig.Desired.Set(Active(Key(), "10.64.0.2"));
        await rig.PassAsync();

        Assert.Equal("10.64.0.3/32", (await connect).AssignedAddress);
    }

    [Fact]
    public async Task Connect_AfterFirstSync_GetsAnAddressTheDatabaseDoesNotHold()
    {
        using var rig = new ReconcileRig();
        rig.Desired.Set(Active(Key(), "10.64.0.2"));
        await rig.PassAsync();

        var response = await Service(rig).Connect(Connect(), new TestCallContext());

        Assert.Equal("10.64.0.3/32", response.AssignedAddress);
    }

    [Fact]
    public async Task GetNodeStatus_AfterPasses_ReportsDriftCounters()
    {
        using var rig = new ReconcileRig();
        var status = await Service(rig).GetNodeStatus(new GetNodeStatusRequest(), new TestCallContext());
        Assert.Equal((false, false, 0UL, 0L), (status.Healthy, status.Synced, status.ReconcilePasses, status.LastReconcileUnixMs));

        var (kept, drifted) = (Key(), Key());
        await rig.ByHandAsync(Peer(Key(), "10.64.0.9/32"), Peer(drifted, "10.64.0.99/32"));
        rig.Desired.Set(Active(kept, "10.64.0.2"), Active(drifted, "10.64.0.3"));
        await rig.PassAsync();
        rig.Noop.Reset();
        await rig.PassAsync();
        rig.Desired.Fail();
        await rig.PassAsync();

        status = await Service(rig).GetNodeStatus(new GetNodeStatusRequest(), new TestCallContext());

        Assert.True(status.Healthy);
        Assert.False(status.Synced);
        Assert.Equal(2u, status.ActivePeers);
        Assert.Equal((3UL, 1UL), (status.ReconcilePasses, status.ReconcileFailures));
        Assert.Equal((3UL, 1UL, 1UL), (status.ReconcilePeersAdded, status.ReconcilePeersRemoved, status.ReconcilePeersCorrected));
        Assert.Equal(1UL, status.DeviceReinitializations);
        Assert.Equal(rig.Clock.GetUtcNow().ToUnixTimeMilliseconds(), status.LastReconcileUnixMs);
    }

    private sealed class TestCallContext(CancellationToken? cancellation = null) : ServerCallContext
    {
        protected override string MethodCore => "/vpn.core.v1.VpnControl/Test";

        protected override string HostCore => "localhost";

        protected override string PeerCore => "unix:test";

        protected override DateTime DeadlineCore => DateTime.MaxValue;

        protected override Metadata RequestHeadersCore { get; } = [];

        protected override CancellationToken CancellationTokenCore => cancellation ?? TestContext.Current.CancellationToken;

        protected override Metadata ResponseTrailersCore { get; } = [];

        protected override Status StatusCore { get; set; }

        protected override WriteOptions? WriteOptionsCore { get; set; }

        protected override AuthContext AuthContextCore { get; } = new(null, []);

        protected override ContextPropagationToken CreatePropagationTokenCore(ContextPropagationOptions? options) => throw new NotSupportedException();

        protected override Task WriteResponseHeadersAsyncCore(Metadata responseHeaders) => Task.CompletedTask;
    }
}
