using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using System.Numerics;

namespace Vpn.Core.WireGuard;

/// <summary>
/// Parses UAPI <c>get=1</c> responses (and the bare <c>errno=N</c> answer to a set) line by line
/// without building strings. Lenient where the protocol may grow: unknown keys are ignored. The first
/// error wins and is thrown at once; its message names the key but never a value, because the response
/// carries the private key.
/// </summary>
public sealed class UapiParser
{
    private const int BufferSize = 64 * 1024;

    // Upper bound of DateTimeOffset (9999-12-31T23:59:59Z) in Unix seconds.
    private const long MaxUnixSeconds = 253_402_300_799;

    private static readonly string[] PeerKeys =
    [
        "preshared_key", "protocol_version", "endpoint", "last_handshake_time_sec", "last_handshake_time_nsec",
        "tx_bytes", "rx_bytes", "persistent_keepalive_interval", "allowed_ip",
    ];

    private readonly List<PeerState> _peers = [];
    private readonly List<IPNetwork> _allowedIps = [];
    private WireGuardKey? _privateKey;
    private int _listenPort;
    private uint _firewallMark;
    private int? _errno;
    private int _lineNumber;
    private bool _complete;

    private bool _inPeer;
    private WireGuardKey _publicKey;
    private WireGuardKey? _presharedKey;
    private IPEndPoint? _endpoint;
    private TimeSpan _keepalive;
    private long _handshakeSeconds;
    private long _handshakeNanoseconds;
    private ulong _receiveBytes;
    private ulong _transmitBytes;
    private int _protocolVersion;

    private UapiParser()
    {
    }

    /// <summary>Parses a whole response; bytes after its terminating blank line are ignored.</summary>
    public static DeviceState Parse(ReadOnlySpan<byte> response)
    {
        var parser = new UapiParser();
        parser.ParseLines(response);
        return parser.Result();
    }

    /// <summary>
    /// Reads one response from <paramref name="stream"/> up to its terminating blank line, leaving the
    /// stream open (wireguard-go keeps the connection open for another request).
    /// </summary>
    public static Task<DeviceState> ReadAsync(Stream stream, CancellationToken cancellationToken) =>
        ReadCoreAsync(stream, synchronous: false, cancellationToken).AsTask();

    /// <summary>As <see cref="ReadAsync"/>, blocking the calling thread in <see cref="Stream.Read(Span{byte})"/>.</summary>
    public static DeviceState Read(Stream stream)
    {
        // With synchronous reads the state machine never suspends, so this completes without any thread-pool thread.
        var read = ReadCoreAsync(stream, synchronous: true, CancellationToken.None);
        Debug.Assert(read.IsCompleted, "A synchronous read completed asynchronously.");
        return read.GetAwaiter().GetResult();
    }

    private static async ValueTask<DeviceState> ReadCoreAsync(Stream stream, bool synchronous, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var parser = new UapiParser();
        var buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
        try
        {
            var start = 0;
            var end = 0;
            while (true)
            {
                start += parser.ParseLines(buffer.AsSpan(start, end - start));
                if (parser._complete)
                {
                    return parser.Result();
                }
                if (start > 0)
                {
                    buffer.AsSpan(start, end - start).CopyTo(buffer);
                    end -= start;
                    start = 0;
                }
                if (end == buffer.Length)
                {
                    throw new UapiProtocolException($"A UAPI response line is longer than {buffer.Length} bytes (line {parser._lineNumber + 1}).");
                }
                var read = synchronous
                    ? stream.Read(buffer.AsSpan(end))
                    : await stream.ReadAsync(buffer.AsMemory(end), cancellationToken).ConfigureAwait(false);
                if (read == 0)
                {
                    return parser.Result();
                }
                end += read;
            }
        }
        finally
        {
            // The buffer held the private key in hex.
            ArrayPool<byte>.Shared.Return(buffer, clearArray: true);
        }
    }

