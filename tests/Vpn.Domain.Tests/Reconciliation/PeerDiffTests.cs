using Vpn.Domain.Reconciliation;

namespace Vpn.Domain.Tests.Reconciliation;

public class PeerDiffTests
{
    // Keys and addresses drawn from small ranges so desired and live sets overlap often.
    private static WireGuardKey Key(int index)
    {
        var bytes = new byte[WireGuardKey.Length];
        BitConverter.TryWriteBytes(bytes, index + 1);
        bytes[31] = 0x5a;
        return WireGuardKey.FromBytes(bytes);
    }

    private static IPAddress Address(int index) => new([10, 64, (byte)(index / 250), (byte)(2 + (index % 250))]);

    private static IPNetwork Host(IPAddress address) => new(address, 32);

    private static DesiredPeerSet Set(params (int Key, int Address)[] peers)
    {
        Assert.True(DesiredPeerSet.TryCreate(peers.Select(p => new DesiredPeer(Key(p.Key), Address(p.Address))), null, out var set, out var problems),
            string.Join("; ", problems));
        return set;
    }

    /// <summary>Allowed-IP shapes a live peer may have; only Exact matches its desired /32.</summary>
    public enum Shape
    {
        Exact,
        OtherHost,
        Empty,
        ExactPlusExtra,
        Ipv6Host,
        WiderNetwork,
    }

    private static IReadOnlyList<IPNetwork> AllowedIps(Shape shape, IPAddress desired, int salt) => shape switch
    {
        Shape.Exact => [Host(desired)],
        Shape.OtherHost => [Host(Address(salt + 300))],
        Shape.Empty => [],
        Shape.ExactPlusExtra => [Host(desired), Host(Address(salt + 600))],
        Shape.Ipv6Host => [new IPNetwork(IPAddress.Parse($"fd00::{salt + 1:x}"), 128)],
        _ => [new IPNetwork(new IPAddress([10, 64, 0, 0]), 24)],
    };

    /// <summary>The device after the diff is applied, as UAPI would do it (remove; replace_allowed_ips).</summary>
    private static Dictionary<WireGuardKey, IReadOnlyList<IPNetwork>> Apply(IEnumerable<LivePeer> live, PeerDiff diff)
    {
        var device = new Dictionary<WireGuardKey, IReadOnlyList<IPNetwork>>();
        foreach (var peer in live)
        {
            device.TryAdd(peer.PublicKey, peer.AllowedIps);
        }
        foreach (var key in diff.Removes)
        {
            Assert.True(device.Remove(key), "removed a peer the device does not hold");
        }
        foreach (var peer in diff.Corrections)
        {
            Assert.True(device.ContainsKey(peer.PublicKey), "corrected a peer the device does not hold");
            device[peer.PublicKey] = [Host(peer.Address)];
        }
        foreach (var peer in diff.Adds)
        {
            Assert.True(device.TryAdd(peer.PublicKey, [Host(peer.Address)]), "added a peer the device already holds");
        }
        return device;
    }

    private static readonly Gen<(DesiredPeerSet Desired, LivePeer[] Live)> Scenario =
        Gen.Select(Gen.Int[0, 40].ArrayUnique[0, 30], Gen.Int[0, 999].ArrayUnique[30], Gen.Select(Gen.Int[0, 50], Gen.Enum<Shape>(), Gen.Int[0, 99]).Array[0, 40])
            .Select((desiredKeys, addresses, live) =>
            {
                Assert.True(DesiredPeerSet.TryCreate(desiredKeys.Select((k, i) => new DesiredPeer(Key(k), Address(addresses[i]))), null, out var set, out _));
                var livePeers = live.Select(l => new LivePeer(Key(l.Item1),
                    AllowedIps(l.Item2, set.Peers.TryGetValue(Key(l.Item1), out var a) ? a : Address(l.Item3 + 700), l.Item3))).ToArray();
                return (set, livePeers);
            });

    [Fact]
    public void Compute_RandomSets_ApplyingTheDiffYieldsExactlyTheDesiredSet()
    {
        Scenario.Sample(s =>
        {
            var diff = PeerDiff.Compute(s.Desired, s.Live);

            var device = Apply(s.Live, diff);
            Assert.Equal(s.Desired.Count, device.Count);
            foreach (var (key, address) in s.Desired.Peers)
            {
                Assert.True(PeerDiff.IsExactly(device[key], address));
            }
            Assert.True(PeerDiff.Compute(s.Desired, device.Select(p => new LivePeer(p.Key, p.Value))).IsEmpty, "a second diff is not empty");
        }, iter: 2000);
    }

