using System.Buffers;
using static Vpn.Core.Tests.WireGuard.UapiSamples;

namespace Vpn.Core.Tests.WireGuard;

public partial class UapiClientTests
{
    // The blocking Set (the dataplane's writer thread): the same requests and errors as SetAsync, every socket call bounded.

    private static readonly TimeSpan SetTimeout = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Set_FullConfig_SendsExactTranscriptAndLeavesBufferEmptyAndWiped()
    {
        await using var server = FakeUapiServer.Start("errno=0\n\n");
        var client = new UapiClient(server.SocketPath);
        var buffer = new ArrayBufferWriter<byte>(4096);
        // Left over from a caller's earlier use: it must not end up in the request.
        buffer.Write("garbage\n"u8);

        client.Set(FullConfig(), buffer, SetTimeout);

        Assert.Equal(FullConfigRequest, await server.RequestTextAsync());
        AssertEmptyAndWiped(buffer, FullConfigRequest.Length);
    }

    [Fact]
    public async Task Set_SameBufferTwice_SecondRequestHoldsOnlyItsOwnLines()
    {
        await using var first = FakeUapiServer.Start("errno=0\n\n");
        await using var second = FakeUapiServer.Start("errno=0\n\n");
        var buffer = new ArrayBufferWriter<byte>(4096);

        new UapiClient(first.SocketPath).Set(FullConfig(), buffer, SetTimeout);
        new UapiClient(second.SocketPath).Set(new DeviceConfig(), buffer, SetTimeout);

        Assert.Equal(FullConfigRequest, await first.RequestTextAsync());
        Assert.Equal("set=1\n\n", await second.RequestTextAsync());
    }

