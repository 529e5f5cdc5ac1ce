using System.Buffers;
using System.Net.Sockets;

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
        return await ExchangeAsync(GetRequest, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Applies <paramref name="config"/> in one request. Not atomic: after a <see cref="UapiException"/>
    /// (or a cancellation) the lines before the failing one may be in effect, so re-read the device.
    /// </summary>
    public async Task SetAsync(DeviceConfig config, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(config);
        // The whole request is built before connecting so that an invalid config sends nothing:
        // the device would apply a partial request up to the point where the connection closed.
        var request = new ArrayBufferWriter<byte>(256 + ((config.Peers?.Count ?? 0) * 160));
        try
        {
            UapiWriter.WriteSet(config, request);
            await ExchangeAsync(request.WrittenMemory, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            request.Clear();
        }
    }

    private async Task<DeviceState> ExchangeAsync(ReadOnlyMemory<byte> request, CancellationToken cancellationToken)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(_endPoint, cancellationToken).ConfigureAwait(false);
        }
        catch (SocketException e)
        {
            throw new UapiUnavailableException($"WireGuard UAPI socket {SocketPath} is unavailable ({e.SocketErrorCode}).", e);
        }

        await using var stream = new NetworkStream(socket, ownsSocket: false);
        IOException? writeFailure = null;
        try
        {
            await stream.WriteAsync(request, cancellationToken).ConfigureAwait(false);
        }
        catch (IOException e)
        {
            // wireguard-go stops reading at the first line it rejects, answers errno and closes, so
            // the rest of a large set fails to send while the answer is already waiting to be read.
            writeFailure = e;
        }

        try
        {
            var state = await UapiParser.ReadAsync(stream, cancellationToken).ConfigureAwait(false);
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
