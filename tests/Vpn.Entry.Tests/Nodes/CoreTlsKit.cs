using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Grpc.Core;

namespace Vpn.Entry.Tests.Nodes;

/// <summary>What the core TLS tests share: entry's channel factory built from its settings, calls that must be refused, and bare TCP/TLS peers.</summary>
internal static class CoreTlsKit
{
    public static readonly TimeSpan CallDeadline = TimeSpan.FromSeconds(5);

    public static Dictionary<string, string?> EntrySettings(TestCertificate? ca, TestCertificate? client, bool require)
    {
        var settings = new Dictionary<string, string?> { ["APP_REQUIRE_CORE_TLS"] = require ? "true" : "false" };
        if (ca is not null)
        {
            settings["APP_CORE_TLS_CA_FILE"] = ca.CertificateFile;
        }
        if (client is not null)
        {
            settings["APP_CORE_TLS_CLIENT_CERT_FILE"] = client.CertificateFile;
            settings["APP_CORE_TLS_CLIENT_KEY_FILE"] = client.KeyFile;
        }
        return settings;
    }

    /// <summary>Entry's channel factory exactly as entry builds it: from its settings.</summary>
    public static CoreChannelFactory Factory(TestCertificate? ca, TestCertificate? client, bool require = true)
    {
        var (options, errors) = OptionsLoading.Load(EntryOptions.Load, EntrySettings(ca, client, require));
        Assert.Empty(errors);
        return new CoreChannelFactory(options);
    }

    public static async Task<NodeStatus> GetNodeStatusAsync(CoreChannelFactory factory, string endpoint)
    {
        using var channel = factory.Create(endpoint);
        return await new VpnControl.VpnControlClient(channel).GetNodeStatusAsync(new GetNodeStatusRequest(),
            deadline: DateTime.UtcNow + CallDeadline, cancellationToken: TestContext.Current.CancellationToken);
    }

    /// <summary>The call fails quickly with an RpcException (never a deadline: the refusal is what ends it).</summary>
    public static async Task<RpcException> AssertRefusedAsync(CoreChannelFactory factory, string endpoint)
    {
        var error = await Assert.ThrowsAsync<RpcException>(() => GetNodeStatusAsync(factory, endpoint));
        Assert.NotEqual(StatusCode.DeadlineExceeded, error.StatusCode);
        return error;
    }

    /// <summary>Entry itself refused the core's certificate during the handshake (not, say, a connection reset later).</summary>
    public static void AssertHandshakeRefusedByEntry(RpcException error) =>
        Assert.True(Causes(error).Any(e => e is AuthenticationException), $"not a TLS handshake refusal: {error.Status.DebugException}");

    public static List<Exception> Causes(RpcException error)
    {
        var causes = new List<Exception>();
        for (var e = error.Status.DebugException; e is not null; e = e.InnerException)
        {
            causes.Add(e);
        }
        return causes;
    }

    /// <summary>Accepts one connection and completes (or fails) a TLS handshake offering h2 with <paramref name="certificate"/>; then hangs up.</summary>
    public static async Task ServeOneHandshakeAsync(TcpListener listener, X509Certificate2 certificate)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        timeout.CancelAfter(CallDeadline);
        using var client = await listener.AcceptTcpClientAsync(timeout.Token);
        await using var tls = new SslStream(client.GetStream());
        try
        {
            await tls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
            {
                ServerCertificate = certificate,
                ApplicationProtocols = [SslApplicationProtocol.Http2],
            }, timeout.Token);
        }
        catch (Exception e) when (e is AuthenticationException or IOException)
        {
            // The client hung up on the certificate: what the test wants.
        }
    }

    public static async Task<bool> AcceptsWithinAsync(TcpListener listener, TimeSpan wait)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        timeout.CancelAfter(wait);
        try
        {
            using var accepted = await listener.AcceptTcpClientAsync(timeout.Token);
            return true;
        }
        catch (OperationCanceledException) when (!TestContext.Current.CancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }
}
