using System.Collections.Concurrent;
using System.Net.Sockets;
using Grpc.Net.Client;
using Vpn.Contracts.Core.V1;

namespace Vpn.Entry.Nodes;

/// <summary>Creates the gRPC channel to a node's core. Tests substitute an in-process transport.</summary>
public interface ICoreChannelFactory
{
    GrpcChannel Create(string coreEndpoint);
}

/// <summary>
/// core_endpoint forms: "http://host:port" (HTTP/2 cleartext), "https://host:port" (TLS), "host:port" (cleartext), or
/// "unix:/path/core.sock" (a Unix socket, e.g. a core inside another network namespace on the same host).
/// </summary>
public sealed class CoreChannelFactory : ICoreChannelFactory
{
    public GrpcChannel Create(string coreEndpoint)
    {
        ArgumentNullException.ThrowIfNull(coreEndpoint);
        if (coreEndpoint.StartsWith("unix:", StringComparison.Ordinal))
        {
            var path = coreEndpoint["unix:".Length..];
            var handler = new SocketsHttpHandler
            {
                ConnectCallback = async (_, cancellationToken) =>
                {
                    var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                    try
                    {
                        await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), cancellationToken);
                        return new NetworkStream(socket, ownsSocket: true);
                    }
                    catch
                    {
                        socket.Dispose();
                        throw;
                    }
                },
            };
            return GrpcChannel.ForAddress("http://localhost", new GrpcChannelOptions { HttpHandler = handler });
        }
        var address = coreEndpoint.Contains("://", StringComparison.Ordinal) ? coreEndpoint : "http://" + coreEndpoint;
        return GrpcChannel.ForAddress(address, new GrpcChannelOptions
        {
            HttpHandler = new SocketsHttpHandler { EnableMultipleHttp2Connections = true, ConnectTimeout = TimeSpan.FromSeconds(3) },
        });
    }

    /// <summary>Whether entry can dial this endpoint form; checked when a node is registered.</summary>
    public static bool IsValidEndpoint(string value)
    {
        if (value.StartsWith("unix:/", StringComparison.Ordinal))
        {
            return value.Length > "unix:/".Length && value.Length < 108;
        }
        var address = value.Contains("://", StringComparison.Ordinal) ? value : "http://" + value;
        return Uri.TryCreate(address, UriKind.Absolute, out var uri)
            && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps)
            && uri.AbsolutePath == "/" && string.IsNullOrEmpty(uri.Query) && string.IsNullOrEmpty(uri.UserInfo);
    }
}

/// <summary>One long-lived channel per core endpoint (channels multiplex calls over HTTP/2).</summary>
public sealed class CoreClients(ICoreChannelFactory factory) : IDisposable
{
    private readonly ConcurrentDictionary<string, Lazy<GrpcChannel>> _channels = new(StringComparer.Ordinal);

    public VpnControl.VpnControlClient For(string coreEndpoint) =>
        new(_channels.GetOrAdd(coreEndpoint, e => new Lazy<GrpcChannel>(() => factory.Create(e))).Value);

    public void Dispose()
    {
        foreach (var channel in _channels.Values.Where(c => c.IsValueCreated))
        {
            channel.Value.Dispose();
        }
    }
}
