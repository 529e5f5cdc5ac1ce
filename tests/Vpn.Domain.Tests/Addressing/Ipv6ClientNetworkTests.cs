namespace Vpn.Domain.Tests.Addressing;

public class Ipv6ClientNetworkTests
{
    private static readonly Ipv4Network Pool16 = Ipv4Network.Parse("10.64.0.0/16");

    private static Ipv6ClientNetwork Create(string text, Ipv4Network pool4)
    {
        Assert.True(Ipv6ClientNetwork.TryCreate(text, pool4, out var network, out var error), error);
        return network;
    }

    [Fact]
    public void AddressFor_ContractExample_MirrorsTheIpv4Offset()
    {
        var network = Create("fd64:6400::/64", Pool16);

        Assert.Equal(IPAddress.Parse("fd64:6400::2"), network.AddressFor(IPAddress.Parse("10.64.0.2")));
        Assert.Equal(IPAddress.Parse("fd64:6400::105"), network.AddressFor(IPAddress.Parse("10.64.1.5")));
        Assert.Equal(IPAddress.Parse("fd64:6400::fffe"), network.AddressFor(IPAddress.Parse("10.64.255.254")));
        Assert.Equal(IPAddress.Parse("fd64:6400::1"), network.Gateway);
        Assert.Equal("fd64:6400::/64", network.ToString());
    }

    [Fact]
    public void AddressFor_AddressOutsideThePool_Throws()
    {
        var network = Create("fd64:6400::/64", Pool16);

        Assert.Throws<ArgumentException>(() => network.AddressFor(IPAddress.Parse("10.65.0.2")));
        Assert.Throws<ArgumentException>(() => network.AddressFor(IPAddress.Parse("fd64:6400::2")));
    }

    [Theory]
    [InlineData("fd64:6400::/64", "10.64.0.0/16", true)]
    [InlineData("fd64:6400::/112", "10.64.0.0/16", true)]
    [InlineData("fd64:6400::/113", "10.64.0.0/16", false)] // 15 host bits for a 16-bit pool
    [InlineData("fd64:6400::/120", "10.64.0.0/24", true)]
    [InlineData("fd64:6400::1/64", "10.64.0.0/16", false)] // host bits set
    [InlineData("10.64.0.0/16", "10.64.0.0/16", false)]
    [InlineData("fd64:6400::", "10.64.0.0/16", false)]
    [InlineData("fd64:6400::/0", "10.64.0.0/16", false)]
    [InlineData("fd64:6400::/129", "10.64.0.0/16", false)]
    [InlineData("fe80::%2/64", "10.64.0.0/16", false)]
    [InlineData("fe80::/64", "10.64.0.0/16", false)] // link-local
    [InlineData("ff00::/64", "10.64.0.0/16", false)]
    [InlineData("::ffff:0:0/112", "10.64.0.0/16", false)]
    [InlineData("2001:db8:64::/64", "10.64.0.0/16", true)]
    [InlineData("", "10.64.0.0/16", false)]
    [InlineData("fd64:6400::/+64", "10.64.0.0/16", false)]
    public void TryCreate_Networks_AcceptsOnlyCanonicalLargeEnough(string text, string pool, bool valid)
    {
        var ok = Ipv6ClientNetwork.TryCreate(text, Ipv4Network.Parse(pool), out var network, out var error);

        Assert.Equal(valid, ok);
        Assert.Equal(valid, network is not null);
        Assert.Equal(valid, error is null);
    }

    [Fact]
    public void AddressFor_EveryPoolAddress_IsUniqueAndRoundTrips()
    {
        var pool = Ipv4Network.Parse("100.96.0.0/20");
        var network = Create("2001:db8:64::/100", pool);
        var seen = new HashSet<IPAddress>();

        Gen.UInt[0, (uint)pool.Size - 1].Sample(offset =>
        {
            var v4 = Ipv4Network.ToAddress(pool.Base + offset);
            var v6 = network.AddressFor(v4);
            Assert.True(network.Network.Contains(v6));
            Assert.True(network.TryGetIpv4(v6, out var back));
            Assert.Equal(v4, back);
        });
        for (var offset = 0u; offset < pool.Size; offset++)
        {
            Assert.True(seen.Add(network.AddressFor(Ipv4Network.ToAddress(pool.Base + offset))));
        }
    }

    [Fact]
    public void TryGetIpv4_AddressBeyondThePoolsMirror_False()
    {
        var network = Create("fd64:6400::/64", Ipv4Network.Parse("10.64.0.0/24"));

        Assert.False(network.TryGetIpv4(IPAddress.Parse("fd64:6400::100"), out _));
        Assert.False(network.TryGetIpv4(IPAddress.Parse("fd64:6300::2"), out _));
        Assert.False(network.TryGetIpv4(IPAddress.Parse("10.64.0.2"), out _));
        Assert.True(network.TryGetIpv4(IPAddress.Parse("fd64:6400::ff"), out var last));
        Assert.Equal(IPAddress.Parse("10.64.0.255"), last);
    }
}
