namespace Vpn.Core.Tests.Netlink;

// Expected bytes are little-endian, as on every host the agent runs on (x86-64, arm64).
public class NetlinkMessagesTests
{
    [Fact]
    public void NewAddress_Ipv4_EncodesByteExact()
    {
        var message = NetlinkMessages.NewAddress(42, 7, IPAddress.Parse("10.64.0.1"), 16);

        Assert.Equal(Hex(
            "28000000 1400 0505 2a000000 00000000", // len 40, RTM_NEWADDR, REQUEST|ACK|REPLACE|CREATE, seq 42, pid 0
            "02 10 00 00 07000000",                 // AF_INET, /16, flags 0, scope universe, index 7
            "0800 0200 0a400001",                   // IFA_LOCAL 10.64.0.1
            "0800 0100 0a400001"),                  // IFA_ADDRESS 10.64.0.1
            message);
    }

    [Fact]
    public void NewAddress_Ipv6_EncodesByteExact()
    {
        var message = NetlinkMessages.NewAddress(1, 3, IPAddress.Parse("fd00::1"), 64);

        Assert.Equal(Hex(
            "40000000 1400 0505 01000000 00000000",
            "0a 40 00 00 03000000",
            "1400 0200 fd000000000000000000000000000001",
            "1400 0100 fd000000000000000000000000000001"),
            message);
    }

    [Theory]
    [InlineData("10.0.0.1", 33)]
    [InlineData("10.0.0.1", -1)]
    [InlineData("fd00::1", 129)]
    public void NewAddress_PrefixOutOfRange_Throws(string address, int prefixLength)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => NetlinkMessages.NewAddress(1, 1, IPAddress.Parse(address), prefixLength));
    }

    [Fact]
    public void SetLinkUp_Index7_EncodesByteExact()
    {
        var message = NetlinkMessages.SetLinkUp(43, 7);

        Assert.Equal(Hex(
            "20000000 1000 0500 2b000000 00000000", // len 32, RTM_NEWLINK, REQUEST|ACK, seq 43
            "00 00 0000 07000000 01000000 01000000"), // AF_UNSPEC, type 0, index 7, flags IFF_UP, change IFF_UP
            message);
    }

    [Fact]
    public void SetMtu_Index7_EncodesByteExact()
    {
        var message = NetlinkMessages.SetMtu(44, 7, 1420);

        Assert.Equal(Hex(
            "28000000 1000 0500 2c000000 00000000",
            "00 00 0000 07000000 00000000 00000000", // change 0: no flag is touched
            "0800 0400 8c050000"),                   // IFLA_MTU 1420
            message);
    }

    [Fact]
    public void GetLink_ShortName_EncodesNulTerminatedName()
    {
        var message = NetlinkMessages.GetLink(1, "wg0");

        Assert.Equal(Hex(
            "28000000 1200 0500 01000000 00000000", // RTM_GETLINK
            "00 00 0000 00000000 00000000 00000000",
            "0800 0300 77673000"),                  // IFLA_IFNAME "wg0\0"
            message);
    }

    [Fact]
    public void GetLink_UnalignedName_PadsAttributeButNotItsLength()
    {
        var message = NetlinkMessages.GetLink(1, "wg10");

        Assert.Equal(Hex(
            "2c000000 1200 0500 01000000 00000000",
            "00 00 0000 00000000 00000000 00000000",
            "0900 0300 7767313000 000000"),
            message);
    }

    [Theory]
    [InlineData("")]
    [InlineData("sixteen-chars-xx")]
    [InlineData("wg\00")]
    public void GetLink_InvalidName_Throws(string name)
    {
        Assert.Throws<ArgumentException>(() => NetlinkMessages.GetLink(1, name));
    }

    [Fact]
    public void ReadError_NegativeErrorWithExtendedAck_ReturnsErrnoAndKernelMessage()
    {
        var reply = Hex(
            "2c000000 0200 0003 05000000 99000000", // NLMSG_ERROR, flags CAPPED|ACK_TLVS, seq 5
            "edffffff",                             // error -19
            "28000000 1400 0505 05000000 00000000", // the request's header only (capped)
            "0800 0100 62616400");                  // NLMSGERR_ATTR_MSG "bad\0"
        ReadOnlySpan<byte> buffer = reply;

        Assert.True(NetlinkMessages.TryReadMessage(ref buffer, out var header, out var payload));
        var (errno, message) = NetlinkMessages.ReadError(header.Flags, payload);

        Assert.Equal(NetlinkMessages.NlmsgError, header.Type);
        Assert.Equal(5u, header.Sequence);
        Assert.Equal(19, errno);
        Assert.Equal("bad", message);
        Assert.True(buffer.IsEmpty);
    }

    [Fact]
    public void ReadError_Acknowledgement_ReturnsZero()
    {
        var payload = Hex("00000000", "20000000 1000 0500 01000000 00000000");

        Assert.Equal((0, (string?)null), NetlinkMessages.ReadError(NetlinkMessages.NlmFCapped, payload));
    }

    [Fact]
    public void TryReadMessage_TwoMessages_SplitsAtAlignedLength()
    {
        ReadOnlySpan<byte> buffer = Hex(
            "11000000 1000 0000 01000000 00000000 ff 000000", // 17 bytes, padded to 20
            "14000000 0200 0000 01000000 00000000 00000000");

        Assert.True(NetlinkMessages.TryReadMessage(ref buffer, out var first, out var firstPayload));
        Assert.True(NetlinkMessages.TryReadMessage(ref buffer, out var second, out _));
        Assert.False(NetlinkMessages.TryReadMessage(ref buffer, out _, out _));

        Assert.Equal(NetlinkMessages.RtmNewLink, first.Type);
        Assert.Equal([0xff], firstPayload.ToArray());
        Assert.Equal(NetlinkMessages.NlmsgError, second.Type);
    }

    [Fact]
    public void TryReadMessage_LengthBeyondBuffer_ThrowsNetlinkException()
    {
        var bytes = Hex("40000000 1000 0000 01000000 00000000");

        var error = Assert.Throws<NetlinkException>(() =>
        {
            ReadOnlySpan<byte> buffer = bytes;
            NetlinkMessages.TryReadMessage(ref buffer, out _, out _);
        });
        Assert.Equal(74, error.Errno); // EBADMSG
    }

    private static byte[] Hex(params string[] parts) => Convert.FromHexString(string.Concat(parts).Replace(" ", "", StringComparison.Ordinal));
}
