using System.Diagnostics.CodeAnalysis;
using System.Net.Sockets;

namespace Vpn.ServiceDefaults;

/// <summary>
/// Endpoints written <c>unix:/path.sock</c>: HTTP (HTTP/1.1 or HTTP/2) over a Unix domain socket, e.g. to a core inside
/// another network namespace on the same host, or to entry beside it. Used for CORE_GRPC_LISTEN, a node's core_endpoint
/// and CORE_ENTRY_URL.
/// </summary>
public static class UnixSocketEndpoint
{
    public const string Scheme = "unix";

    public const string Prefix = Scheme + ":";

    public static bool IsUnix(string endpoint)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        return endpoint.StartsWith(Prefix, StringComparison.Ordinal);
    }

    /// <summary>The socket path of a <c>unix:PATH</c> endpoint, as written (not checked to be absolute).</summary>
    public static bool TryGetPath(string endpoint, [NotNullWhen(true)] out string? path)
    {
        path = IsUnix(endpoint) ? endpoint[Prefix.Length..] : null;
        return path is not null;
    }

    /// <summary>Makes <paramref name="handler"/> dial the socket at <paramref name="path"/> for every connection,
    /// whatever host the request names (use a placeholder such as <c>http://localhost</c>).</summary>
    public static SocketsHttpHandler ConnectingTo(this SocketsHttpHandler handler, string path)
    {
        ArgumentNullException.ThrowIfNull(handler);
        var endPoint = new UnixDomainSocketEndPoint(path);
        handler.ConnectCallback = async (_, cancellationToken) =>
        {
            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                await socket.ConnectAsync(endPoint, cancellationToken).ConfigureAwait(false);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        };
        return handler;
    }
}
