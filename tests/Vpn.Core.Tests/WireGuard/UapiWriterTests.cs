using System.Buffers;
using static Vpn.Core.Tests.WireGuard.UapiSamples;

namespace Vpn.Core.Tests.WireGuard;

public class UapiWriterTests
{
    private static string WriteSet(DeviceConfig config)
    {
        var output = new ArrayBufferWriter<byte>();
        UapiWriter.WriteSet(config, output);
        return Encoding.ASCII.GetString(output.WrittenSpan);
    }

    [Fact]
    public void WriteSet_FullConfig_WritesProtocolOrder()
    {
        Assert.Equal(FullConfigRequest, WriteSet(FullConfig()));
    }

    [Fact]
    public void WriteSet_EmptyConfig_WritesOnlySetAndBlankLine()
    {
        Assert.Equal("set=1\n\n", WriteSet(new DeviceConfig()));
    }

    [Fact]
    public void WriteGet_Always_WritesGetAndBlankLine()
    {
        var output = new ArrayBufferWriter<byte>();
        UapiWriter.WriteGet(output);
        Assert.Equal("get=1\n\n", Encoding.ASCII.GetString(output.WrittenSpan));
    }

    [Fact]
    public void WriteSet_ScopedIpv6EndpointAndPortZero_WritesBracketsAndZone()
    {
        var config = new DeviceConfig
        {
            ListenPort = 0,
            Peers = [new PeerConfig { PublicKey = Key(Peer1Hex), Endpoint = new IPEndPoint(IPAddress.Parse("fe80::1%2"), 65535) }],
        };
        Assert.Equal($"set=1\nlisten_port=0\npublic_key={Peer1Hex}\nendpoint=[fe80::1%2]:65535\n\n", WriteSet(config));
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(65536)]
    public void WriteSet_ListenPortOutOfRange_Throws(int port)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => WriteSet(new DeviceConfig { ListenPort = port }));
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(65536)]
    public void WriteSet_KeepaliveOutOfRange_Throws(int seconds)
    {
        var config = new DeviceConfig
        {
            Peers = [new PeerConfig { PublicKey = Key(Peer1Hex), PersistentKeepaliveInterval = TimeSpan.FromSeconds(seconds) }],
        };
        Assert.Throws<ArgumentOutOfRangeException>(() => WriteSet(config));
    }

    [Fact]
    public void WriteSet_ZeroPublicKey_Throws()
    {
        var config = new DeviceConfig { Peers = [new PeerConfig { PublicKey = Key(ZeroHex) }] };
        Assert.Throws<ArgumentException>(() => WriteSet(config));
    }

    [Fact]
    public void WriteSet_ManyPeers_WritesEveryPeer()
    {
        var peers = Enumerable.Range(0, 65_000)
            .Select(i => new PeerConfig
            {
                PublicKey = WireGuardKey.Generate(),
                AllowedIps = [new IPNetwork(new IPAddress([10, (byte)(i >> 16), (byte)(i >> 8), (byte)i]), 32)],
            })
            .ToArray();
        var output = new ArrayBufferWriter<byte>();

        UapiWriter.WriteSet(new DeviceConfig { ReplacePeers = true, Peers = peers }, output);

        Assert.Equal(65_000, output.WrittenSpan.Count("public_key="u8));
        Assert.Equal(65_000, output.WrittenSpan.Count("allowed_ip="u8));
    }
}
