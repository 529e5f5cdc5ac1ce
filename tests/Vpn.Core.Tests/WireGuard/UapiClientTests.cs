using static Vpn.Core.Tests.WireGuard.UapiSamples;

namespace Vpn.Core.Tests.WireGuard;

/// <summary>The client against <see cref="FakeUapiServer"/>: exact request bytes and canned answers.</summary>
public partial class UapiClientTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task GetAsync_RealisticResponse_SendsGetAndParsesPeers()
    {
        await using var server = FakeUapiServer.Start(GetResponse);
        var client = new UapiClient(server.SocketPath);

        var device = await client.GetAsync(Token);

        Assert.Equal("get=1\n\n", await server.RequestTextAsync());
        Assert.Equal(Key(PrivateHex), device.PrivateKey);
        Assert.Equal(3, device.Peers.Count);
        Assert.Null(device.Peers[2].LastHandshake);
    }

    [Fact]
    public async Task SetAsync_FullConfig_SendsExactTranscript()
    {
        await using var server = FakeUapiServer.Start("errno=0\n\n");
        var client = new UapiClient(server.SocketPath);

        await client.SetAsync(FullConfig(), Token);

        Assert.Equal(FullConfigRequest, await server.RequestTextAsync());
    }

    [Fact]
    public async Task SetAsync_EmptyConfig_SendsSetAndBlankLine()
    {
        await using var server = FakeUapiServer.Start("errno=0\n\n");
        var client = new UapiClient(server.SocketPath);

        await client.SetAsync(new DeviceConfig(), Token);

        Assert.Equal("set=1\n\n", await server.RequestTextAsync());
    }

    [Fact]
    public async Task PingAsync_DeviceAnswers_SendsAnEmptySetNotAGet()
    {
        await using var server = FakeUapiServer.Start("errno=0\n\n");
        var client = new UapiClient(server.SocketPath);

        await client.PingAsync(Token);

        Assert.Equal("set=1\n\n", await server.RequestTextAsync());
    }

    [Fact]
    public async Task PingAsync_MissingSocket_ThrowsUnavailable()
    {
        var client = new UapiClient(Path.Combine(Path.GetTempPath(), $"missing-{Guid.NewGuid():N}.sock"));

        await Assert.ThrowsAsync<UapiUnavailableException>(() => client.PingAsync(Token));
    }

    [Theory]
    [InlineData("errno=-22\n\n", -22)]
    [InlineData("errno=-1\n\n", -1)]
    public async Task SetAsync_NonZeroErrno_ThrowsUapiExceptionWithErrno(string response, int errno)
    {
        await using var server = FakeUapiServer.Start(response);
        var client = new UapiClient(server.SocketPath);

        var exception = await Assert.ThrowsAsync<UapiException>(() => client.SetAsync(FullConfig(), Token));

        Assert.Equal(errno, exception.Errno);
        Assert.Equal($"wireguard UAPI error errno={errno}", exception.Message);
        Assert.DoesNotContain(PrivateHex, exception.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain(Psk1Hex, exception.ToString(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("errno=-22\n\n", -22)]
    [InlineData("errno=-1\n\n", -1)]
    public async Task GetAsync_NonZeroErrno_ThrowsUapiExceptionWithErrno(string response, int errno)
    {
        await using var server = FakeUapiServer.Start(response);
        var client = new UapiClient(server.SocketPath);

        var exception = await Assert.ThrowsAsync<UapiException>(() => client.GetAsync(Token));

        Assert.Equal(errno, exception.Errno);
    }

    [Fact]
    public async Task GetAsync_UnknownKeys_AreIgnored()
    {
        var response = GetResponse
            .Replace("listen_port=51820\n", "listen_port=51820\nsomething_new=1\n", StringComparison.Ordinal)
            .Replace("rx_bytes=2048\n", "rx_bytes=2048\npeer_thing=x=y\n", StringComparison.Ordinal);
        await using var server = FakeUapiServer.Start(response);
        var client = new UapiClient(server.SocketPath);

        var device = await client.GetAsync(Token);

        Assert.Equal(3, device.Peers.Count);
        Assert.Equal(2048ul, device.Peers[0].ReceiveBytes);
    }

    public static TheoryData<string, bool> MalformedResponses => new()
    {
        { "private_key=" + PrivateHex + "\npublic_key=" + Peer1Hex[..62] + "zz\nerrno=0\n\n", false },
        { "private_key=" + PrivateHex + "\nlisten_port=port\nerrno=0\n\n", false },
        { "private_key=" + PrivateHex + "\n" + PrivateHex + "\nerrno=0\n\n", false },
        { "private_key=" + PrivateHex + "\npreshared_key=" + Psk1Hex + "\nerrno=0\n\n", false },
        { "private_key=" + PrivateHex + "\nlisten_port=51820\n", true },
        { "private_key=" + PrivateHex + "\nlisten_port=518", true },
        { "", true },
    };

    [Theory]
    [MemberData(nameof(MalformedResponses))]
    public async Task GetAsync_MalformedOrTruncatedResponse_ThrowsProtocolExceptionWithoutValues(string response, bool closeAfterResponse)
    {
        await using var server = FakeUapiServer.Start(response, closeAfterResponse);
        var client = new UapiClient(server.SocketPath);

        var exception = await Assert.ThrowsAsync<UapiProtocolException>(() => client.GetAsync(Token));

        Assert.DoesNotContain(PrivateHex, exception.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain(PrivateBase64, exception.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain(Psk1Hex, exception.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task SetAsync_LargeRequestRejectedEarly_ThrowsUapiExceptionFromAnswer()
    {
        await using var server = FakeUapiServer.StartRejectingEarly("errno=-22\n\n", bytes: 100);
        var client = new UapiClient(server.SocketPath);

        var exception = await Assert.ThrowsAsync<UapiException>(() => client.SetAsync(ManyPeers(20_000), Token));

        Assert.Equal(-22, exception.Errno);
    }

    [Fact]
    public async Task SetAsync_ConnectionClosedMidRequestWithoutAnswer_ThrowsUnavailable()
    {
        await using var server = FakeUapiServer.StartRejectingEarly("", bytes: 100);
        var client = new UapiClient(server.SocketPath);

        await Assert.ThrowsAsync<UapiUnavailableException>(() => client.SetAsync(ManyPeers(20_000), Token));
    }

    [Fact]
    public async Task GetAsync_MissingSocket_ThrowsUnavailable()
    {
        var client = new UapiClient(Path.Combine(Path.GetTempPath(), $"missing-{Guid.NewGuid():N}.sock"));

        var exception = await Assert.ThrowsAsync<UapiUnavailableException>(() => client.GetAsync(Token));

        Assert.IsType<SocketException>(exception.InnerException);
    }

    [Fact]
    public async Task SetAsync_SocketWithoutListener_ThrowsUnavailable()
    {
        // A socket file left behind by a crashed device refuses connections. .NET unlinks the path a
        // socket was bound to when it closes, so the file is moved away first to survive.
        var path = Path.Combine(Path.GetTempPath(), $"stale-{Guid.NewGuid():N}"[..14] + ".sock");
        using (var stale = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            stale.Bind(new UnixDomainSocketEndPoint(path + ".bound"));
            File.Move(path + ".bound", path);
        }
        try
        {
            var client = new UapiClient(path);

            var exception = await Assert.ThrowsAsync<UapiUnavailableException>(() => client.SetAsync(new DeviceConfig(), Token));

            Assert.Equal(SocketError.ConnectionRefused, Assert.IsType<SocketException>(exception.InnerException).SocketErrorCode);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task SetAsync_InvalidConfig_ThrowsBeforeConnecting()
    {
        var client = new UapiClient(Path.Combine(Path.GetTempPath(), $"never-{Guid.NewGuid():N}.sock"));

        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => client.SetAsync(new DeviceConfig { ListenPort = 70_000 }, Token));
    }

    private static DeviceConfig ManyPeers(int count) => new()
    {
        Peers = [.. Enumerable.Range(0, count).Select(_ => new PeerConfig { PublicKey = WireGuardKey.Generate() })],
    };

    [Fact]
    public void SocketPathFor_InterfaceName_IsUnderVarRunWireguard()
    {
        Assert.Equal("/var/run/wireguard/wg0.sock", UapiClient.SocketPathFor("wg0"));
    }

    [Theory]
    [InlineData("")]
    [InlineData("..")]
    [InlineData("../etc/x")]
    [InlineData("wg 0")]
    [InlineData("sixteen-chars-xx")]
    public void SocketPathFor_InvalidInterfaceName_Throws(string name)
    {
        Assert.ThrowsAny<ArgumentException>(() => UapiClient.SocketPathFor(name));
    }
}
