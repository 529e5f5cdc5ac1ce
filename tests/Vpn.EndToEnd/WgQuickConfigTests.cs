namespace Vpn.EndToEnd;

/// <summary>The test's own wg-quick parser (no network): it must be right before it judges entry's output.</summary>
public sealed class WgQuickConfigTests
{
    private const string Sample = """
        # written by entry
        [Interface]
        PrivateKey = <your device private key>
        Address = 10.64.0.2/32
        DNS = 10.64.0.1, 10.64.0.53

        [Peer]
        PublicKey = xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=
        Endpoint = 203.0.113.7:51820
        AllowedIPs = 0.0.0.0/0, ::/0
        PersistentKeepalive = 25
        """;

    [Fact]
    public void Parse_reads_interface_and_peer()
    {
        var config = WgQuickConfig.Parse(Sample);

        Assert.True(config.HasPrivateKeyPlaceholder);
        Assert.Equal(["10.64.0.2/32"], config.Interface.Addresses);
        Assert.Equal(["10.64.0.1", "10.64.0.53"], config.Interface.Dns);
        var peer = Assert.Single(config.Peers);
        Assert.Equal("xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=", peer.PublicKey); // '=' inside the value survives
        Assert.Equal("203.0.113.7:51820", peer.Endpoint);
        Assert.Equal(["0.0.0.0/0", "::/0"], peer.AllowedIps);
        Assert.Equal(25, peer.PersistentKeepalive);
    }

    [Fact]
    public void Parse_dual_stack_file_reads_every_address_and_resolver_in_order()
    {
        const string DualStack = """
            [Interface]
            PrivateKey = <your device private key>
            Address = 10.64.0.2/32, fd64:6400::2/128
            DNS = 10.64.0.1, fd64:6400::1

            [Peer]
            PublicKey = xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=
            Endpoint = 203.0.113.7:51820
            AllowedIPs = 0.0.0.0/0, ::/0
            PersistentKeepalive = 25
            """;

        var config = WgQuickConfig.Parse(DualStack);

        Assert.Equal(["10.64.0.2/32", "fd64:6400::2/128"], config.Interface.Addresses);
        Assert.Equal(["10.64.0.1", "fd64:6400::1"], config.Interface.Dns);
        Assert.Equal(["0.0.0.0/0", "::/0"], Assert.Single(config.Peers).AllowedIps);
    }

    [Fact]
    public void Parse_repeated_address_lines_are_one_list()
    {
        var config = WgQuickConfig.Parse("[Interface]\nAddress = 10.64.0.2/32\nAddress = fd64:6400::2/128\n[Peer]\nPublicKey = a=\n");

        Assert.Equal(["10.64.0.2/32", "fd64:6400::2/128"], config.Interface.Addresses);
    }

    [Fact]
    public void Parse_is_case_insensitive_tolerates_crlf_comments_and_unknown_keys()
    {
        var text = "[interface]\r\nprivatekey = abc= # key\r\naddress=10.64.0.9/32\r\nMTU = 1420\r\n[peer]\r\npublickey=def=\r\nallowedips=0.0.0.0/0\r\n";

        var config = WgQuickConfig.Parse(text);

        Assert.Equal("abc=", config.Interface.PrivateKey);
        Assert.False(config.HasPrivateKeyPlaceholder);
        Assert.Equal(["10.64.0.9/32"], config.Interface.Addresses);
        Assert.Empty(config.Interface.Dns);
        var peer = Assert.Single(config.Peers);
        Assert.Equal("def=", peer.PublicKey);
        Assert.Null(peer.Endpoint);
        Assert.Null(peer.PersistentKeepalive);
    }

    [Fact]
    public void WithPrivateKey_substitutes_only_the_key()
    {
        var config = WgQuickConfig.Parse(Sample).WithPrivateKey("cHJpdmF0ZQ==");

        Assert.Equal("cHJpdmF0ZQ==", config.Interface.PrivateKey);
        Assert.False(config.HasPrivateKeyPlaceholder);
        Assert.Equal("203.0.113.7:51820", config.Peers[0].Endpoint);
    }

    [Theory]
    [InlineData("Address = 10.64.0.2/32\n[Interface]\n")]                 // outside a section
    [InlineData("[Peer]\nPublicKey = a=\n")]                              // no [Interface]
    [InlineData("[Interface]\n[Interface]\n")]                            // two [Interface]
    [InlineData("[Interface]\nAddress 10.64.0.2/32\n")]                   // not key = value
    [InlineData("[Interface]\n[Peer]\nEndpoint = 1.2.3.4:5\n")]           // peer without key
    [InlineData("[Interface]\n[Peer]\nPublicKey = a=\nPersistentKeepalive = x\n")]
    [InlineData("[Interface]\n[Wat]\n")]
    public void Parse_rejects_malformed_text(string text) =>
        Assert.Throws<FormatException>(() => WgQuickConfig.Parse(text));
}
