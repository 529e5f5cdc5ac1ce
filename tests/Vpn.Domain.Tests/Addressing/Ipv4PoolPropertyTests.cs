namespace Vpn.Domain.Tests.Addressing;

/// <summary>
/// <see cref="Ipv4Pool"/> under random operation sequences (CsCheck), checked against a reference model of its documented
/// allocation order, quarantine and bookkeeping; the examples are <see cref="Ipv4PoolTests"/>.
/// </summary>
public class Ipv4PoolPropertyTests
{
    public enum OpKind
    {
        Allocate,
        ReleaseHeld,
        ReleaseAny,
        ReserveInside,
        ReserveOutside,
        QuarantineFree,
        Advance,
    }

    /// <summary>One pool operation; <see cref="Pick"/> chooses the address (or clock step) at run time.</summary>
    public readonly record struct Op(OpKind Kind, uint Pick);

    private static uint MaskOf(int prefix) => uint.MaxValue << (32 - prefix);

    /// <summary>Random client pools from /29 (5 clients) to /20 (4093 clients) anywhere in the IPv4 space.</summary>
    private static readonly Gen<Ipv4Network> Network =
        Gen.Select(Gen.UInt, Gen.Int[20, 29], (address, prefix) => new Ipv4Network(address & MaskOf(prefix), prefix));

    /// <summary>Small networks more often, so that exhaustion and reuse happen in most samples.</summary>
    private static readonly Gen<Ipv4Network> SmallNetwork =
        Gen.Select(Gen.UInt, Gen.Frequency((4, Gen.Int[27, 29]), (1, Gen.Int[20, 26])), (address, prefix) => new Ipv4Network(address & MaskOf(prefix), prefix));

    private static readonly Gen<Op[]> Ops =
        Gen.Select(
                Gen.Frequency(
                    (45, OpKind.Allocate), (25, OpKind.ReleaseHeld), (5, OpKind.ReleaseAny), (8, OpKind.ReserveInside),
                    (4, OpKind.ReserveOutside), (5, OpKind.QuarantineFree), (8, OpKind.Advance)),
                Gen.UInt,
                (kind, pick) => new Op(kind, pick))
            .Array[0, 300];

    private static readonly Gen<Op[]> AllocateReleaseOps =
        Gen.Select(Gen.Frequency((60, OpKind.Allocate), (40, OpKind.ReleaseHeld)), Gen.UInt, (kind, pick) => new Op(kind, pick)).Array[0, 300];

    private static readonly Gen<TimeSpan> QuarantineTime = Gen.Frequency(
        (2, Gen.Const(TimeSpan.Zero)),
        (3, Gen.Int[1, 300].Select(s => TimeSpan.FromSeconds(s))));

    private static uint U(IPAddress address) => Ipv4Network.ToUInt32(address);

    private static IPAddress A(uint value) => Ipv4Network.ToAddress(value);

    private static bool IsClient(Ipv4Network network, uint value) =>
        network.Contains(value) && value != network.Base && value != network.Base + 1 && value != network.Broadcast;

    private static uint Inside(Ipv4Network network, uint pick) => network.Base + (uint)(pick % network.Size);

    private static uint Outside(Ipv4Network network, uint pick) =>
        unchecked((uint)(network.Base + (ulong)network.Size + (pick % ((1UL << 32) - (ulong)network.Size))));

    private static string PrintOps(Ipv4Network network, TimeSpan quarantine, Op[] ops) =>
        $"{network} quarantine={quarantine.TotalSeconds}s " + string.Join(" ", ops.Select(o => $"{o.Kind}:{o.Pick}"));

    /// <summary>
    /// The documented contract as a reference model: never-used addresses first, ascending; then the free address
    /// released longest ago, once its quarantine is over; never network, gateway, broadcast or a held address.
    /// </summary>
    private sealed class Model(Ipv4Network network, TimeSpan quarantine)
    {
        private readonly SortedSet<uint> _neverUsed = [.. Enumerable.Range(0, (int)network.Size - 3).Select(i => network.Base + 2 + (uint)i)];

        public HashSet<uint> Held { get; } = [];

        /// <summary>Free addresses that were in use, in the order of their latest release (or quarantine start).</summary>
        public List<(uint Address, TimeSpan At)> Rested { get; } = [];

        public TimeSpan Now { get; private set; }

        public long Capacity => network.Size - 3;

        public uint? ExpectedAllocation()
        {
            if (_neverUsed.Count > 0)
            {
                return _neverUsed.Min;
            }
            return Rested.Count > 0 && Now - Rested[0].At >= quarantine ? Rested[0].Address : null;
        }

        public void Allocated(uint value)
        {
            _neverUsed.Remove(value);
            Rested.RemoveAll(r => r.Address == value);
            Held.Add(value);
        }

        public void Reserved(uint value) => Allocated(value);

        public void Released(uint value)
        {
            Held.Remove(value);
            Rest(value);
        }

        public void Rest(uint value)
        {
            _neverUsed.Remove(value);
            Rested.RemoveAll(r => r.Address == value);
            Rested.Add((value, Now));
        }

