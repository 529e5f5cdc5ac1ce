namespace Vpn.Domain.Tests.Addressing;

/// <summary>The pool's documented behaviour by example: allocation order, reuse after release, quarantine, reservations, arguments.</summary>
public class Ipv4PoolTests
{
    [Fact]
    public void TryAllocate_Sequential_StartsAfterGatewayAscending()
    {
        var pool = new Ipv4Pool(Ipv4Network.Parse("10.64.0.0/29"));
        var handed = new List<string>();
        while (pool.TryAllocate(out var address))
        {
            handed.Add(address.ToString());
        }

        Assert.Equal(["10.64.0.2", "10.64.0.3", "10.64.0.4", "10.64.0.5", "10.64.0.6"], handed);
        Assert.Equal(IPAddress.Parse("10.64.0.1"), pool.Gateway);
        Assert.Equal(5, pool.Capacity);
    }

    [Fact]
    public void TryAllocate_AfterRelease_PrefersNeverUsedThenLongestRested()
    {
        var pool = new Ipv4Pool(Ipv4Network.Parse("10.64.0.0/29"));
        Assert.True(pool.TryAllocate(out var first));   // .2
        Assert.True(pool.TryAllocate(out var second));  // .3
        Assert.True(pool.Release(first));

        Assert.True(pool.TryAllocate(out var third));
        Assert.Equal(IPAddress.Parse("10.64.0.4"), third);
        Assert.True(pool.TryAllocate(out _));            // .5
        Assert.True(pool.TryAllocate(out _));            // .6
        Assert.True(pool.TryAllocate(out var reused));   // only now the rested .2
        Assert.Equal(first, reused);
        Assert.True(pool.IsAllocated(second));
    }

    [Fact]
    public void TryAllocate_FullPoolReleaseOrder_HandsOutLongestRestedFirst()
    {
        var pool = new Ipv4Pool(Ipv4Network.Parse("10.64.0.0/29"));
        while (pool.TryAllocate(out _))
        {
        }
        Assert.True(pool.Release(IPAddress.Parse("10.64.0.6")));   // rests first
        Assert.True(pool.Release(IPAddress.Parse("10.64.0.2")));   // released last

        Assert.True(pool.TryAllocate(out var next));
        Assert.Equal(IPAddress.Parse("10.64.0.6"), next);
    }

    [Fact]
    public void TryAllocate_AfterReserveAndRelease_DoesNotReuseReleased()
    {
        // Rebuilding state after a restart: reserve the addresses of live sessions, then one session ends.
        var pool = new Ipv4Pool(Ipv4Network.Parse("10.64.0.0/24"));
        Assert.True(pool.TryReserve(IPAddress.Parse("10.64.0.2")));
        Assert.True(pool.TryReserve(IPAddress.Parse("10.64.0.3")));
        Assert.True(pool.Release(IPAddress.Parse("10.64.0.2")));

        Assert.True(pool.TryAllocate(out var next));
        Assert.Equal(IPAddress.Parse("10.64.0.4"), next);
    }

    [Fact]
    public void TryAllocate_SameInstantRelease_HandsOutLongestRestedFirst()
    {
        var clock = new ManualClock();   // does not move: every call below happens at one clock reading
        var pool = new Ipv4Pool(Ipv4Network.Parse("10.64.0.0/29"), TimeSpan.Zero, clock);
        while (pool.TryAllocate(out _))
        {
        }
        var a = IPAddress.Parse("10.64.0.2");
        var b = IPAddress.Parse("10.64.0.3");
        Assert.True(pool.Release(a));       // FIFO: a
        Assert.True(pool.TryReserve(a));    // a's entry is now stale
        Assert.True(pool.Release(b));       // FIFO: a(stale), b
        Assert.True(pool.Release(a));       // FIFO: a(stale, same timestamp as the new entry), b, a

        Assert.True(pool.TryAllocate(out var next));
        Assert.Equal(b, next);
    }

    [Fact]
    public void TryAllocate_OnlyQuarantinedFree_FailsUntilQuarantineEnds()
    {
        var clock = new ManualClock();
        var pool = new Ipv4Pool(Ipv4Network.Parse("10.64.0.0/29"), TimeSpan.FromSeconds(180), clock);
        while (pool.TryAllocate(out _))
        {
        }
        var released = IPAddress.Parse("10.64.0.4");
        Assert.True(pool.Release(released));

        clock.Advance(TimeSpan.FromSeconds(180) - TimeSpan.FromTicks(1));
        Assert.True(pool.IsQuarantined(released));
        Assert.False(pool.TryAllocate(out _));

        clock.Advance(TimeSpan.FromTicks(1));
        Assert.False(pool.IsQuarantined(released));
        Assert.True(pool.TryAllocate(out var again));
        Assert.Equal(released, again);
    }

