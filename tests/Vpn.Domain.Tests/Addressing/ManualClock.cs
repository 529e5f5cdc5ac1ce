namespace Vpn.Domain.Tests.Addressing;

/// <summary>A clock that moves only when told to; the pool reads its monotonic timestamp (one tick is one <see cref="TimeSpan"/> tick).</summary>
internal sealed class ManualClock : TimeProvider
{
    private long _ticks = 1_000_000_000;

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public override long GetTimestamp() => _ticks;

    public override DateTimeOffset GetUtcNow() => DateTimeOffset.UnixEpoch.AddTicks(_ticks);

    public void Advance(TimeSpan by) => _ticks += by.Ticks;
}