    /// <summary>Parses the complete lines in <paramref name="data"/>; returns the bytes consumed.</summary>
    private int ParseLines(ReadOnlySpan<byte> data)
    {
        var consumed = 0;
        while (!_complete)
        {
            var newline = data[consumed..].IndexOf((byte)'\n');
            if (newline < 0)
            {
                break;
            }
            ParseLine(data.Slice(consumed, newline));
            consumed += newline + 1;
        }
        return consumed;
    }

    private void ParseLine(ReadOnlySpan<byte> line)
    {
        _lineNumber++;
        if (line.IsEmpty)
        {
            _complete = true;
            return;
        }
        var equals = line.IndexOf((byte)'=');
        if (equals < 0)
        {
            throw new UapiProtocolException($"UAPI response line {_lineNumber} has no '='.");
        }
        var key = line[..equals];
        var value = line[(equals + 1)..];

        if (key.SequenceEqual("public_key"u8))
        {
            FinishPeer();
            _inPeer = true;
            _publicKey = ParseKey(value, "public_key") ?? default;
            return;
        }
        if (key.SequenceEqual("errno"u8))
        {
            _errno = Number<int>(value, "errno", NumberStyles.AllowLeadingSign);
            return;
        }
        if (_inPeer)
        {
            ParsePeerLine(key, value);
        }
        else
        {
            ParseDeviceLine(key, value);
        }
    }

    private void ParseDeviceLine(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value)
    {
        if (key.SequenceEqual("private_key"u8))
        {
            _privateKey = ParseKey(value, "private_key");
        }
        else if (key.SequenceEqual("listen_port"u8))
        {
            _listenPort = Number<ushort>(value, "listen_port");
        }
        else if (key.SequenceEqual("fwmark"u8))
        {
            _firewallMark = Number<uint>(value, "fwmark");
        }
        else if (PeerKeyName(key) is { } peerKey)
        {
            throw new UapiProtocolException($"UAPI response key '{peerKey}' came before the first public_key (line {_lineNumber}).");
        }
    }

    private void ParsePeerLine(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value)
    {
        // Ordered by how often each key occurs in a response.
        if (key.SequenceEqual("allowed_ip"u8))
        {
            if (!IPNetwork.TryParse(value, out var network))
            {
                throw Invalid("allowed_ip");
            }
            _allowedIps.Add(network);
        }
        else if (key.SequenceEqual("preshared_key"u8))
        {
            _presharedKey = ParseKey(value, "preshared_key");
        }
        else if (key.SequenceEqual("protocol_version"u8))
        {
            _protocolVersion = Number<int>(value, "protocol_version");
        }
        else if (key.SequenceEqual("endpoint"u8))
        {
            _endpoint = ParseEndpoint(value);
        }
        else if (key.SequenceEqual("last_handshake_time_sec"u8))
        {
            _handshakeSeconds = Number(value, "last_handshake_time_sec", max: MaxUnixSeconds);
        }
        else if (key.SequenceEqual("last_handshake_time_nsec"u8))
        {
            _handshakeNanoseconds = Number(value, "last_handshake_time_nsec", max: 999_999_999L);
        }
        else if (key.SequenceEqual("tx_bytes"u8))
        {
            _transmitBytes = Number<ulong>(value, "tx_bytes");
        }
        else if (key.SequenceEqual("rx_bytes"u8))
        {
            _receiveBytes = Number<ulong>(value, "rx_bytes");
        }
        else if (key.SequenceEqual("persistent_keepalive_interval"u8))
        {
            _keepalive = TimeSpan.FromSeconds(Number<ushort>(value, "persistent_keepalive_interval"));
        }
    }

    /// <summary>A decimal integer of type <typeparamref name="T"/> (digits only unless <paramref name="style"/> says more).</summary>
    private T Number<T>(ReadOnlySpan<byte> value, string key, NumberStyles style = NumberStyles.None) where T : IBinaryInteger<T> =>
        T.TryParse(value, style, CultureInfo.InvariantCulture, out var number) ? number : throw Invalid(key);

