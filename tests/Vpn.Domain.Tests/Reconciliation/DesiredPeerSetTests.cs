using Vpn.Domain.Reconciliation;

namespace Vpn.Domain.Tests.Reconciliation;

public class DesiredPeerSetTests
{
    private static readonly Ipv4Network Pool = Ipv4Network.Parse("10.64.0.0/16");

    private static WireGuardKey Key(int index)
    {
        var bytes = new byte[WireGuardKey.Length];
        BitConverter.TryWriteBytes(bytes, index + 1);
        return WireGuardKey.FromBytes(bytes);
    }

    private static IPAddress Client(int index) => Ipv4Network.ToAddress(Pool.Base + 2 + (uint)index);

    [Fact]
    public void TryCreate_UniqueKeysAndAddresses_AcceptsTheSameContent()
    {
        Gen.Int[0, 5000].ArrayUnique[0, 50].Sample(indexes =>
        {
            var peers = indexes.Select((k, i) => new DesiredPeer(Key(k), Client(indexes[(i + 1) % indexes.Length]))).ToArray();

            Assert.True(DesiredPeerSet.TryCreate(peers, Pool, out var set, out var problems));

            Assert.Empty(problems);
            Assert.Equal(peers.Length, set.Count);
            Assert.All(peers, p => Assert.Equal(p.Address, set.Peers[p.PublicKey]));
        }, iter: 500);
    }

    [Fact]
    public void TryCreate_OneDuplicatedKeyOrAddress_RejectsTheWholeSet()
    {
        Gen.Select(Gen.Int[0, 5000].ArrayUnique[1, 50], Gen.Int, Gen.Bool).Sample((indexes, pick, duplicateKey) =>
        {
            var peers = indexes.Select((k, i) => new DesiredPeer(Key(k), Client(i))).ToList();
            var victim = peers[(int)((uint)pick % (uint)peers.Count)];
            peers.Add(duplicateKey ? victim with { Address = Client(9999) } : victim with { PublicKey = Key(9999) });

            Assert.False(DesiredPeerSet.TryCreate(peers, Pool, out var set, out var problems));

            Assert.Null(set);
            Assert.Single(problems);
            Assert.Contains(duplicateKey ? "more than once" : "more than one peer", problems[0]);
        }, iter: 500);
    }

    [Theory]
    [InlineData("10.64.0.0")]      // network
    [InlineData("10.64.0.1")]      // gateway, the node's own tunnel address
    [InlineData("10.64.255.255")]  // broadcast
    [InlineData("10.65.0.2")]      // outside the pool
    public void TryCreate_AddressNotAClientOfThePool_Rejects(string address)
    {
        Assert.False(DesiredPeerSet.TryCreate([new DesiredPeer(Key(1), Client(0)), new DesiredPeer(Key(2), IPAddress.Parse(address))], Pool, out _, out var problems));

        Assert.Contains(address, Assert.Single(problems));
    }

    [Fact]
    public void TryCreate_WithoutPool_AcceptsAnyIpv4()
    {
        Assert.True(DesiredPeerSet.TryCreate([new DesiredPeer(Key(1), IPAddress.Parse("192.0.2.1"))], null, out _, out _));
    }

    [Fact]
    public void TryCreate_ZeroKeyIpv6AndMissingAddress_ReportsEveryProblem()
    {
        DesiredPeer[] peers =
        [
            new(default, Client(0)),
            new(Key(1), IPAddress.Parse("fd00::2")),
            new(Key(2), null!),
            new(Key(3), Client(3)),
            new(Key(3), Client(3)),
        ];

        Assert.False(DesiredPeerSet.TryCreate(peers, Pool, out _, out var problems));

        Assert.Equal(5, problems.Count);
    }
}
