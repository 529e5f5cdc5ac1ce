using static Vpn.Core.Tests.WireGuard.UapiSamples;

namespace Vpn.Core.Tests.WireGuard;

public class UapiParserTests
{
    private static DeviceState Parse(string response) => UapiParser.Parse(Encoding.ASCII.GetBytes(response));

    [Fact]
    public void Parse_RealisticResponse_ReadsDeviceAndPeers()
    {
        var device = Parse(GetResponse);

        Assert.Equal(Key(PrivateHex), device.PrivateKey);
        Assert.Equal(51820, device.ListenPort);
        Assert.Equal(1234u, device.FirewallMark);
        Assert.Equal(3, device.Peers.Count);

        var first = device.Peers[0];
        Assert.Equal(Key(Peer1Hex), first.PublicKey);
        Assert.Equal(Key(Psk1Hex), first.PresharedKey);
        Assert.Equal(IPEndPoint.Parse("192.0.2.10:51820"), first.Endpoint);
        Assert.Equal(new DateTimeOffset(2023, 11, 14, 22, 13, 20, TimeSpan.Zero).AddTicks(1_234_567), first.LastHandshake);
        Assert.Equal(1024ul, first.TransmitBytes);
        Assert.Equal(2048ul, first.ReceiveBytes);
        Assert.Equal(TimeSpan.FromSeconds(25), first.PersistentKeepaliveInterval);
        Assert.Equal([IPNetwork.Parse("10.8.0.2/32"), IPNetwork.Parse("fd00:8::2/128")], first.AllowedIps);
        Assert.Equal(1, first.ProtocolVersion);

        var second = device.Peers[1];
        Assert.Equal(Key(Peer2Hex), second.PublicKey);
        Assert.Null(second.PresharedKey);
        Assert.Equal(IPEndPoint.Parse("[2001:db8::1]:51821"), second.Endpoint);
        Assert.Null(second.LastHandshake);
        Assert.Equal(TimeSpan.Zero, second.PersistentKeepaliveInterval);
        Assert.Equal([IPNetwork.Parse("10.8.0.0/24"), IPNetwork.Parse("fd00:8::/64")], second.AllowedIps);

        var third = device.Peers[2];
        Assert.Equal(Key(Peer3Hex), third.PublicKey);
        Assert.Null(third.Endpoint);
        Assert.Empty(third.AllowedIps);
    }

    [Fact]
    public void Parse_FreshDevice_HasNoKeyPortOrPeers()
    {
        var device = Parse("errno=0\n\n");

        Assert.Null(device.PrivateKey);
        Assert.Equal(0, device.ListenPort);
        Assert.Equal(0u, device.FirewallMark);
        Assert.Empty(device.Peers);
    }

    [Fact]
    public void Parse_UnknownKeys_AreIgnored()
    {
        var response = GetResponse
            .Replace("fwmark=1234\n", "fwmark=1234\njc=4\nh1=123456\n", StringComparison.Ordinal)
            .Replace("protocol_version=1\n", "protocol_version=1\nfuture_key=anything at all\n", StringComparison.Ordinal);

        var device = Parse(response);

        Assert.Equal(3, device.Peers.Count);
        Assert.Equal(1234u, device.FirewallMark);
    }

    [Fact]
    public void Parse_BytesAfterBlankLine_AreIgnored()
    {
        var device = Parse("listen_port=1\nerrno=0\n\ngarbage");

        Assert.Equal(1, device.ListenPort);
    }

    [Theory]
    [InlineData("errno=-22\n\n", -22)]
    [InlineData("errno=-1\n\n", -1)]
    [InlineData("errno=22\n\n", 22)]
    [InlineData("listen_port=1\nerrno=-98\n\n", -98)]
    public void Parse_NonZeroErrno_ThrowsUapiExceptionWithErrno(string response, int errno)
    {
        var exception = Assert.Throws<UapiException>(() => Parse(response));

        Assert.Equal(errno, exception.Errno);
        Assert.Equal($"wireguard UAPI error errno={errno}", exception.Message);
    }

