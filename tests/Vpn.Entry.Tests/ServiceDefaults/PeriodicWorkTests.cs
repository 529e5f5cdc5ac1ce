using System.Threading.Channels;
using Vpn.ServiceDefaults;

namespace Vpn.Entry.Tests.ServiceDefaults;

/// <summary>The background services' loop: at once, then per interval of the given clock, quietly stopped.</summary>
public sealed class PeriodicWorkTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task RunAsync_WorksAtOnceThenEveryIntervalUntilStopped()
    {
        var clock = new FakeTimeProvider();
        var runs = Channel.CreateUnbounded<DateTimeOffset>();
        using var stop = new CancellationTokenSource();
        var ct = TestContext.Current.CancellationToken;

        var loop = PeriodicWork.RunAsync(TimeSpan.FromMinutes(1), clock, _ => { runs.Writer.TryWrite(clock.GetUtcNow()); return Task.CompletedTask; }, stop.Token);

        var start = await runs.Reader.ReadAsync(ct).AsTask().WaitAsync(Wait, ct);
        clock.Advance(TimeSpan.FromSeconds(59));
        Assert.False(runs.Reader.TryRead(out _));
        clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(start + TimeSpan.FromMinutes(1), await runs.Reader.ReadAsync(ct).AsTask().WaitAsync(Wait, ct));
        await stop.CancelAsync();
        await loop.WaitAsync(Wait, ct);
        Assert.True(loop.IsCompletedSuccessfully);
    }

    [Fact]
    public async Task RunAsync_WorkThrows_ThrowsItToTheHost()
    {
        var clock = new FakeTimeProvider();

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            PeriodicWork.RunAsync(TimeSpan.FromMinutes(1), clock, _ => throw new InvalidOperationException("work failed"), CancellationToken.None));

        Assert.Equal("work failed", error.Message);
    }
}
