using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;
using Vpn.Core.Netlink;

namespace Vpn.Core.Dns;

/// <summary>
/// Asks the node's resolver one question on each gateway address over UDP — <c>localhost. IN A</c>, which unbound
/// answers from its built-in local zone, so the check says whether the resolver serves clients, not whether the
/// internet's name servers answer — and says per address whether a well-formed answer came within the deadline.
/// </summary>
/// <remarks>
/// The DNS message is written and read here (27 bytes out, a header and a question back) rather than with a DNS
/// client library: the socket must be created on a thread that entered the device's network namespace
/// (<see cref="NetworkNamespaceThread"/>), and the libraries at hand (DnsClient, ARSoft.Tools.Net) open their own
/// sockets with no way to pass one in.
/// </remarks>
public sealed class ResolverProbe
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(2);

    // localhost. in wire format: one label and the root.
    private static readonly byte[] QuestionName = [9, (byte)'l', (byte)'o', (byte)'c', (byte)'a', (byte)'l', (byte)'h', (byte)'o', (byte)'s', (byte)'t', 0];
    private const ushort TypeA = 1;
    private const ushort ClassIn = 1;
    private const int HeaderLength = 12;

    private readonly string? _namespacePath;
    private readonly TimeSpan _timeout;
    private readonly int _port;

    /// <param name="networkNamespace">A named namespace (<c>/var/run/netns/NAME</c>) to ask from; null: this process's.</param>
    /// <param name="timeout">How long each address has to answer.</param>
    /// <param name="port">The resolver's port (53; tests use others).</param>
    public ResolverProbe(string? networkNamespace, TimeSpan timeout, int port = ResolverConfig.Port)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(timeout, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThan(port, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, 65535);
        _namespacePath = networkNamespace is null ? null : $"/var/run/netns/{networkNamespace}";
        _timeout = timeout;
        _port = port;
    }

    /// <summary>Asks every address at once; never throws for what the network or the resolver does.</summary>
    public async Task<ResolverProbeResult> CheckAsync(IReadOnlyList<IPAddress> addresses, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(addresses);
        Socket[] sockets;
        try
        {
            sockets = _namespacePath is null ? OpenSockets(addresses) : NetworkNamespaceThread.Run(_namespacePath, () => OpenSockets(addresses));
        }
        catch (Exception e) when (e is SocketException or NetlinkException)
        {
            var reason = e is SocketException s ? $"socket: {s.SocketErrorCode}" : "cannot enter the network namespace";
            return new ResolverProbeResult([.. addresses.Select(a => new ResolverAnswer(a, reason))]);
        }
        try
        {
            var answers = await Task.WhenAll(addresses.Select((address, i) => AskAsync(sockets[i], address, cancellationToken)));
            return new ResolverProbeResult(answers);
        }
        finally
        {
            foreach (var socket in sockets)
            {
                socket.Dispose();
            }
        }
    }

    private static Socket[] OpenSockets(IReadOnlyList<IPAddress> addresses)
    {
        var sockets = new List<Socket>(addresses.Count);
        try
        {
            foreach (var address in addresses)
            {
                sockets.Add(new Socket(address.AddressFamily, SocketType.Dgram, ProtocolType.Udp));
            }
            return [.. sockets];
        }
        catch
        {
            foreach (var socket in sockets)
            {
                socket.Dispose();
            }
            throw;
        }
    }

    private async Task<ResolverAnswer> AskAsync(Socket socket, IPAddress address, CancellationToken cancellationToken)
    {
        var id = (ushort)RandomNumberGenerator.GetInt32(0, 65536);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(_timeout);
        var buffer = new byte[512];
        try
        {
            // Connected: the kernel drops datagrams from anyone else, and an ICMP port unreachable surfaces as a
            // refused receive at once instead of a silent timeout.
            await socket.ConnectAsync(new IPEndPoint(address, _port), deadline.Token);
            await socket.SendAsync(BuildQuery(id), SocketFlags.None, deadline.Token);
            while (true)
            {
                var length = await socket.ReceiveAsync(buffer, SocketFlags.None, deadline.Token);
                var verdict = ReadAnswer(buffer.AsSpan(0, length), id);
                if (verdict is not null)
                {
                    return new ResolverAnswer(address, verdict.Length == 0 ? null : verdict);
                }
                // Not an answer to this query (another id, or too short to carry one): keep waiting, as a resolver would.
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new ResolverAnswer(address, string.Create(CultureInfo.InvariantCulture, $"no answer within {_timeout.TotalSeconds} s"));
        }
        catch (SocketException e)
        {
            return new ResolverAnswer(address, e.SocketErrorCode == SocketError.ConnectionRefused
                ? string.Create(CultureInfo.InvariantCulture, $"refused: nothing listens on port {_port}")
                : $"socket: {e.SocketErrorCode}");
        }
    }

    /// <summary>The query: our id, recursion desired, one question <c>localhost. IN A</c>.</summary>
    internal static byte[] BuildQuery(ushort id)
    {
        var message = new byte[HeaderLength + QuestionName.Length + 4];
        BinaryPrimitives.WriteUInt16BigEndian(message, id);
        BinaryPrimitives.WriteUInt16BigEndian(message.AsSpan(2), 0x0100);
        BinaryPrimitives.WriteUInt16BigEndian(message.AsSpan(4), 1);
        QuestionName.CopyTo(message, HeaderLength);
        BinaryPrimitives.WriteUInt16BigEndian(message.AsSpan(HeaderLength + QuestionName.Length), TypeA);
        BinaryPrimitives.WriteUInt16BigEndian(message.AsSpan(HeaderLength + QuestionName.Length + 2), ClassIn);
        return message;
    }

    /// <summary>
    /// Null: not an answer to query <paramref name="id"/> (ignored). Empty: a well-formed answer to our question with
    /// NOERROR or NXDOMAIN. Otherwise why it is not good.
    /// </summary>
    internal static string? ReadAnswer(ReadOnlySpan<byte> message, ushort id)
    {
        if (message.Length < HeaderLength || BinaryPrimitives.ReadUInt16BigEndian(message) != id)
        {
            return null;
        }
        var flags = BinaryPrimitives.ReadUInt16BigEndian(message[2..]);
        if ((flags & 0x8000) == 0 || ((flags >> 11) & 0xF) != 0)
        {
            return "malformed answer (not a response to a standard query)";
        }
        var rcode = flags & 0xF;
        if (rcode is not (0 or 3))
        {
            return $"answered {RcodeName(rcode)}";
        }
        // Our question, once, as asked (names compare case-insensitively).
        var question = message[HeaderLength..];
        if (BinaryPrimitives.ReadUInt16BigEndian(message[4..]) != 1 || question.Length < QuestionName.Length + 4
            || !System.Text.Ascii.EqualsIgnoreCase(question[..QuestionName.Length], QuestionName)
            || BinaryPrimitives.ReadUInt16BigEndian(question[QuestionName.Length..]) != TypeA
            || BinaryPrimitives.ReadUInt16BigEndian(question[(QuestionName.Length + 2)..]) != ClassIn)
        {
            return "malformed answer (not our question)";
        }
        return "";
    }

    private static string RcodeName(int rcode) => rcode switch
    {
        1 => "FORMERR",
        2 => "SERVFAIL",
        4 => "NOTIMP",
        5 => "REFUSED",
        _ => string.Create(CultureInfo.InvariantCulture, $"rcode {rcode}"),
    };
}

/// <summary>One gateway address's verdict: <paramref name="Problem"/> null when it answered well.</summary>
public sealed record ResolverAnswer(IPAddress Address, string? Problem);

/// <summary>The verdicts of one check, in the order the addresses were given.</summary>
public sealed record ResolverProbeResult(IReadOnlyList<ResolverAnswer> Answers)
{
    public bool Healthy => Answers.Count > 0 && Answers.All(a => a.Problem is null);

    /// <summary>"10.64.0.1: answered REFUSED; fd64:6400::1: no answer within 2 s"; empty when healthy.</summary>
    public string Detail => string.Join("; ", Answers.Where(a => a.Problem is not null).Select(a => $"{a.Address}: {a.Problem}"));
}