    [Fact]
    public void Compute_RandomSets_TouchesOnlyPeersThatDiffer()
    {
        Scenario.Sample(s =>
        {
            var diff = PeerDiff.Compute(s.Desired, s.Live);

            var first = new Dictionary<WireGuardKey, LivePeer>();
            foreach (var peer in s.Live)
            {
                first.TryAdd(peer.PublicKey, peer);
            }
            var touched = diff.Adds.Select(p => p.PublicKey).Concat(diff.Removes).Concat(diff.Corrections.Select(p => p.PublicKey)).ToList();
            Assert.Equal(touched.Count, touched.Distinct().Count());
            Assert.All(diff.Adds, p => Assert.False(first.ContainsKey(p.PublicKey)));
            Assert.All(diff.Removes, k => Assert.False(s.Desired.Peers.ContainsKey(k)));
            Assert.All(diff.Corrections, p => Assert.False(PeerDiff.IsExactly(first[p.PublicKey].AllowedIps, s.Desired.Peers[p.PublicKey])));
            var matching = first.Values.Count(p => s.Desired.Peers.TryGetValue(p.PublicKey, out var a) && PeerDiff.IsExactly(p.AllowedIps, a));
            Assert.Equal(matching, diff.Unchanged);
            Assert.Equal(s.Desired.Count - first.Keys.Count(s.Desired.Peers.ContainsKey), diff.Adds.Count);
            Assert.Equal(first.Count, diff.Unchanged + diff.Removes.Count + diff.Corrections.Count);
        }, iter: 2000);
    }

    [Fact]
    public void Compute_NothingLive_AddsEveryDesiredPeer()
    {
        var diff = PeerDiff.Compute(Set((1, 1), (2, 2)), []);

        Assert.Equal([new DesiredPeer(Key(1), Address(1)), new DesiredPeer(Key(2), Address(2))], diff.Adds.OrderBy(p => p.Address.ToString()));
        Assert.Empty(diff.Removes);
        Assert.Empty(diff.Corrections);
    }

    [Fact]
    public void Compute_NothingDesired_RemovesEveryLivePeer()
    {
        var diff = PeerDiff.Compute(DesiredPeerSet.Empty, [new LivePeer(Key(1), [Host(Address(1))]), new LivePeer(Key(2), [])]);

        Assert.Equal([Key(1), Key(2)], diff.Removes);
        Assert.Empty(diff.Adds);
        Assert.Empty(diff.Corrections);
    }

    [Fact]
    public void Compute_LivePeerMatches_IsUntouched()
    {
        var diff = PeerDiff.Compute(Set((1, 1)), [new LivePeer(Key(1), [Host(Address(1))])]);

        Assert.True(diff.IsEmpty);
        Assert.Equal(1, diff.Unchanged);
    }

    [Theory]
    [InlineData(Shape.OtherHost)]
    [InlineData(Shape.Empty)]
    [InlineData(Shape.ExactPlusExtra)]
    [InlineData(Shape.Ipv6Host)]
    [InlineData(Shape.WiderNetwork)]
    public void Compute_AllowedIpsDiffer_CorrectsToExactlyTheDesiredHost(Shape shape)
    {
        var diff = PeerDiff.Compute(Set((1, 1)), [new LivePeer(Key(1), AllowedIps(shape, Address(1), 7))]);

        Assert.Equal([new DesiredPeer(Key(1), Address(1))], diff.Corrections);
        Assert.Empty(diff.Adds);
        Assert.Empty(diff.Removes);
    }

    [Fact]
    public void Compute_MixedDrift_ReportsEachKindOnce()
    {
        var diff = PeerDiff.Compute(Set((1, 1), (2, 2), (3, 3)),
        [
            new LivePeer(Key(1), [Host(Address(1))]),      // as desired
            new LivePeer(Key(2), [Host(Address(9))]),      // allowed IPs changed by hand
            new LivePeer(Key(4), [Host(Address(4))]),      // rogue
        ]);

        Assert.Equal([new DesiredPeer(Key(3), Address(3))], diff.Adds);
        Assert.Equal([Key(4)], diff.Removes);
        Assert.Equal([new DesiredPeer(Key(2), Address(2))], diff.Corrections);
        Assert.Equal(1, diff.Unchanged);
        Assert.Equal(3, diff.ChangeCount);
    }

    [Fact]
    public void Compute_KeyListedTwiceLive_JudgedOnceByFirstListing()
    {
        var diff = PeerDiff.Compute(Set((1, 1)), [new LivePeer(Key(1), [Host(Address(1))]), new LivePeer(Key(1), [])]);

        Assert.True(diff.IsEmpty);
    }

    [Fact]
    public void IsExactly_SameAddressAsIpv4MappedIpv6_IsFalse()
    {
        var address = Address(1);

        Assert.False(PeerDiff.IsExactly([new IPNetwork(address.MapToIPv6(), 128)], address));
        Assert.True(PeerDiff.IsExactly([Host(address)], address));
    }
}