    [Theory]
    [InlineData("public_key=zz" + Peer1Hex + "\nerrno=0\n\n", "'public_key'")]
    [InlineData("private_key=" + PrivateHex + "0\nerrno=0\n\n", "'private_key'")]
    [InlineData("public_key=" + Peer1Hex + "\npreshared_key=" + ZeroHex + "x\nerrno=0\n\n", "'preshared_key'")]
    [InlineData("listen_port=fifty\nerrno=0\n\n", "'listen_port'")]
    [InlineData("listen_port=65536\nerrno=0\n\n", "'listen_port'")]
    [InlineData("listen_port=-1\nerrno=0\n\n", "'listen_port'")]
    [InlineData("fwmark=0x10\nerrno=0\n\n", "'fwmark'")]
    [InlineData("no equals sign\nerrno=0\n\n", "no '='")]
    [InlineData("endpoint=192.0.2.1:1\nerrno=0\n\n", "'endpoint' came before the first public_key")]
    [InlineData("allowed_ip=10.0.0.0/8\nerrno=0\n\n", "'allowed_ip' came before the first public_key")]
    [InlineData("public_key=" + Peer1Hex + "\nendpoint=example.com:1\nerrno=0\n\n", "'endpoint'")]
    [InlineData("public_key=" + Peer1Hex + "\nallowed_ip=10.0.0.0/33\nerrno=0\n\n", "'allowed_ip'")]
    [InlineData("public_key=" + Peer1Hex + "\nlast_handshake_time_nsec=1000000000\nerrno=0\n\n", "'last_handshake_time_nsec'")]
    [InlineData("public_key=" + Peer1Hex + "\nlast_handshake_time_sec=999999999999\nerrno=0\n\n", "'last_handshake_time_sec'")]
    [InlineData("public_key=" + Peer1Hex + "\ntx_bytes=-5\nerrno=0\n\n", "'tx_bytes'")]
    [InlineData("errno=zero\n\n", "'errno'")]
    [InlineData("listen_port=1\n\n", "without an errno")]
    [InlineData("listen_port=1\n", "without an errno")]
    [InlineData("listen_port=1\nerrno=0", "without an errno")]
    [InlineData("", "without an errno")]
    public void Parse_MalformedResponse_ThrowsProtocolExceptionNamingKey(string response, string expected)
    {
        var exception = Assert.Throws<UapiProtocolException>(() => Parse(response));

        Assert.Contains(expected, exception.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_MalformedLineAfterErrno_FirstErrorWins()
    {
        var exception = Assert.Throws<UapiProtocolException>(() => Parse("listen_port=x\nerrno=-22\n\n"));

        Assert.Contains("'listen_port'", exception.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_ErrnoLineThenEndOfInput_IsAccepted()
    {
        Assert.Equal(7, Parse("listen_port=7\nerrno=0\n").ListenPort);
    }

    [Theory]
    [InlineData("private_key=" + PrivateHex + "\nlisten_port=" + PrivateHex + "\nerrno=0\n\n")]
    [InlineData("private_key=" + PrivateHex + "z\nerrno=0\n\n")]
    [InlineData("private_key=" + PrivateHex + "\n" + PrivateHex + "\nerrno=0\n\n")]
    [InlineData("private_key=" + PrivateHex + "\nendpoint=" + PrivateHex + "\nerrno=0\n\n")]
    [InlineData("private_key=" + PrivateHex + "\npublic_key=" + Peer1Hex + "\nendpoint=" + PrivateHex + "\nerrno=0\n\n")]
    [InlineData("private_key=" + PrivateHex + "\nerrno=-22\n\n")]
    public void Parse_Failure_MessageNeverContainsPrivateKey(string response)
    {
        var exception = Assert.ThrowsAny<IOException>(() => Parse(response));

        Assert.DoesNotContain(PrivateHex, exception.ToString(), StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain(PrivateBase64, exception.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task ReadAsync_OneByteReads_ParsesLinesSplitAcrossReads()
    {
        using var stream = new TrickleStream(Encoding.ASCII.GetBytes(GetResponse));

        var device = await UapiParser.ReadAsync(stream, TestContext.Current.CancellationToken);

        Assert.Equal(3, device.Peers.Count);
        Assert.Equal([IPNetwork.Parse("10.8.0.0/24"), IPNetwork.Parse("fd00:8::/64")], device.Peers[1].AllowedIps);
    }

    [Fact]
    public async Task ReadAsync_LineLongerThanBuffer_ThrowsProtocolException()
    {
        using var stream = new MemoryStream(Encoding.ASCII.GetBytes("x=" + new string('1', 200_000) + "\nerrno=0\n\n"));

        await Assert.ThrowsAsync<UapiProtocolException>(() => UapiParser.ReadAsync(stream, TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task ReadAsync_SixtyFiveThousandPeers_ReadsAll()
    {
        var response = new StringBuilder("private_key=" + PrivateHex + "\nlisten_port=51820\n");
        for (var i = 0; i < 65_000; i++)
        {
            response.Append("public_key=").Append(Convert.ToHexStringLower(Guid.NewGuid().ToByteArray())).Append(Convert.ToHexStringLower(Guid.NewGuid().ToByteArray()))
                .Append("\npreshared_key=").Append(ZeroHex)
                .Append("\nprotocol_version=1\nendpoint=192.0.2.1:").Append(i)
                .Append("\nlast_handshake_time_sec=0\nlast_handshake_time_nsec=0\ntx_bytes=0\nrx_bytes=0\npersistent_keepalive_interval=0\nallowed_ip=10.")
                .Append(i >> 16).Append('.').Append((i >> 8) & 255).Append('.').Append(i & 255).Append("/32\n");
        }
        response.Append("errno=0\n\n");
        using var stream = new MemoryStream(Encoding.ASCII.GetBytes(response.ToString()));

        var device = await UapiParser.ReadAsync(stream, TestContext.Current.CancellationToken);

        Assert.Equal(65_000, device.Peers.Count);
        Assert.Equal(IPNetwork.Parse("10.0.253.231/32"), device.Peers[64_999].AllowedIps[0]);
    }

    [Fact]
    public void ToString_StatesAndConfigs_NeverContainSecretKeys()
    {
        var device = Parse(GetResponse);
        var config = FullConfig();
        string[] printed = [device.ToString(), device.Peers[0].ToString(), config.ToString(), config.Peers[0].ToString()];

        foreach (var text in printed)
        {
            foreach (var secret in new[] { PrivateHex, PrivateBase64, Psk1Hex, Psk1Base64 })
            {
                Assert.DoesNotContain(secret, text, StringComparison.OrdinalIgnoreCase);
            }
        }
        Assert.Contains("PrivateKey = (redacted)", printed[0], StringComparison.Ordinal);
        Assert.Contains("PresharedKey = (redacted)", printed[1], StringComparison.Ordinal);
        Assert.Contains("PublicKey = d4kgrvefJyBu40Zseg4lS/HnbYnMQJN98i7u5fp2iU0=", printed[1], StringComparison.Ordinal);
        Assert.Contains("PrivateKey = (redacted)", printed[2], StringComparison.Ordinal);
        Assert.Contains("PresharedKey = (redacted)", printed[3], StringComparison.Ordinal);
    }

    [Fact]
    public void ToString_WithoutKeys_PrintsNullForEachSecretAndEveryOtherMember()
    {
        var peer = new PeerConfig { PublicKey = Key(PrivateHex), AllowedIps = [IPNetwork.Parse("10.0.0.2/32")] };

        Assert.Equal("DeviceState { PrivateKey = null, ListenPort = 0, FirewallMark = 0, Peers.Count = 0 }", new DeviceState().ToString());
        Assert.Equal("DeviceConfig { PrivateKey = null, ListenPort = 51820, FirewallMark = , ReplacePeers = True, Peers.Count = 1 }",
            new DeviceConfig { ListenPort = 51820, ReplacePeers = true, Peers = [peer] }.ToString());
        Assert.Equal($"PeerConfig {{ PublicKey = {Key(PrivateHex).ToBase64()}, Remove = False, UpdateOnly = False, PresharedKey = null, Endpoint = , " +
            "PersistentKeepaliveInterval = , ReplaceAllowedIps = False, AllowedIps = [10.0.0.2/32] }", peer.ToString());
        Assert.Equal($"PeerState {{ PublicKey = {Key(PrivateHex).ToBase64()}, PresharedKey = null, Endpoint = , PersistentKeepaliveInterval = 00:00:00, " +
            "LastHandshake = , ReceiveBytes = 0, TransmitBytes = 0, AllowedIps = [], ProtocolVersion = 0 }", new PeerState { PublicKey = Key(PrivateHex) }.ToString());
    }

    /// <summary>Returns one byte per read, as a slow socket might.</summary>
    private sealed class TrickleStream(byte[] data) : MemoryStream(data)
    {
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            base.ReadAsync(buffer[..Math.Min(1, buffer.Length)], cancellationToken);
    }
}