        public bool IsQuarantined(uint value) =>
            Rested.Exists(r => r.Address == value && Now - r.At < quarantine);

        public void Advance(TimeSpan by) => Now += by;
    }

    [Fact]
    public void Operations_RandomSequences_FollowDocumentedAllocationOrder()
    {
        // Every operation happens at its own instant, so "released longest ago" is never a tie.
        Gen.Select(SmallNetwork, QuarantineTime, Ops).Sample((network, quarantine, ops) => CheckAgainstModel(network, quarantine, ops, distinctInstants: true),
            iter: 500, print: t => PrintOps(t.Item1, t.Item2, t.Item3));
    }

    [Fact]
    public void Operations_RandomSequencesOnFrozenClock_FollowDocumentedAllocationOrder()
    {
        // Many releases share one clock reading: the order of release events alone decides which address rested longest.
        Gen.Select(SmallNetwork, QuarantineTime, Ops).Sample((network, quarantine, ops) => CheckAgainstModel(network, quarantine, ops, distinctInstants: false),
            iter: 500, print: t => PrintOps(t.Item1, t.Item2, t.Item3));
    }

    private static void CheckAgainstModel(Ipv4Network network, TimeSpan quarantine, Op[] ops, bool distinctInstants)
    {
        {
            var clock = new ManualClock();
            var pool = new Ipv4Pool(network, quarantine, clock);
            var model = new Model(network, quarantine);

            foreach (var op in ops)
            {
                if (distinctInstants)
                {
                    clock.Advance(TimeSpan.FromTicks(1));
                    model.Advance(TimeSpan.FromTicks(1));
                }
                switch (op.Kind)
                {
                    case OpKind.Allocate:
                    {
                        var expected = model.ExpectedAllocation();
                        var ok = pool.TryAllocate(out var address);
                        Assert.Equal(expected.HasValue, ok);
                        if (!ok)
                        {
                            Assert.Equal(IPAddress.None, address);
                            break;
                        }
                        var value = U(address);
                        Assert.True(network.Contains(value), $"{address} outside {network}");
                        Assert.NotEqual(network.Base, value);
                        Assert.NotEqual(network.Base + 1, value);
                        Assert.NotEqual(network.Broadcast, value);
                        Assert.DoesNotContain(value, model.Held);
                        Assert.False(model.IsQuarantined(value), $"{address} handed out during its quarantine");
                        Assert.Equal(A(expected!.Value), address);
                        model.Allocated(value);
                        break;
                    }
                    case OpKind.ReleaseHeld when model.Held.Count > 0:
                    {
                        var value = model.Held.ElementAt((int)(op.Pick % (uint)model.Held.Count));
                        Assert.True(pool.Release(A(value)));
                        Assert.False(pool.IsAllocated(A(value)));
                        Assert.False(pool.Release(A(value)));
                        model.Released(value);
                        Assert.Equal(quarantine > TimeSpan.Zero, pool.IsQuarantined(A(value)));
                        break;
                    }
                    case OpKind.ReleaseHeld:
                    case OpKind.ReleaseAny:
                    {
                        var value = Inside(network, op.Pick);
                        var wasHeld = model.Held.Contains(value);
                        Assert.Equal(wasHeld, pool.Release(A(value)));
                        if (wasHeld)
                        {
                            model.Released(value);
                        }
                        break;
                    }
                    case OpKind.ReserveInside:
                    {
                        var value = Inside(network, op.Pick);
                        var expected = IsClient(network, value) && !model.Held.Contains(value);
                        Assert.Equal(expected, pool.TryReserve(A(value)));
                        if (expected)
                        {
                            model.Reserved(value);
                        }
                        Assert.Equal(model.Held.Contains(value), pool.IsAllocated(A(value)));
                        Assert.False(pool.IsQuarantined(A(value)) && model.Held.Contains(value));
                        break;
                    }
                    case OpKind.ReserveOutside:
                    {
                        var value = Outside(network, op.Pick);
                        Assert.False(network.Contains(value));
                        Assert.False(pool.TryReserve(A(value)));
                        Assert.False(pool.IsAllocated(A(value)));
                        Assert.False(pool.Release(A(value)));
                        Assert.False(pool.QuarantineFree(A(value)));
                        break;
                    }
                    case OpKind.QuarantineFree:
                    {
                        var value = Inside(network, op.Pick);
                        var expected = IsClient(network, value) && !model.Held.Contains(value);
                        Assert.Equal(expected, pool.QuarantineFree(A(value)));
                        if (expected)
                        {
                            model.Rest(value);
                        }
                        break;
                    }
                    case OpKind.Advance:
                    {
                        // Mostly small steps (in and around the quarantine), sometimes far past it.
                        var by = TimeSpan.FromMilliseconds(op.Pick % 8 == 0 ? op.Pick % 1_000_000_000 : op.Pick % 120_000);
                        clock.Advance(by);
                        model.Advance(by);
                        break;
                    }
                }
                Assert.Equal(model.Held.Count, pool.AllocatedCount);
            }

            Assert.All(model.Held, v => Assert.True(pool.IsAllocated(A(v))));
            Assert.All(model.Rested, r => Assert.Equal(model.IsQuarantined(r.Address), pool.IsQuarantined(A(r.Address))));
            // Once every quarantine is over, the pool fills up to exactly its capacity with distinct client addresses.
            clock.Advance(quarantine);
            var held = model.Held.ToHashSet();
            while (pool.TryAllocate(out var address))
            {
                Assert.True(IsClient(network, U(address)), $"{address} is not a client address of {network}");
                Assert.True(held.Add(U(address)), $"{address} handed out twice");
            }
            Assert.Equal(model.Capacity, held.Count);
            Assert.Equal(model.Capacity, pool.AllocatedCount);
        }
    }