    /// <summary>As <see cref="Number{T}(ReadOnlySpan{byte}, string, NumberStyles)"/>, at most <paramref name="max"/>.</summary>
    private T Number<T>(ReadOnlySpan<byte> value, string key, T max) where T : IBinaryInteger<T> =>
        Number<T>(value, key) is var number && number <= max ? number : throw Invalid(key);

    private static string? PeerKeyName(ReadOnlySpan<byte> key)
    {
        foreach (var name in PeerKeys)
        {
            if (Ascii.Equals(key, name))
            {
                return name;
            }
        }
        return null;
    }

    /// <summary>Null for the all-zero key, which UAPI uses to mean "no key".</summary>
    private WireGuardKey? ParseKey(ReadOnlySpan<byte> value, string key)
    {
        Span<byte> bytes = stackalloc byte[WireGuardKey.Length];
        if (value.Length != 2 * WireGuardKey.Length
            || Convert.FromHexString(value, bytes, out _, out var written) != OperationStatus.Done
            || written != WireGuardKey.Length)
        {
            throw Invalid(key);
        }
        if (!bytes.ContainsAnyExcept((byte)0))
        {
            return null;
        }
        var parsed = WireGuardKey.FromBytes(bytes);
        bytes.Clear();
        return parsed;
    }

    private IPEndPoint ParseEndpoint(ReadOnlySpan<byte> value)
    {
        // "a.b.c.d:port" or "[v6%zone]:port"; never a host name.
        Span<char> text = stackalloc char[128];
        if (value.Length > text.Length
            || Ascii.ToUtf16(value, text, out var written) != OperationStatus.Done
            || !IPEndPoint.TryParse(text[..written], out var endpoint))
        {
            throw Invalid("endpoint");
        }
        return endpoint;
    }

    private UapiProtocolException Invalid(string key) =>
        new($"UAPI response has an invalid value for '{key}' (line {_lineNumber}).");

    private void FinishPeer()
    {
        if (!_inPeer)
        {
            return;
        }
        _peers.Add(new PeerState
        {
            PublicKey = _publicKey,
            PresharedKey = _presharedKey,
            Endpoint = _endpoint,
            PersistentKeepaliveInterval = _keepalive,
            LastHandshake = _handshakeSeconds == 0 && _handshakeNanoseconds == 0
                ? null
                : DateTimeOffset.FromUnixTimeSeconds(_handshakeSeconds).AddTicks(_handshakeNanoseconds / TimeSpan.NanosecondsPerTick),
            ReceiveBytes = _receiveBytes,
            TransmitBytes = _transmitBytes,
            // An exact-size array: a response can hold 65,535 peers and every byte per peer counts.
            AllowedIps = _allowedIps.Count == 0 ? [] : _allowedIps.ToArray(),
            ProtocolVersion = _protocolVersion,
        });
        _presharedKey = null;
        _endpoint = null;
        _keepalive = TimeSpan.Zero;
        _handshakeSeconds = 0;
        _handshakeNanoseconds = 0;
        _receiveBytes = 0;
        _transmitBytes = 0;
        _allowedIps.Clear();
        _protocolVersion = 0;
    }

    // At the blank line, or at end of input: a response cut short after its errno line is still accepted.
    private DeviceState Result()
    {
        if (_errno is not { } errno)
        {
            throw new UapiProtocolException($"UAPI response ended without an errno line (after {_lineNumber} lines).");
        }
        if (errno != 0)
        {
            throw new UapiException(errno);
        }
        FinishPeer();
        return new DeviceState
        {
            PrivateKey = _privateKey,
            ListenPort = _listenPort,
            FirewallMark = _firewallMark,
            Peers = _peers,
        };
    }
}
