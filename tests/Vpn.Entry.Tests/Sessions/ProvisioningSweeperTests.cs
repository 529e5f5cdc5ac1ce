using Microsoft.Extensions.Logging.Abstractions;
using Vpn.Entry.Devices;

namespace Vpn.Entry.Tests.Sessions;

/// <summary>The sweeper's age and interval come from APP_PROVISIONING_TIMEOUT_SECS and APP_PROVISIONING_SWEEP_SECS.</summary>
public sealed class ProvisioningSweeperTests
{
    private static readonly DateTimeOffset T0 = new(2030, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task Sweeper_ConfiguredTimeoutAndInterval_FailsRowAtFirstSweepPastTheTimeoutNotBefore()
    {
        var (options, errors) = OptionsLoading.Load(EntryOptions.Load, ("APP_PROVISIONING_TIMEOUT_SECS", "10"), ("APP_PROVISIONING_SWEEP_SECS", "3"));
        Assert.Empty(errors);
        var fake = new FakeTimeProvider(T0);
        var time = new TimerSignal(fake);
        var stores = new InMemoryStores();
        var customer = Guid.NewGuid();
        var (node, _) = await stores.Nodes.UpsertAsync(new NodeRegistration("node-a", "eu-west", "DE", "fra", "default", "203.0.113.7:51820",
            WireGuardKey.Generate().ToBase64(), "core.test:50051", 10), T0, Ct);
        var device = new Device(Guid.NewGuid(), customer, "laptop", WireGuardKey.Generate(), T0);
        await stores.Devices.CreateAsync(device, 5, Ct);
        var session = new NewSession(Guid.CreateVersion7(), customer, device.Id, device.PublicKey, node.Id, RandomNumberGenerator.GetBytes(32),
            "eu-west", null, null, null, T0);
        Assert.Equal(ClaimOutcome.Claimed, (await stores.Sessions.ClaimAsync(session, replaceExisting: false, Ct)).Outcome);
        using var sweeper = new ProvisioningSweeper(stores.Sessions, options, time, NullLogger<ProvisioningSweeper>.Instance);
        await sweeper.StartAsync(Ct);
        await time.TimerCreated.WaitAsync(TimeSpan.FromSeconds(10), Ct);

        // Sweeps at 3, 6 and 9 s: the row is younger than 10 s at each of them.
        for (var i = 0; i < 3; i++)
        {
            fake.Advance(TimeSpan.FromSeconds(3));
            await Task.Delay(50, Ct);
            Assert.Equal(session.Id, await stores.Sessions.GetLiveIdAsync(customer, Ct));
        }

        // The sweep at 12 s is the first past the timeout.
        fake.Advance(TimeSpan.FromSeconds(3));
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (await stores.Sessions.GetLiveIdAsync(customer, Ct) is not null && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20, Ct);
        }
        Assert.Null(await stores.Sessions.GetLiveIdAsync(customer, Ct));
        await sweeper.StopAsync(Ct);
    }

    /// <summary>The fake clock, telling when the sweeper has created its timer (its loop starts on a thread of its own).</summary>
    private sealed class TimerSignal(FakeTimeProvider inner) : TimeProvider
    {
        private readonly TaskCompletionSource _created = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task TimerCreated => _created.Task;

        public override DateTimeOffset GetUtcNow() => inner.GetUtcNow();

        public override long GetTimestamp() => inner.GetTimestamp();

        public override long TimestampFrequency => inner.TimestampFrequency;

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            var timer = inner.CreateTimer(callback, state, dueTime, period);
            _created.TrySetResult();
            return timer;
        }
    }
}