    [Fact]
    public void TryAllocate_AfterReleaseWithOthersFree_DoesNotHandOutJustReleased()
    {
        Gen.Select(SmallNetwork, AllocateReleaseOps).Sample((network, ops) =>
        {
            var pool = new Ipv4Pool(network);
            IPAddress? lastReleased = null;
            var held = new List<IPAddress>();
            foreach (var op in ops)
            {
                if (op.Kind == OpKind.Allocate)
                {
                    var othersFree = pool.Capacity - pool.AllocatedCount > 1;
                    if (pool.TryAllocate(out var address))
                    {
                        if (othersFree && lastReleased is not null)
                        {
                            Assert.NotEqual(lastReleased, address);
                        }
                        held.Add(address);
                    }
                    lastReleased = null;
                }
                else if (held.Count > 0)
                {
                    var address = held[(int)(op.Pick % (uint)held.Count)];
                    held.Remove(address);
                    Assert.True(pool.Release(address));
                    lastReleased = address;
                }
            }
        }, iter: 1000, print: t => PrintOps(t.Item1, TimeSpan.Zero, t.Item2));
    }

    [Fact]
    public void TryAllocate_FreshPool_HandsOutExactlyEveryClientAddressThenFails()
    {
        Gen.Select(Network, Gen.UInt).Sample((network, pick) =>
        {
            var pool = new Ipv4Pool(network);
            var seen = new HashSet<uint>();
            while (pool.TryAllocate(out var address))
            {
                Assert.True(seen.Add(U(address)), $"{address} handed out twice");
            }

            Assert.Equal(network.Size - 3, pool.Capacity);
            Assert.Equal(pool.Capacity, seen.Count);
            Assert.Equal(pool.Capacity, pool.AllocatedCount);
            Assert.DoesNotContain(network.Base, seen);
            Assert.DoesNotContain(network.Base + 1, seen);
            Assert.DoesNotContain(network.Broadcast, seen);
            Assert.All(seen, v => Assert.True(network.Contains(v)));
            Assert.False(pool.TryAllocate(out var none));
            Assert.Equal(IPAddress.None, none);

            // A full pool (no quarantine) hands back exactly the address that was released.
            var released = Inside(network, pick) is var v && IsClient(network, v) ? v : network.Base + 2;
            Assert.True(pool.Release(A(released)));
            Assert.True(pool.TryAllocate(out var again));
            Assert.Equal(A(released), again);
        }, iter: 50);
    }

    [Fact]
    public void TryAllocate_ReleasedAddress_NotHandedOutBeforeQuarantineEnds()
    {
        Gen.Select(SmallNetwork, Gen.Int[1, 600], AllocateReleaseOps, Gen.Int[0, 1000].Array[300]).Sample((network, seconds, ops, steps) =>
        {
            var quarantine = TimeSpan.FromSeconds(seconds);
            var clock = new ManualClock();
            var pool = new Ipv4Pool(network, quarantine, clock);
            var releasedAt = new Dictionary<uint, long>();
            var held = new List<IPAddress>();
            for (var i = 0; i < ops.Length; i++)
            {
                clock.Advance(TimeSpan.FromMilliseconds(steps[i] * 1000L * seconds / 4000));
                if (ops[i].Kind == OpKind.Allocate)
                {
                    if (pool.TryAllocate(out var address))
                    {
                        if (releasedAt.TryGetValue(U(address), out var at))
                        {
                            Assert.True(clock.GetTimestamp() - at >= quarantine.Ticks, $"{address} reused after {TimeSpan.FromTicks(clock.GetTimestamp() - at)}");
                        }
                        held.Add(address);
                    }
                    else
                    {
                        // Failing is allowed only when every free address is still resting.
                        Assert.True(pool.AllocatedCount == pool.Capacity || (releasedAt.Count > 0 && releasedAt.Count == pool.Capacity - pool.AllocatedCount
                            && releasedAt.Keys.All(v => !pool.IsAllocated(A(v)) && pool.IsQuarantined(A(v)))));
                    }
                }
                else if (held.Count > 0)
                {
                    var address = held[(int)(ops[i].Pick % (uint)held.Count)];
                    held.Remove(address);
                    Assert.True(pool.Release(address));
                    Assert.True(pool.IsQuarantined(address));
                    releasedAt[U(address)] = clock.GetTimestamp();
                }
                foreach (var a in held)
                {
                    releasedAt.Remove(U(a));
                }
            }
        }, iter: 300);
    }
}
