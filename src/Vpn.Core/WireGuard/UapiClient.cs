using System.Buffers;
using System.Diagnostics;

namespace Vpn.Core.WireGuard;

/// <summary>
/// Talks to one userspace WireGuard device (wireguard-go) over its UAPI unix socket, one connection
/// per operation. Safe for concurrent use; the device serialises operations itself.
/// Throws <see cref="UapiUnavailableException"/> when the device cannot be reached,
/// <see cref="UapiException"/> when it answers with a non-zero errno and
/// <see cref="UapiProtocolException"/> when the answer is malformed.
/// </summary>
public sealed class UapiClient
{
    private const string SocketDirectory = "/var/run/wireguard";

    // Linux interface names are at most 15 bytes (IFNAMSIZ 16 with the terminator).
    private const int MaxInterfaceNameLength = 15;

    private static readonly byte[] GetRequest = "get=1\n\n"u8.ToArray();

    // An empty set: wireguard-go takes its configuration lock, changes nothing and answers errno=0.
    private static readonly byte[] PingRequest = "set=1\n\n"u8.ToArray();

    private readonly UnixDomainSocketEndPoint _endPoint;

    public UapiClient(string socketPath)
    {
        ArgumentException.ThrowIfNullOrEmpty(socketPath);
        _endPoint = new UnixDomainSocketEndPoint(socketPath);
        SocketPath = socketPath;
    }

    public string SocketPath { get; }

    /// <summary>Where wireguard-go puts the socket for <paramref name="interfaceName"/>.</summary>
    public static string SocketPathFor(string interfaceName)
    {
        ArgumentException.ThrowIfNullOrEmpty(interfaceName);
        if (interfaceName.Length > MaxInterfaceNameLength || interfaceName is "." or ".."
            || interfaceName.AsSpan().IndexOfAny('/', '\0') >= 0 || interfaceName.Any(char.IsWhiteSpace))
        {
            throw new ArgumentException("Not a valid network interface name.", nameof(interfaceName));
        }
        return $"{SocketDirectory}/{interfaceName}.sock";
    }

    public async Task<DeviceState> GetAsync(CancellationToken cancellationToken = default)
    {
        return await ExchangeAsync(GetRequest, synchronous: false, Timeout.InfiniteTimeSpan, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Whether the device answers, without the cost of a get (every peer, at 64k peers megabytes, and the private key).
    /// Throws as <see cref="GetAsync"/> does.
    /// </summary>
    public async Task PingAsync(CancellationToken cancellationToken = default)
    {
        await ExchangeAsync(PingRequest, synchronous: false, Timeout.InfiniteTimeSpan, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Applies <paramref name="config"/> in one request. Not atomic: after a <see cref="UapiException"/>
    /// (or a cancellation) the lines before the failing one may be in effect, so re-read the device.
    /// </summary>
    public Task SetAsync(DeviceConfig config, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(config);
        return SetAsync(config, new ArrayBufferWriter<byte>(256 + ((config.Peers?.Count ?? 0) * 160)), cancellationToken);
    }

    /// <summary>
    /// As <see cref="SetAsync(DeviceConfig, CancellationToken)"/>, building the request in <paramref name="buffer"/>, which
    /// is empty (and wiped) again when this returns. A caller that writes large sets one after another passes the same
    /// buffer each time: a request of thousands of peers is a large-object-heap array, and allocating one per set brought
    /// on full (gen 2) collections in the middle of a burst of Connects.
    /// </summary>
    public Task SetAsync(DeviceConfig config, ArrayBufferWriter<byte> buffer, CancellationToken cancellationToken = default) =>
        SetCoreAsync(config, buffer, synchronous: false, Timeout.InfiniteTimeSpan, cancellationToken).AsTask();

    /// <summary>
    /// As <see cref="SetAsync(DeviceConfig, ArrayBufferWriter{byte}, CancellationToken)"/>, blocking the calling thread in
    /// socket calls bounded by <paramref name="timeout"/> each. For a writer with a thread of its own: it never waits for a
    /// thread-pool thread, so a pool busy with thousands of requests cannot hold back the write they are all waiting for.
    /// </summary>
    public void Set(DeviceConfig config, ArrayBufferWriter<byte> buffer, TimeSpan timeout)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(timeout, TimeSpan.Zero);
        var set = SetCoreAsync(config, buffer, synchronous: true, timeout, CancellationToken.None);
        Debug.Assert(set.IsCompleted, "A synchronous set completed asynchronously.");
        set.GetAwaiter().GetResult();
    }

    private async ValueTask SetCoreAsync(DeviceConfig config, ArrayBufferWriter<byte> buffer, bool synchronous, TimeSpan timeout,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(buffer);
        // The whole request is built before connecting so that an invalid config sends nothing:
        // the device would apply a partial request up to the point where the connection closed.
        buffer.Clear();
        try
        {
            UapiWriter.WriteSet(config, buffer);
            await ExchangeAsync(buffer.WrittenMemory, synchronous, timeout, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            // Also wipes what was written: a set may carry the private key.
            buffer.Clear();
        }
    }

    /// <summary>
    /// One request and its answer on a new connection. With <paramref name="synchronous"/> every socket call blocks
    /// (bounded by <paramref name="timeout"/>) and the returned task is already complete.
    /// </summary>
    private async ValueTask<DeviceState> ExchangeAsync(ReadOnlyMemory<byte> request, bool synchronous, TimeSpan timeout,
        CancellationToken cancellationToken)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        if (synchronous)
        {
            // At least 1 ms: a socket timeout of 0 means none at all.
            socket.SendTimeout = socket.ReceiveTimeout = (int)Math.Clamp(Math.Ceiling(timeout.TotalMilliseconds), 1, int.MaxValue);
        }
        try
        {
            if (synchronous)
            {
                socket.Connect(_endPoint);
            }
            else
            {
                await socket.ConnectAsync(_endPoint, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (SocketException e)
        {
            throw new UapiUnavailableException($"WireGuard UAPI socket {SocketPath} is unavailable ({e.SocketErrorCode}).", e);
        }

        using var stream = new NetworkStream(socket, ownsSocket: false);
        IOException? writeFailure = null;
        try
        {
            if (synchronous)
            {
                stream.Write(request.Span);
            }
            else
            {
                await stream.WriteAsync(request, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (IOException e)
        {
            // wireguard-go stops reading at the first line it rejects, answers errno and closes, so
            // the rest of a large set fails to send while the answer is already waiting to be read.
            writeFailure = e;
        }

        try
        {
            var state = synchronous ? UapiParser.Read(stream) : await UapiParser.ReadAsync(stream, cancellationToken).ConfigureAwait(false);
            return writeFailure is null ? state : throw BrokeWhileSending(writeFailure);
        }
        catch (UapiProtocolException) when (writeFailure is not null)
        {
            throw BrokeWhileSending(writeFailure);
        }
        catch (IOException e) when (e is not (UapiException or UapiProtocolException or UapiUnavailableException))
        {
            throw new UapiUnavailableException($"WireGuard UAPI connection to {SocketPath} broke while receiving.", e);
        }
    }

    private UapiUnavailableException BrokeWhileSending(IOException writeFailure) =>
        new($"WireGuard UAPI connection to {SocketPath} broke while sending.", writeFailure);
}
