using System.Buffers.Binary;
using System.Text;

namespace Vpn.Bench;

/// <summary>
/// A light load generator in the manner of h2load: N unary gRPC calls as N concurrent streams of one HTTP/2 connection,
/// their frames encoded before the clock starts, so that what the clock sees is the server's work and not a client's.
/// </summary>
/// <remarks>
/// Why not Grpc.Net.Client: on this two-core box the load generator shares the CPUs with core and wireguard-go, and
/// Grpc.Net.Client spends about as much CPU per call as core itself does (about 1 s per 10,000 calls here). In production
/// that CPU is entry's, on other machines, so charging it to the node understates what the node can do. p1 reports both.
/// It speaks only what a unary burst needs: the client preface and SETTINGS, a constant HPACK header block (literals from
/// the static table, no dynamic table, no Huffman), the message in one DATA frame, flow control of what it sends, and
/// the acknowledgements the server is owed (SETTINGS, PING). It decodes no response headers: a call succeeded when its
/// response carried a message (a DATA frame) before the trailers; gRPC errors come as trailers alone. Callers verify the
/// effect independently (p1 counts the peers on the device).
/// </remarks>
internal sealed class H2UnaryBurst : IAsyncDisposable
{
    private const byte Data = 0x0, Headers = 0x1, RstStream = 0x3, Settings = 0x4, Ping = 0x6, GoAway = 0x7, WindowUpdate = 0x8;
    private const byte EndStream = 0x1, Ack = 0x1, EndHeaders = 0x4;
    private const int MaxWindow = int.MaxValue;

    private readonly Socket _socket;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly object _gate = new();
    private readonly TaskCompletionSource _settingsReceived = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Task _reader;
    private TaskCompletionSource _windowOpened = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TaskCompletionSource? _done;
    private long _sendWindow = 65_535;
    private long _maxConcurrentStreams = long.MaxValue;
    private long _initialStreamWindow = 65_535;
    private int _open;
    private int _expected;
    private int _succeeded;
    private int _failed;
    // Per call: 0 sent, 1 message received, 2 answered.
    private byte[] _state = [];

    private H2UnaryBurst(Socket socket)
    {
        _socket = socket;
        _reader = Task.Run(ReadLoopAsync);
    }