    [Fact]
    public void QuarantineFree_FreeAddress_RestsItAndRestartsOnRepeat()
    {
        var clock = new ManualClock();
        var pool = new Ipv4Pool(Ipv4Network.Parse("10.64.0.0/29"), TimeSpan.FromSeconds(10), clock);
        var stale = IPAddress.Parse("10.64.0.2");

        Assert.True(pool.QuarantineFree(stale));
        Assert.True(pool.IsQuarantined(stale));
        clock.Advance(TimeSpan.FromSeconds(8));
        Assert.True(pool.QuarantineFree(stale));            // restart
        clock.Advance(TimeSpan.FromSeconds(8));
        Assert.True(pool.IsQuarantined(stale));

        var handed = new List<IPAddress>();
        while (pool.TryAllocate(out var address))
        {
            handed.Add(address);
        }
        Assert.DoesNotContain(stale, handed);
        Assert.Equal(4, handed.Count);
        clock.Advance(TimeSpan.FromSeconds(2));
        Assert.True(pool.TryAllocate(out var last));
        Assert.Equal(stale, last);
    }

    [Theory]
    [InlineData("10.64.0.0")]   // network
    [InlineData("10.64.0.1")]   // gateway
    [InlineData("10.64.0.7")]   // broadcast
    [InlineData("10.64.0.8")]   // next network
    [InlineData("10.63.255.255")]
    [InlineData("192.168.1.2")]
    public void TryReserve_ReservedOrOutsideAddress_ReturnsFalse(string address)
    {
        var pool = new Ipv4Pool(Ipv4Network.Parse("10.64.0.0/29"));

        Assert.False(pool.TryReserve(IPAddress.Parse(address)));
        Assert.False(pool.QuarantineFree(IPAddress.Parse(address)));
        Assert.Equal(0, pool.AllocatedCount);
    }

    [Fact]
    public void TryReserve_TakenAddress_ReturnsFalse()
    {
        var pool = new Ipv4Pool(Ipv4Network.Parse("10.64.0.0/29"));
        Assert.True(pool.TryAllocate(out var allocated));
        Assert.True(pool.TryReserve(IPAddress.Parse("10.64.0.5")));

        Assert.False(pool.TryReserve(allocated));
        Assert.False(pool.TryReserve(IPAddress.Parse("10.64.0.5")));
        Assert.False(pool.QuarantineFree(allocated));
        Assert.Equal(2, pool.AllocatedCount);
    }

    [Fact]
    public void TryReserve_QuarantinedAddress_Succeeds()
    {
        var clock = new ManualClock();
        var pool = new Ipv4Pool(Ipv4Network.Parse("10.64.0.0/29"), TimeSpan.FromSeconds(180), clock);
        Assert.True(pool.TryAllocate(out var address));
        Assert.True(pool.Release(address));

        Assert.True(pool.TryReserve(address));
        Assert.False(pool.IsQuarantined(address));
        Assert.True(pool.IsAllocated(address));
    }

    [Fact]
    public void TryAllocate_ReservedAddress_IsSkipped()
    {
        var pool = new Ipv4Pool(Ipv4Network.Parse("10.64.0.0/29"));
        Assert.True(pool.TryReserve(IPAddress.Parse("10.64.0.2")));
        Assert.True(pool.TryReserve(IPAddress.Parse("10.64.0.4")));

        Assert.True(pool.TryAllocate(out var a));
        Assert.True(pool.TryAllocate(out var b));
        Assert.True(pool.TryAllocate(out var c));
        Assert.False(pool.TryAllocate(out _));
        Assert.Equal([IPAddress.Parse("10.64.0.3"), IPAddress.Parse("10.64.0.5"), IPAddress.Parse("10.64.0.6")], [a, b, c]);
    }

    [Fact]
    public void Release_UnknownAddress_ReturnsFalse()
    {
        var pool = new Ipv4Pool(Ipv4Network.Parse("10.64.0.0/29"));

        Assert.False(pool.Release(IPAddress.Parse("10.64.0.2")));
        Assert.False(pool.Release(IPAddress.Parse("10.64.0.1")));
        Assert.False(pool.Release(IPAddress.Parse("1.2.3.4")));
    }

    [Theory]
    [InlineData("10.64.0.0/30")]
    [InlineData("10.64.0.0/31")]
    [InlineData("10.64.0.0/32")]
    public void Constructor_NetworkSmallerThanSlash29_Throws(string network)
    {
        Assert.Throws<ArgumentException>(() => new Ipv4Pool(Ipv4Network.Parse(network)));
    }

    [Fact]
    public void Constructor_InvalidArguments_Throw()
    {
        var network = Ipv4Network.Parse("10.64.0.0/24");

        Assert.Throws<ArgumentNullException>(() => new Ipv4Pool(null!));
        Assert.Throws<ArgumentNullException>(() => new Ipv4Pool(network, TimeSpan.Zero, null!));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Ipv4Pool(network, TimeSpan.FromTicks(-1), TimeProvider.System));
    }
}
