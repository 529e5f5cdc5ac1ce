using System.Buffers.Binary;

namespace Vpn.Core.Tests.Dns;

/// <summary>The probe's DNS bytes, and its verdicts against small UDP servers on loopback that answer in every wrong way.</summary>
public class ResolverProbeTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public void BuildQuery_Id_IsLocalhostAWithRecursionDesired()
    {
        Assert.Equal(Convert.FromHexString("BEEF01000001000000000000096C6F63616C686F737400" + "00010001"), ResolverProbe.BuildQuery(0xBEEF));
    }

    [Fact]
    public void ReadAnswer_NoErrorOrNxDomainToOurQuestion_IsGood()
    {
        Assert.Equal("", ResolverProbe.ReadAnswer(Answer(0x1234, rcode: 0), 0x1234));
        Assert.Equal("", ResolverProbe.ReadAnswer(Answer(0x1234, rcode: 3), 0x1234));
        // Names compare without regard to case (a resolver may echo 0x20-mixed case).
        var mixed = Answer(0x1234, rcode: 0);
        mixed[13] = (byte)'L';
        Assert.Equal("", ResolverProbe.ReadAnswer(mixed, 0x1234));
    }

    [Theory]
    [InlineData(2, "answered SERVFAIL")]
    [InlineData(5, "answered REFUSED")]
    [InlineData(4, "answered NOTIMP")]
    [InlineData(9, "answered rcode 9")]
    public void ReadAnswer_ErrorRcode_SaysWhich(int rcode, string expected) =>
        Assert.Equal(expected, ResolverProbe.ReadAnswer(Answer(7, rcode), 7));

    [Fact]
    public void ReadAnswer_OtherIdOrShort_IsIgnored()
    {
        Assert.Null(ResolverProbe.ReadAnswer(Answer(8, 0), 7));
        Assert.Null(ResolverProbe.ReadAnswer(Answer(7, 0).AsSpan(0, 11), 7));
    }

    [Fact]
    public void ReadAnswer_NotAResponseOrNotOurQuestion_IsMalformed()
    {
        Assert.Equal("malformed answer (not a response to a standard query)", ResolverProbe.ReadAnswer(ResolverProbe.BuildQuery(7), 7));
        var otherName = Answer(7, 0);
        otherName[14] = (byte)'x';
        Assert.Equal("malformed answer (not our question)", ResolverProbe.ReadAnswer(otherName, 7));
        var aaaa = Answer(7, 0);
        aaaa[24] = 28;
        Assert.Equal("malformed answer (not our question)", ResolverProbe.ReadAnswer(aaaa, 7));
        Assert.Equal("malformed answer (not our question)", ResolverProbe.ReadAnswer(Answer(7, 0).AsSpan(0, 20), 7));
    }

    [Fact]
    public async Task Check_ServerAnswersAfterAStrayDatagram_IsHealthy()
    {
        // First an answer with another id (a late or spoofed one), then ours.
        await using var server = FakeServer.Start(query => [Answer((ushort)(Id(query) ^ 1), 0, query), Answer(Id(query), 0, query)]);

        var result = await Probe(server.Port).CheckAsync([IPAddress.Loopback], Token);

        Assert.True(result.Healthy, result.Detail);
        Assert.Equal("", result.Detail);
    }

    [Fact]
    public async Task Check_ServerSendsGarbageWithOurId_IsUnhealthy()
    {
        await using var server = FakeServer.Start(query => [[query[0], query[1], 0xFF, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0]]);

        var result = await Probe(server.Port).CheckAsync([IPAddress.Loopback], Token);

        Assert.False(result.Healthy);
        Assert.Equal("127.0.0.1: malformed answer (not a response to a standard query)", result.Detail);
    }

    [Fact]
    public async Task Check_ServerRefuses_SaysRefusedPerAddress()
    {
        await using var v4 = FakeServer.Start(query => [Answer(Id(query), 5, query)]);
        await using var v6 = FakeServer.Start(query => [Answer(Id(query), 0, query)], IPAddress.IPv6Loopback, v4.Port);

        var result = await Probe(v4.Port).CheckAsync([IPAddress.Loopback, IPAddress.IPv6Loopback], Token);

        Assert.False(result.Healthy);
        Assert.Equal("127.0.0.1: answered REFUSED", result.Detail);
        Assert.Null(result.Answers[1].Problem);
    }

    [Fact]
    public async Task Check_ServerSilent_TimesOutWithinTheDeadline()
    {
        await using var server = FakeServer.Start(_ => []);
        var clock = System.Diagnostics.Stopwatch.StartNew();

        var result = await new ResolverProbe(null, TimeSpan.FromMilliseconds(300), server.Port).CheckAsync([IPAddress.Loopback], Token);

        Assert.Equal("127.0.0.1: no answer within 0.3 s", result.Detail);
        Assert.InRange(clock.Elapsed, TimeSpan.FromMilliseconds(250), TimeSpan.FromSeconds(3));
    }

    [Fact]
    public async Task Check_NothingListening_RefusedAtOnce()
    {
        int port;
        using (var closed = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp))
        {
            closed.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            port = ((IPEndPoint)closed.LocalEndPoint!).Port;
        }
        var clock = System.Diagnostics.Stopwatch.StartNew();

        var result = await new ResolverProbe(null, TimeSpan.FromSeconds(5), port).CheckAsync([IPAddress.Loopback], Token);

        Assert.Equal($"127.0.0.1: refused: nothing listens on port {port}", result.Detail);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"took {clock.Elapsed}");
    }

    [Fact]
    public async Task Check_NamespaceThatDoesNotExist_UnhealthyNotThrown()
    {
        var result = await new ResolverProbe($"missing-{Guid.NewGuid():N}"[..20], TimeSpan.FromSeconds(1)).CheckAsync([IPAddress.Loopback, IPAddress.IPv6Loopback], Token);

        Assert.False(result.Healthy);
        Assert.Equal("127.0.0.1: cannot enter the network namespace; ::1: cannot enter the network namespace", result.Detail);
    }

    private static ResolverProbe Probe(int port) => new(null, TimeSpan.FromSeconds(2), port);

    private static ushort Id(byte[] query) => BinaryPrimitives.ReadUInt16BigEndian(query);

    /// <summary>A response header (QR, RD, RA) with the question of <paramref name="query"/> (ours by default) and no records.</summary>
    internal static byte[] Answer(ushort id, int rcode, byte[]? query = null)
    {
        var message = (query ?? ResolverProbe.BuildQuery(id)).ToArray();
        BinaryPrimitives.WriteUInt16BigEndian(message, id);
        BinaryPrimitives.WriteUInt16BigEndian(message.AsSpan(2), (ushort)(0x8180 | rcode));
        return message;
    }

    /// <summary>A UDP server on loopback that answers each query with what <c>reply</c> makes of it.</summary>
    private sealed class FakeServer : IAsyncDisposable
    {
        private readonly Socket _socket;
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _loop;

        private FakeServer(Socket socket, Func<byte[], IReadOnlyList<byte[]>> reply)
        {
            _socket = socket;
            _loop = Task.Run(async () =>
            {
                var buffer = new byte[512];
                while (!_stop.IsCancellationRequested)
                {
                    SocketReceiveFromResult received;
                    try
                    {
                        received = await _socket.ReceiveFromAsync(buffer, SocketFlags.None, new IPEndPoint(socket.AddressFamily == AddressFamily.InterNetwork ? IPAddress.Any : IPAddress.IPv6Any, 0), _stop.Token);
                    }
                    catch (OperationCanceledException)
                    {
                        return;
                    }
                    foreach (var datagram in reply(buffer[..received.ReceivedBytes]))
                    {
                        await _socket.SendToAsync(datagram, SocketFlags.None, received.RemoteEndPoint);
                    }
                }
            });
        }

        public int Port => ((IPEndPoint)_socket.LocalEndPoint!).Port;

        public static FakeServer Start(Func<byte[], IReadOnlyList<byte[]>> reply) => Start(reply, IPAddress.Loopback, 0);

        public static FakeServer Start(Func<byte[], IReadOnlyList<byte[]>> reply, IPAddress address, int port)
        {
            var socket = new Socket(address.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            socket.Bind(new IPEndPoint(address, port));
            return new FakeServer(socket, reply);
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            await _loop;
            _socket.Dispose();
            _stop.Dispose();
        }
    }
}