    [Theory]
    [InlineData("errno=-22\n\n", -22)]
    [InlineData("errno=-1\n\n", -1)]
    public async Task Set_NonZeroErrno_ThrowsUapiExceptionWithErrnoAndWipesBuffer(string response, int errno)
    {
        await using var server = FakeUapiServer.Start(response);
        var client = new UapiClient(server.SocketPath);
        var buffer = new ArrayBufferWriter<byte>(4096);

        var exception = Assert.Throws<UapiException>(() => client.Set(FullConfig(), buffer, SetTimeout));

        Assert.Equal(errno, exception.Errno);
        Assert.Equal($"wireguard UAPI error errno={errno}", exception.Message);
        Assert.DoesNotContain(PrivateHex, exception.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain(Psk1Hex, exception.ToString(), StringComparison.Ordinal);
        Assert.Equal(FullConfigRequest, await server.RequestTextAsync());
        AssertEmptyAndWiped(buffer, FullConfigRequest.Length);
    }

    [Fact]
    public async Task Set_LargeRequestRejectedEarly_ThrowsUapiExceptionFromAnswer()
    {
        await using var server = FakeUapiServer.StartRejectingEarly("errno=-22\n\n", bytes: 100);
        var client = new UapiClient(server.SocketPath);

        var exception = Assert.Throws<UapiException>(() => client.Set(ManyPeers(20_000), new ArrayBufferWriter<byte>(), SetTimeout));

        Assert.Equal(-22, exception.Errno);
    }

    [Fact]
    public async Task Set_ConnectionClosedMidRequestWithoutAnswer_ThrowsUnavailableAndEmptiesBuffer()
    {
        await using var server = FakeUapiServer.StartRejectingEarly("", bytes: 100);
        var client = new UapiClient(server.SocketPath);
        var buffer = new ArrayBufferWriter<byte>();

        Assert.Throws<UapiUnavailableException>(() => client.Set(ManyPeers(20_000), buffer, SetTimeout));

        Assert.Equal(0, buffer.WrittenCount);
    }

    [Fact]
    public void Set_MissingSocket_ThrowsUnavailableAndWipesBuffer()
    {
        var client = new UapiClient(Path.Combine(Path.GetTempPath(), $"missing-{Guid.NewGuid():N}.sock"));
        var buffer = new ArrayBufferWriter<byte>(4096);

        var exception = Assert.Throws<UapiUnavailableException>(() => client.Set(FullConfig(), buffer, SetTimeout));

        Assert.IsType<SocketException>(exception.InnerException);
        // The request (private and preshared keys included) was built before connecting.
        AssertEmptyAndWiped(buffer, FullConfigRequest.Length);
    }

    [Fact]
    public async Task Set_InvalidConfig_ThrowsBeforeConnectingAndWipesBuffer()
    {
        await using var server = FakeUapiServer.Start("errno=0\n\n");
        var client = new UapiClient(server.SocketPath);
        var buffer = new ArrayBufferWriter<byte>(4096);
        // The private key line is written before the port is found invalid.
        var invalid = FullConfig() with { ListenPort = 70_000 };

        Assert.Throws<ArgumentOutOfRangeException>(() => client.Set(invalid, buffer, SetTimeout));
        AssertEmptyAndWiped(buffer, FullConfigRequest.Length);

        // The server takes one connection and records it: had the invalid set connected, this one would not be it.
        client.Set(new DeviceConfig(), buffer, SetTimeout);
        Assert.Equal("set=1\n\n", await server.RequestTextAsync());
    }

    [Fact]
    public async Task Set_DeviceNeverAnswers_ThrowsUnavailableOnceTheTimeoutPasses()
    {
        await using var server = FakeUapiServer.StartSilent();
        var client = new UapiClient(server.SocketPath);
        var buffer = new ArrayBufferWriter<byte>(4096);

        var set = Task.Run(() => client.Set(FullConfig(), buffer, TimeSpan.FromMilliseconds(300)), Token);

        // The bound only keeps a broken timeout from hanging the run; it fails the test with a TimeoutException.
        var exception = await Assert.ThrowsAsync<UapiUnavailableException>(() => set.WaitAsync(TimeSpan.FromSeconds(10), Token));
        var timedOut = Assert.IsType<SocketException>(Assert.IsType<IOException>(exception.InnerException).InnerException);
        Assert.Equal(SocketError.TimedOut, timedOut.SocketErrorCode);
        // The whole request went out; only the answer never came. The client then closed the connection.
        Assert.Equal(FullConfigRequest, await server.RequestTextAsync());
        AssertEmptyAndWiped(buffer, FullConfigRequest.Length);
    }

    [Fact]
    public async Task Set_TimeoutUnderOneMillisecond_StillTimesOut()
    {
        // A socket timeout of 0 means "none": a sub-millisecond timeout must not round down to it.
        await using var server = FakeUapiServer.StartSilent();
        var client = new UapiClient(server.SocketPath);

        var set = Task.Run(() => client.Set(FullConfig(), new ArrayBufferWriter<byte>(4096), TimeSpan.FromTicks(5_000)), Token);

        await Assert.ThrowsAsync<UapiUnavailableException>(() => set.WaitAsync(TimeSpan.FromSeconds(10), Token));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    [InlineData(-30_000)]
    public void Set_TimeoutNotPositive_ThrowsArgumentOutOfRangeBeforeConnecting(int milliseconds)
    {
        // A missing socket: connecting would throw UapiUnavailableException instead.
        var client = new UapiClient(Path.Combine(Path.GetTempPath(), $"never-{Guid.NewGuid():N}.sock"));

        var exception = Assert.Throws<ArgumentOutOfRangeException>(
            () => client.Set(new DeviceConfig(), new ArrayBufferWriter<byte>(), TimeSpan.FromMilliseconds(milliseconds)));

        Assert.Equal("timeout", exception.ParamName);
    }

    [Fact]
    public void Set_NullArguments_Throw()
    {
        var client = new UapiClient(Path.Combine(Path.GetTempPath(), $"never-{Guid.NewGuid():N}.sock"));

        Assert.Throws<ArgumentNullException>(() => client.Set(null!, new ArrayBufferWriter<byte>(), SetTimeout));
        Assert.Throws<ArgumentNullException>(() => client.Set(new DeviceConfig(), null!, SetTimeout));
    }

    [Fact]
    public async Task Read_GetResponseFromMemoryStream_ParsesTheSameAsReadAsync()
    {
        var bytes = Encoding.ASCII.GetBytes(GetResponse);
        using var syncStream = new MemoryStream(bytes);
        using var asyncStream = new MemoryStream(bytes);

        var read = UapiParser.Read(syncStream);
        var readAsync = await UapiParser.ReadAsync(asyncStream, Token);

        Assert.Equal(Key(PrivateHex), read.PrivateKey);
        Assert.Equal(3, read.Peers.Count);
        Assert.Equal(Fields(readAsync), Fields(read));
    }

    [Fact]
    public void Read_OneByteSynchronousReads_ParsesLinesSplitAcrossReadsWithoutAsyncCalls()
    {
        using var stream = new SyncTrickleStream(Encoding.ASCII.GetBytes(GetResponse));

        var device = UapiParser.Read(stream);

        Assert.Equal(Fields(UapiParser.Parse(Encoding.ASCII.GetBytes(GetResponse))), Fields(device));
    }

    [Fact]
    public void Read_NonZeroErrno_ThrowsUapiException()
    {
        using var stream = new MemoryStream(Encoding.ASCII.GetBytes("errno=-22\n\n"));

        Assert.Equal(-22, Assert.Throws<UapiException>(() => UapiParser.Read(stream)).Errno);
    }

    private static void AssertEmptyAndWiped(ArrayBufferWriter<byte> buffer, int written)
    {
        Assert.Equal(0, buffer.WrittenCount);
        // After Clear the free span starts at the same array's first byte: what the request held must be zeros.
        var span = buffer.GetSpan(written);
        Assert.False(span[..written].ContainsAnyExcept((byte)0), "The request buffer still holds request bytes.");
    }

    private static object[] Fields(DeviceState state) =>
    [
        state.PrivateKey?.ToHex() ?? "", state.ListenPort, state.FirewallMark,
        .. state.Peers.Select(p => string.Join(' ', p.PublicKey.ToHex(), p.PresharedKey?.ToHex(), p.Endpoint, p.PersistentKeepaliveInterval,
            p.LastHandshake?.UtcTicks, p.ReceiveBytes, p.TransmitBytes, p.ProtocolVersion, string.Join(',', p.AllowedIps))),
    ];

    /// <summary>One byte per synchronous read; the asynchronous reads fail, so only the blocking path can succeed.</summary>
    private sealed class SyncTrickleStream(byte[] data) : MemoryStream(data)
    {
        public override int Read(Span<byte> buffer) => base.Read(buffer[..Math.Min(1, buffer.Length)]);

        public override int Read(byte[] buffer, int offset, int count) => base.Read(buffer, offset, Math.Min(1, count));

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            throw new InvalidOperationException("asynchronous read");

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            throw new InvalidOperationException("asynchronous read");
    }
}
