using static Vpn.Core.Tests.Reconciliation.ReconcileRig;

namespace Vpn.Core.Tests.Reconciliation;

/// <summary>The loop's timing, with real time and a long interval so only start, requests and retries can cause a pass.</summary>
public class ReconcileServiceTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    private static ReconcileService Service(ReconcileRig rig) =>
        new(rig.Options, rig.Reconciler, rig.Signal, TimeProvider.System, new ListLogger<ReconcileService>());

    private static Vpn.Core.Configuration.CoreOptions HourlyOptions()
    {
        var options = NoopOptions();
        return new Vpn.Core.Configuration.CoreOptions
        {
            ClientPool = options.ClientPool,
            ClientPool6 = options.ClientPool6,
            EntryUrl = options.EntryUrl,
            NodeId = options.NodeId,
            AdminToken = options.AdminToken,
            ReconcileInterval = TimeSpan.FromHours(1),
        };
    }

    private static async Task WaitForAsync(Func<bool> condition, TimeSpan within)
    {
        var deadline = DateTime.UtcNow + within;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "condition not met in time");
            await Task.Delay(20, Token);
        }
    }

    [Fact]
    public async Task ExecuteAsync_Started_RunsTheFirstPassAtOnce()
    {
        using var rig = new ReconcileRig(options: HourlyOptions());
        var key = Key();
        rig.Desired.Set(Active(key, "10.64.0.2"));
        using var service = Service(rig);

        await service.StartAsync(Token);
        await WaitForAsync(() => rig.Metrics.Snapshot().Passes == 1, TimeSpan.FromSeconds(5));
        await service.StopAsync(Token);

        Assert.Equal(Expected((key, "10.64.0.2")), await rig.DeviceAsync());
        Assert.True(rig.Registry.IsSynced);
    }

    [Fact]
    public async Task ExecuteAsync_ReconcileRequested_RunsAnotherPassSoon()
    {
        using var rig = new ReconcileRig(options: HourlyOptions());
        rig.Desired.Set();
        using var service = Service(rig);
        await service.StartAsync(Token);
        await WaitForAsync(() => rig.Metrics.Snapshot().Passes == 1, TimeSpan.FromSeconds(5));

        rig.Signal.Request();
        rig.Signal.Request();

        await WaitForAsync(() => rig.Metrics.Snapshot().Passes == 2, TimeSpan.FromSeconds(5));
        await Task.Delay(1500, Token);
        await service.StopAsync(Token);
        Assert.Equal(2, rig.Metrics.Snapshot().Passes);
    }

    [Fact]
    public async Task ExecuteAsync_FetchKeepsFailing_RetriesWithBackoff()
    {
        using var rig = new ReconcileRig(options: HourlyOptions());
        rig.Desired.Fail();
        using var service = Service(rig);

        await service.StartAsync(Token);
        // Retries after 1 s, then 2 s: three fetches within ~3 s although the interval is an hour.
        await WaitForAsync(() => rig.Desired.Fetches >= 3, TimeSpan.FromSeconds(6));
        rig.Desired.Set();
        await WaitForAsync(() => rig.Metrics.Snapshot().Synced, TimeSpan.FromSeconds(8));
        await service.StopAsync(Token);

        Assert.True(rig.Registry.IsSynced);
    }
}