public class PeerDiffDualStackTests
{
    private static readonly Vpn.Domain.Addressing.Ipv6ClientNetwork Network6 =
        Vpn.Domain.Addressing.Ipv6ClientNetwork.TryCreate("fd64:6400::/64", Vpn.Domain.Addressing.Ipv4Network.Parse("10.64.0.0/16"), out var n, out _)
            ? n : throw new InvalidOperationException();

    private static WireGuardKey Key(byte b)
    {
        var bytes = new byte[WireGuardKey.Length];
        bytes[0] = b;
        bytes[31] = 0x5a;
        return WireGuardKey.FromBytes(bytes);
    }

    [Fact]
    public void IsExactly_BothHostsEitherOrder_True()
    {
        var v4 = IPAddress.Parse("10.64.0.2");
        var v6 = IPAddress.Parse("fd64:6400::2");

        Assert.True(PeerDiff.IsExactly([new IPNetwork(v4, 32), new IPNetwork(v6, 128)], v4, v6));
        Assert.True(PeerDiff.IsExactly([new IPNetwork(v6, 128), new IPNetwork(v4, 32)], v4, v6));
        Assert.False(PeerDiff.IsExactly([new IPNetwork(v4, 32)], v4, v6));
        Assert.False(PeerDiff.IsExactly([new IPNetwork(v4, 32), new IPNetwork(IPAddress.Parse("fd64:6400::3"), 128)], v4, v6));
        Assert.False(PeerDiff.IsExactly([new IPNetwork(v4, 32), new IPNetwork(v6, 128), new IPNetwork(IPAddress.Parse("fd64:6400::3"), 128)], v4, v6));
        Assert.False(PeerDiff.IsExactly([new IPNetwork(v4, 32), new IPNetwork(IPAddress.Parse("fd64:6400::"), 64)], v4, v6));
    }

    [Fact]
    public void Compute_WithIpv6Pairing_IPv4OnlyPeerIsCorrectedAndAddsCarryBoth()
    {
        var desired = new Dictionary<WireGuardKey, IPAddress>
        {
            [Key(1)] = IPAddress.Parse("10.64.0.2"),
            [Key(2)] = IPAddress.Parse("10.64.0.3"),
            [Key(3)] = IPAddress.Parse("10.64.0.4"),
        };
        LivePeer[] live =
        [
            new(Key(1), [new IPNetwork(IPAddress.Parse("10.64.0.2"), 32)]), // a peer from before dual stack
            new(Key(2), [new IPNetwork(IPAddress.Parse("fd64:6400::3"), 128), new IPNetwork(IPAddress.Parse("10.64.0.3"), 32)]),
        ];

        var diff = PeerDiff.Compute(desired, live, Network6.AddressFor);

        Assert.Equal(1, diff.Unchanged);
        var correction = Assert.Single(diff.Corrections);
        Assert.Equal(new DesiredPeer(Key(1), IPAddress.Parse("10.64.0.2"), IPAddress.Parse("fd64:6400::2")), correction);
        var add = Assert.Single(diff.Adds);
        Assert.Equal(new DesiredPeer(Key(3), IPAddress.Parse("10.64.0.4"), IPAddress.Parse("fd64:6400::4")), add);
        Assert.Empty(diff.Removes);
    }

    [Fact]
    public void TryCreate_Ipv6NotPairedOrDuplicated_RejectsTheSet()
    {
        var pool = Vpn.Domain.Addressing.Ipv4Network.Parse("10.64.0.0/16");
        DesiredPeer[] unpaired = [new(Key(1), IPAddress.Parse("10.64.0.2"), IPAddress.Parse("fd64:6400::9"))];
        DesiredPeer[] wrongFamily = [new(Key(1), IPAddress.Parse("10.64.0.2"), IPAddress.Parse("10.64.0.9"))];
        DesiredPeer[] paired = [new(Key(1), IPAddress.Parse("10.64.0.2"), IPAddress.Parse("fd64:6400::2")), new(Key(2), IPAddress.Parse("10.64.0.3"))];
        DesiredPeer[] duplicate = [new(Key(1), IPAddress.Parse("10.64.0.2"), IPAddress.Parse("fd64:6400::7")), new(Key(2), IPAddress.Parse("10.64.0.3"), IPAddress.Parse("fd64:6400::7"))];

        Assert.False(DesiredPeerSet.TryCreate(unpaired, pool, Network6, out _, out var problems));
        Assert.Contains(problems, p => p.Contains("fd64:6400::9", StringComparison.Ordinal));
        Assert.False(DesiredPeerSet.TryCreate(wrongFamily, pool, Network6, out _, out _));
        Assert.True(DesiredPeerSet.TryCreate(paired, pool, Network6, out var set, out _));
        Assert.Equal(2, set.Count);
        Assert.False(DesiredPeerSet.TryCreate(duplicate, pool, null, out _, out problems));
        Assert.Contains(problems, p => p.Contains("more than once", StringComparison.Ordinal) || p.Contains("more than one", StringComparison.Ordinal));
    }
}
