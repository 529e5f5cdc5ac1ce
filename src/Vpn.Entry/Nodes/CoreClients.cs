using System.Collections.Concurrent;
using System.Net.Sockets;
using Grpc.Core;
using Grpc.Net.Client;
using Vpn.Contracts.Core.V1;
using Vpn.ServiceDefaults;

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
public sealed class CoreChannelFactory(Configuration.EntryOptions options) : ICoreChannelFactory
{
    // An HTTP/2 PING on every connection, idle or not: a core that vanished without closing the connection (node
    // powered off, a NAT or load balancer dropping the flow) is noticed within delay + timeout and the connection
    // replaced, instead of the next Connect being written into the void until its deadline.
    private static readonly TimeSpan KeepAlivePingDelay = TimeSpan.FromSeconds(15);
    private static readonly TimeSpan KeepAlivePingTimeout = TimeSpan.FromSeconds(5);

    private readonly Configuration.CoreTlsOptions _tls = options.CoreTls;

    public GrpcChannel Create(string coreEndpoint)
    {
        ArgumentNullException.ThrowIfNull(coreEndpoint);
        if (UnixSocketEndpoint.TryGetPath(coreEndpoint, out var path))
        {
            var handler = new SocketsHttpHandler
            {
                KeepAlivePingDelay = KeepAlivePingDelay,
                KeepAlivePingTimeout = KeepAlivePingTimeout,
                KeepAlivePingPolicy = HttpKeepAlivePingPolicy.Always,
            }.ConnectingTo(path);
            return GrpcChannel.ForAddress("http://localhost", new GrpcChannelOptions { HttpHandler = handler });
        }
        var address = coreEndpoint.Contains("://", StringComparison.Ordinal) ? coreEndpoint : "http://" + coreEndpoint;
        var tls = address.StartsWith("https://", StringComparison.OrdinalIgnoreCase);
        if (!tls && _tls.Require)
        {
            // Refused before any byte is sent: every call fails like one to an unreachable core (502 node_unavailable).
            return GrpcChannel.ForAddress(address, new GrpcChannelOptions { HttpHandler = new RefuseCleartext() });
        }
        var socketsHandler = new SocketsHttpHandler
        {
            EnableMultipleHttp2Connections = true,
            ConnectTimeout = TimeSpan.FromSeconds(3),
            KeepAlivePingDelay = KeepAlivePingDelay,
            KeepAlivePingTimeout = KeepAlivePingTimeout,
            KeepAlivePingPolicy = HttpKeepAlivePingPolicy.Always,
        };
        // Without this switch (grpc-dotnet's documented opt-out, PR #2274) Grpc.Net.Client puts its own connectivity
        // tracking in front of the handler: once a call finds the core down, the channel stays in TransientFailure with an
        // exponential reconnect backoff (1 s growing to 120 s) and fails every call at once, without dialling, until its
        // next attempt — so the first starts after a core restart answered 502 although core was up. One core is one
        // address: the handler's own pool, which dials whenever it has no live connection, is all entry needs.
        socketsHandler.Properties["__GrpcLoadBalancingDisabled"] = true;
        if (tls)
        {
            if (_tls.ClientCertificate is { } client)
            {
                socketsHandler.SslOptions.ClientCertificates = [client];
            }
            socketsHandler.SslOptions.CertificateRevocationCheckMode = System.Security.Cryptography.X509Certificates.X509RevocationMode.NoCheck;
            if (_tls.Authorities is { } authorities)
            {
                // The cores' CA, not the machine's store, and nothing downloaded; the name must still match the endpoint.
                socketsHandler.SslOptions.CertificateChainPolicy = TlsFiles.ChainPolicy(authorities, TlsFiles.ServerAuthentication);
                socketsHandler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, chain, errors) =>
                    (errors & ~System.Net.Security.SslPolicyErrors.RemoteCertificateChainErrors) == System.Net.Security.SslPolicyErrors.None
                    && certificate is System.Security.Cryptography.X509Certificates.X509Certificate2 server
                    && TlsFiles.ChainsTo(server, authorities, TlsFiles.ServerAuthentication, chain);
            }
        }
        return GrpcChannel.ForAddress(address, new GrpcChannelOptions { HttpHandler = socketsHandler });
    }

    /// <summary>Whether this endpoint may be registered while APP_REQUIRE_CORE_TLS is on: https:// or a local unix: socket.</summary>
    public static bool IsSecureEndpoint(string value) =>
        UnixSocketEndpoint.IsUnix(value) || value.StartsWith("https://", StringComparison.OrdinalIgnoreCase);

    /// <summary>Whether entry can dial this endpoint form; checked when a node is registered.</summary>
    public static bool IsValidEndpoint(string value)
    {
        if (UnixSocketEndpoint.TryGetPath(value, out var path) && path.StartsWith('/'))
        {
            return path.Length > 1 && value.Length < 108;
        }
        var address = value.Contains("://", StringComparison.Ordinal) ? value : "http://" + value;
        return Uri.TryCreate(address, UriKind.Absolute, out var uri)
            && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps)
            && uri.AbsolutePath == "/" && string.IsNullOrEmpty(uri.Query) && string.IsNullOrEmpty(uri.UserInfo);
    }
}

/// <summary>The transport of a cleartext core endpoint while APP_REQUIRE_CORE_TLS is on: nothing leaves the process.</summary>
internal sealed class RefuseCleartext : HttpMessageHandler
{
    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
        Task.FromException<HttpResponseMessage>(new HttpRequestException("Cleartext core endpoints are refused while APP_REQUIRE_CORE_TLS is on."));
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

/// <summary>What a failed call to a core tells.</summary>
public static class CoreCalls
{
    /// <summary>
    /// The call failed in entry's own transport before core answered: the connection was refused, could not be made, or
    /// was found dead (a restarted core's old connection, not yet seen closed). Grpc.Net.Client reports that as
    /// Unavailable carrying the transport's exception; a status that core itself sent carries none.
    /// </summary>
    public static bool GotNoAnswer(Exception exception) => exception switch
    {
        HttpRequestException => true,
        RpcException { StatusCode: StatusCode.Unavailable } rpc => rpc.Status.DebugException is HttpRequestException or IOException or SocketException,
        _ => false,
    };
}
