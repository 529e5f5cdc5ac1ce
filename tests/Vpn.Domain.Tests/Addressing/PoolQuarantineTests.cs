using System.Diagnostics;

namespace Vpn.Domain.Tests.Addressing;

public class PoolQuarantineTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Quarantine = TimeSpan.FromSeconds(180);

    private static IPAddress A(string text) => IPAddress.Parse(text);

    private static (Ipv4Pool Pool, ManualClock Clock) Small(TimeSpan? quarantine = null)
    {
        var clock = new ManualClock();
        return (new Ipv4Pool(Ipv4Network.Parse("10.64.0.0/29"), quarantine ?? Quarantine, clock), clock);
    }

    private static void Fill(Ipv4Pool pool)
    {
        while (pool.TryAllocate(out _))
        {
        }
    }

    [Fact]
    public void TryAllocate_OnlyFreeAddressQuarantined_FailsUntilQuarantineEnds()
    {
        var (pool, clock) = Small();
        Fill(pool);
        Assert.True(pool.Release(A("10.64.0.4")));

        Assert.False(pool.TryAllocate(out _));
        clock.Advance(Quarantine - TimeSpan.FromMilliseconds(1));
        Assert.False(pool.TryAllocate(out _));
        Assert.True(pool.IsQuarantined(A("10.64.0.4")));

        clock.Advance(TimeSpan.FromMilliseconds(1));
        Assert.False(pool.IsQuarantined(A("10.64.0.4")));
        Assert.True(pool.TryAllocate(out var address));
        Assert.Equal(A("10.64.0.4"), address);
    }

    [Fact]
    public void TryAllocate_NeverUsedAddressesLeft_HandsThemOutBeforeRestedOnes()
    {
        var (pool, clock) = Small();
        Assert.True(pool.TryAllocate(out var first));
        Assert.True(pool.Release(first));
        clock.Advance(TimeSpan.FromHours(1));

        Assert.True(pool.TryAllocate(out var second));

        Assert.Equal(A("10.64.0.3"), second);
    }

    [Fact]
    public void TryAllocate_SeveralRested_OldestReleaseFirst()
    {
        var (pool, clock) = Small();
        Fill(pool);
        Assert.True(pool.Release(A("10.64.0.6")));
        clock.Advance(TimeSpan.FromSeconds(1));
        Assert.True(pool.Release(A("10.64.0.2")));
        clock.Advance(TimeSpan.FromSeconds(1));
        Assert.True(pool.Release(A("10.64.0.4")));
        clock.Advance(Quarantine + TimeSpan.FromSeconds(1));

        var order = new List<IPAddress>();
        while (pool.TryAllocate(out var address))
        {
            order.Add(address);
        }

        Assert.Equal([A("10.64.0.6"), A("10.64.0.2"), A("10.64.0.4")], order);
    }

    [Fact]
    public void TryAllocate_OlderReleaseRested_YoungerStillQuarantined()
    {
        var (pool, clock) = Small();
        Fill(pool);
        Assert.True(pool.Release(A("10.64.0.3")));
        clock.Advance(TimeSpan.FromSeconds(100));
        Assert.True(pool.Release(A("10.64.0.5")));
        clock.Advance(TimeSpan.FromSeconds(80));

        Assert.True(pool.TryAllocate(out var rested));
        Assert.False(pool.TryAllocate(out _));

        Assert.Equal(A("10.64.0.3"), rested);
        Assert.True(pool.IsQuarantined(A("10.64.0.5")));
    }

    [Fact]
    public void TryReserve_QuarantinedAddress_SucceedsBecauseTheDatabaseIsTheTruth()
    {
        var (pool, _) = Small();
        Fill(pool);
        Assert.True(pool.Release(A("10.64.0.4")));

        Assert.True(pool.TryReserve(A("10.64.0.4")));

        Assert.False(pool.IsQuarantined(A("10.64.0.4")));
        Assert.True(pool.IsAllocated(A("10.64.0.4")));
        Assert.Equal(5, pool.AllocatedCount);
    }

    [Fact]
    public void Release_AgainAfterReserve_QuarantineRestartsFromTheLatestRelease()
    {
        var (pool, clock) = Small();
        Fill(pool);
        Assert.True(pool.Release(A("10.64.0.4")));
        clock.Advance(TimeSpan.FromSeconds(100));
        Assert.True(pool.TryReserve(A("10.64.0.4")));
        clock.Advance(TimeSpan.FromSeconds(50));
        Assert.True(pool.Release(A("10.64.0.4")));

        clock.Advance(TimeSpan.FromSeconds(31));   // 181 s after the first release, 31 s after the latest
        Assert.False(pool.TryAllocate(out _));
        clock.Advance(TimeSpan.FromSeconds(149));
        Assert.True(pool.TryAllocate(out var address));
        Assert.Equal(A("10.64.0.4"), address);
    }

    [Fact]
    public void QuarantineFree_AddressSeenOnTheDevice_RestsBeforeFirstUse()
    {
        var (pool, clock) = Small();

        Assert.True(pool.QuarantineFree(A("10.64.0.2")));
        Assert.False(pool.QuarantineFree(A("10.64.0.1")));     // gateway
        Assert.False(pool.QuarantineFree(A("192.0.2.1")));     // outside

        Assert.True(pool.TryAllocate(out var first));
        Assert.Equal(A("10.64.0.3"), first);
        Assert.False(pool.QuarantineFree(first));              // held
        Fill(pool);
        Assert.False(pool.IsAllocated(A("10.64.0.2")));
        clock.Advance(Quarantine);
        Assert.True(pool.TryAllocate(out var rested));
        Assert.Equal(A("10.64.0.2"), rested);
    }

    [Fact]
    public void TryAllocate_ZeroQuarantine_ReusesAtOnceWhenNothingElseIsFree()
    {
        var (pool, _) = Small(TimeSpan.Zero);
        Fill(pool);
        Assert.True(pool.Release(A("10.64.0.5")));

        Assert.True(pool.TryAllocate(out var address));
        Assert.Equal(A("10.64.0.5"), address);
    }

    public enum OpKind
    {
        Allocate,
        Release,
        Reserve,
        QuarantineFree,
        Advance,
    }

    [Fact]
    public void Operations_RandomSequences_NeverReuseInsideQuarantineAndPreferLongestRested()
    {
        var ops = Gen.Select(Gen.Frequency((40, OpKind.Allocate), (25, OpKind.Release), (8, OpKind.Reserve), (5, OpKind.QuarantineFree), (22, OpKind.Advance)),
            Gen.UInt, (kind, pick) => (Kind: kind, Pick: pick)).Array[0, 300];
        Gen.Select(Gen.Int[24, 29], Gen.Int[0, 200], ops).Sample((prefix, quarantineSeconds, sequence) =>
        {
            var network = new Ipv4Network(Ipv4Network.ToUInt32(A("10.64.0.0")), prefix);
            var clock = new ManualClock();
            var quarantine = TimeSpan.FromSeconds(quarantineSeconds);
            var pool = new Ipv4Pool(network, quarantine, clock);
            var clients = Enumerable.Range(2, (int)network.Size - 3).Select(i => network.Base + (uint)i).ToArray();
            var held = new HashSet<uint>();
            var releasedAt = new Dictionary<uint, TimeSpan>();   // latest release (or quarantine) of each free address
            var now = TimeSpan.Zero;

            foreach (var (kind, pick) in sequence)
            {
                var target = clients[(int)(pick % (uint)clients.Length)];
                switch (kind)
                {
                    case OpKind.Allocate:
                    {
                        var free = clients.Where(c => !held.Contains(c)).ToList();
                        var neverReleased = free.Where(c => !releasedAt.ContainsKey(c)).ToList();
                        var rested = free.Where(c => releasedAt.TryGetValue(c, out var t) && now - t >= quarantine).ToList();
                        var ok = pool.TryAllocate(out var address);
                        Assert.Equal(neverReleased.Count + rested.Count > 0, ok);
                        if (!ok)
                        {
                            break;
                        }
                        var value = Ipv4Network.ToUInt32(address);
                        Assert.Contains(value, free);
                        if (neverReleased.Count > 0)
                        {
                            Assert.Contains(value, neverReleased);
                        }
                        else
                        {
                            Assert.True(now - releasedAt[value] >= quarantine, $"{address} reused {now - releasedAt[value]} after release");
                            Assert.Equal(rested.Min(c => releasedAt[c]), releasedAt[value]);
                        }
                        held.Add(value);
                        releasedAt.Remove(value);
                        break;
                    }
                    case OpKind.Release:
                        var wasHeld = held.Remove(target);
                        Assert.Equal(wasHeld, pool.Release(Ipv4Network.ToAddress(target)));
                        if (wasHeld)
                        {
                            releasedAt[target] = now;
                        }
                        Assert.Equal(releasedAt.TryGetValue(target, out var at) && now - at < quarantine, pool.IsQuarantined(Ipv4Network.ToAddress(target)));
                        break;
                    case OpKind.Reserve:
                        Assert.Equal(held.Add(target), pool.TryReserve(Ipv4Network.ToAddress(target)));
                        releasedAt.Remove(target);
                        break;
                    case OpKind.QuarantineFree:
                        Assert.Equal(!held.Contains(target), pool.QuarantineFree(Ipv4Network.ToAddress(target)));
                        if (!held.Contains(target))
                        {
                            releasedAt[target] = now;
                        }
                        break;
                    case OpKind.Advance:
                        var step = TimeSpan.FromSeconds(pick % 120);
                        clock.Advance(step);
                        now += step;
                        break;
                }
                Assert.Equal(held.Count, pool.AllocatedCount);
            }
        }, iter: 400);
    }

    [Fact]
    public void TryAllocate_Slash16UnderChurn_StaysCheap()
    {
        var clock = new ManualClock();
        var pool = new Ipv4Pool(Ipv4Network.Parse("10.64.0.0/16"), Quarantine, clock);
        var held = new List<IPAddress>();
        var random = new Random(7);
        var watch = Stopwatch.StartNew();
        while (pool.TryAllocate(out var address))
        {
            held.Add(address);
        }
        Assert.Equal(65_533, held.Count);
        var allocations = 0;
        for (var i = 0; i < 200_000; i++)
        {
            // Steady state near full: ~1 release and ~1 allocation per simulated 10 ms.
            var victim = random.Next(held.Count);
            Assert.True(pool.Release(held[victim]));
            held[victim] = held[^1];
            held.RemoveAt(held.Count - 1);
            clock.Advance(TimeSpan.FromMilliseconds(10));
            if (pool.TryAllocate(out var address))
            {
                held.Add(address);
                allocations++;
            }
        }
        watch.Stop();
        output.WriteLine($"/16: fill + 200,000 release/allocate pairs in {watch.ElapsedMilliseconds} ms ({allocations} reallocations)");

        // Releases in the first 180 s (18,000 of them) could not be reused yet; every later one could.
        Assert.Equal(200_000 - 18_000 + 1, allocations);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(20), "pool operations are not cheap");
    }
}
