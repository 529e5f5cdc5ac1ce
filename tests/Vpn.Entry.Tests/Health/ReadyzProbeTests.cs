using Vpn.Entry.Data;

namespace Vpn.Entry.Tests.Health;

/// <summary>GET /readyz is unauthenticated: a flood of it must not become a flood of database round trips.</summary>
public sealed class ReadyzProbeTests
{
    [Fact]
    public async Task ProbeAsync_ManyConcurrentCallers_OneProbe_FreshAgainAfterMaxAge()
    {
        var time = new FakeTimeProvider();
        var runs = 0;
        var release = new TaskCompletionSource<StoreReadiness>(TaskCreationOptions.RunContinuationsAsynchronously);
        var probe = new ReadyzProbe(() =>
        {
            Interlocked.Increment(ref runs);
            return release.Task;
        }, time);

        var waiting = Enumerable.Range(0, 500).Select(_ => probe.ProbeAsync(TestContext.Current.CancellationToken)).ToList();
        release.SetResult(StoreReadiness.Current);
        Assert.All(await Task.WhenAll(waiting), r => Assert.Equal(StoreReadiness.Current, r));
        Assert.Equal(1, runs);

        // Within the window the answer is reused; after it, the next caller probes again.
        time.Advance(TimeSpan.FromMilliseconds(900));
        await probe.ProbeAsync(TestContext.Current.CancellationToken);
        Assert.Equal(1, runs);
        time.Advance(TimeSpan.FromMilliseconds(200));
        await probe.ProbeAsync(TestContext.Current.CancellationToken);
        Assert.Equal(2, runs);
    }

    [Fact]
    public async Task ProbeAsync_CallerGivesUp_SharedProbeUnaffected()
    {
        var release = new TaskCompletionSource<StoreReadiness>(TaskCreationOptions.RunContinuationsAsynchronously);
        var probe = new ReadyzProbe(() => release.Task, new FakeTimeProvider());
        using var gone = new CancellationTokenSource();
        var first = probe.ProbeAsync(gone.Token);
        var second = probe.ProbeAsync(TestContext.Current.CancellationToken);
        await gone.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => first);
        release.SetResult(StoreReadiness.Unreachable);
        Assert.Equal(StoreReadiness.Unreachable, await second);
    }
}