    /// <summary>Opens the connection and completes the SETTINGS exchange, so a burst starts on an established connection.</summary>
    public static async Task<H2UnaryBurst> ConnectAsync(string unixSocketPath)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(unixSocketPath));
        // Preface, SETTINGS (no push; a stream window nothing will fill) and the connection window opened likewise.
        var hello = new List<byte>("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8.ToArray());
        hello.AddRange(Frame(Settings, 0, 0, [0, 2, 0, 0, 0, 0, 0, 4, 0x7f, 0xff, 0xff, 0xff]));
        var increment = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(increment, MaxWindow - 65_535);
        hello.AddRange(Frame(WindowUpdate, 0, 0, increment));
        await socket.SendAsync(hello.ToArray());
        var client = new H2UnaryBurst(socket);
        await client._settingsReceived.Task.WaitAsync(TimeSpan.FromSeconds(10));
        return client;
    }

    /// <summary>
    /// Encodes one unary call per message to <paramref name="path"/> (e.g. <c>/vpn.core.v1.VpnControl/Connect</c>) on fresh
    /// streams. The result is sent by <see cref="SendAsync"/>; encoding is kept apart so it can happen before timing.
    /// </summary>
    public static EncodedBurst Encode(string path, IReadOnlyList<byte[]> messages)
    {
        var block = HeaderBlock(path);
        var output = new List<byte>(messages.Count * (block.Length + 128));
        var offsets = new int[messages.Count + 1];
        for (var i = 0; i < messages.Count; i++)
        {
            offsets[i] = output.Count;
            var streamId = (2 * i) + 1;
            output.AddRange(Frame(Headers, EndHeaders, streamId, block));
            var data = new byte[5 + messages[i].Length];
            BinaryPrimitives.WriteInt32BigEndian(data.AsSpan(1), messages[i].Length);
            messages[i].CopyTo(data, 5);
            output.AddRange(Frame(Data, EndStream, streamId, data));
        }
        offsets[messages.Count] = output.Count;
        return new EncodedBurst(output.ToArray(), offsets, [.. messages.Select(m => 5 + m.Length)]);
    }

    /// <summary>Sends the burst (honouring the server's flow control and stream limit) and waits for every answer.</summary>
    public async Task<(int Succeeded, int Failed)> SendAsync(EncodedBurst burst, TimeSpan timeout)
    {
        ArgumentNullException.ThrowIfNull(burst);
        var calls = burst.DataLengths.Length;
        if (burst.DataLengths.Any(length => length > _initialStreamWindow))
        {
            throw new InvalidOperationException("A message is larger than the server's stream window; this client does not split DATA.");
        }
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            _state = new byte[calls];
            _expected = calls;
            _succeeded = _failed = 0;
            _done = done;
        }
        var next = 0;
        while (next < calls)
        {
            Task wait;
            int end;
            lock (_gate)
            {
                // Take as many whole calls as the connection window and the stream limit allow, up to 256 KiB a write.
                end = next;
                long window = _sendWindow;
                while (end < calls && _open + (end - next) < _maxConcurrentStreams && window >= burst.DataLengths[end]
                    && burst.Offsets[end + 1] - burst.Offsets[next] <= 256 * 1024)
                {
                    window -= burst.DataLengths[end];
                    end++;
                }
                _sendWindow = window;
                _open += end - next;
                wait = _windowOpened.Task;
            }
            if (end == next)
            {
                await wait.WaitAsync(timeout);
                continue;
            }
            await WriteAsync(burst.Bytes.AsMemory(burst.Offsets[next], burst.Offsets[end] - burst.Offsets[next]));
            next = end;
        }
        await done.Task.WaitAsync(timeout);
        lock (_gate)
        {
            return (_succeeded, _failed);
        }
    }

    public async ValueTask DisposeAsync()
    {
        _socket.Dispose();
        try
        {
            await _reader;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or IOException)
        {
        }
        _writeLock.Dispose();
    }

    private async Task WriteAsync(ReadOnlyMemory<byte> bytes)
    {
        await _writeLock.WaitAsync();
        try
        {
            while (!bytes.IsEmpty)
            {
                var sent = await _socket.SendAsync(bytes);
                bytes = bytes[sent..];
            }
        }
        finally
        {
            _writeLock.Release();
        }
    }

    private async Task ReadLoopAsync()
    {
        var buffer = new byte[1 << 20];
        int start = 0, end = 0;
        while (true)
        {
            // One whole frame in the buffer, or read more.
            if (end - start >= 9)
            {
                var length = (buffer[start] << 16) | (buffer[start + 1] << 8) | buffer[start + 2];
                if (end - start >= 9 + length)
                {
                    var type = buffer[start + 3];
                    var flags = buffer[start + 4];
                    var stream = BinaryPrimitives.ReadInt32BigEndian(buffer.AsSpan(start + 5)) & int.MaxValue;
                    await OnFrameAsync(type, flags, stream, buffer.AsMemory(start + 9, length));
                    start += 9 + length;
                    continue;
                }
                if (9 + length > buffer.Length)
                {
                    throw new InvalidOperationException($"A frame of {length} bytes exceeds the read buffer.");
                }
            }
            if (start > 0)
            {
                Buffer.BlockCopy(buffer, start, buffer, 0, end - start);
                end -= start;
                start = 0;
            }
            var read = await _socket.ReceiveAsync(buffer.AsMemory(end));
            if (read == 0)
            {
                Fail(new IOException("The server closed the connection."));
                return;
            }
            end += read;
        }
    }

    private async Task OnFrameAsync(byte type, byte flags, int stream, ReadOnlyMemory<byte> payload)
    {
        switch (type)
        {
            case Data when stream > 0:
                MarkMessage(stream);
                if ((flags & EndStream) != 0)
                {
                    Complete(stream, reset: false);
                }
                break;
            case Headers when stream > 0 && (flags & EndStream) != 0:
                Complete(stream, reset: false);
                break;
            case RstStream when stream > 0:
                Complete(stream, reset: true);
                break;
            case Settings when (flags & Ack) == 0:
                lock (_gate)
                {
                    for (var i = 0; i + 6 <= payload.Length; i += 6)
                    {
                        var id = BinaryPrimitives.ReadUInt16BigEndian(payload.Span[i..]);
                        var value = BinaryPrimitives.ReadUInt32BigEndian(payload.Span[(i + 2)..]);
                        if (id == 3)
                        {
                            _maxConcurrentStreams = value;
                        }
                        else if (id == 4)
                        {
                            _initialStreamWindow = value;
                        }
                    }
                }
                await WriteAsync(Frame(Settings, Ack, 0, []));
                _settingsReceived.TrySetResult();
                break;
            case Ping when (flags & Ack) == 0:
                await WriteAsync(Frame(Ping, Ack, 0, payload.ToArray()));
                break;
            case WindowUpdate when stream == 0:
                lock (_gate)
                {
                    _sendWindow += BinaryPrimitives.ReadInt32BigEndian(payload.Span) & int.MaxValue;
                    OpenWindow();
                }
                break;
            case GoAway:
                Fail(new IOException("The server sent GOAWAY."));
                break;
            default:
                // Response HEADERS before the message, SETTINGS and PING acknowledgements, stream WINDOW_UPDATEs: nothing to do.
                break;
        }
    }

    private void MarkMessage(int stream)
    {
        lock (_gate)
        {
            var index = (stream - 1) / 2;
            if (index < _state.Length && _state[index] == 0)
            {
                _state[index] = 1;
            }
        }
    }

    private void Complete(int stream, bool reset)
    {
        lock (_gate)
        {
            var index = (stream - 1) / 2;
            if (index >= _state.Length || _state[index] == 2)
            {
                return; // e.g. a RST_STREAM after the trailers
            }
            var answered = _state[index] == 1;
            _state[index] = 2;
            if (reset || !answered)
            {
                _failed++;
            }
            else
            {
                _succeeded++;
            }
            _open--;
            OpenWindow();
            if (_succeeded + _failed == _expected)
            {
                _done?.TrySetResult();
            }
        }
    }

    private void OpenWindow()
    {
        var opened = _windowOpened;
        _windowOpened = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        opened.TrySetResult();
    }

    private void Fail(Exception e)
    {
        _settingsReceived.TrySetException(e);
        lock (_gate)
        {
            _done?.TrySetException(e);
        }
    }

    private static byte[] Frame(byte type, byte flags, int stream, byte[] payload)
    {
        var frame = new byte[9 + payload.Length];
        frame[0] = (byte)(payload.Length >> 16);
        frame[1] = (byte)(payload.Length >> 8);
        frame[2] = (byte)payload.Length;
        frame[3] = type;
        frame[4] = flags;
        BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(5), stream);
        payload.CopyTo(frame, 9);
        return frame;
    }

    /// <summary>:method POST, :scheme http, :path, :authority, content-type application/grpc, te trailers (RFC 7541).</summary>
    private static byte[] HeaderBlock(string path)
    {
        var block = new List<byte> { 0x83, 0x86 }; // indexed: static entries 3 (:method POST) and 6 (:scheme http)
        Literal(block, 4, 4, path);                // literal without indexing, name = static entry 4 (:path)
        Literal(block, 4, 1, "localhost");         // static entry 1 (:authority)
        Literal(block, 4, 31, "application/grpc"); // static entry 31 (content-type)
        block.Add(0x00);                           // literal without indexing, new name
        String(block, "te");
        String(block, "trailers");
        return [.. block];
    }

    private static void Literal(List<byte> block, int prefixBits, int nameIndex, string value)
    {
        Integer(block, 0x00, prefixBits, nameIndex);
        String(block, value);
    }

    private static void String(List<byte> block, string value)
    {
        var bytes = Encoding.ASCII.GetBytes(value);
        Integer(block, 0x00, 7, bytes.Length); // H = 0: no Huffman coding
        block.AddRange(bytes);
    }

    private static void Integer(List<byte> block, byte high, int prefixBits, int value)
    {
        var max = (1 << prefixBits) - 1;
        if (value < max)
        {
            block.Add((byte)(high | value));
            return;
        }
        block.Add((byte)(high | max));
        value -= max;
        while (value >= 128)
        {
            block.Add((byte)((value % 128) + 128));
            value /= 128;
        }
        block.Add((byte)value);
    }
}

/// <summary>A burst's frames, the offset of each call's frames (plus the end) and each call's DATA payload length.</summary>
internal sealed record EncodedBurst(byte[] Bytes, int[] Offsets, int[] DataLengths);
