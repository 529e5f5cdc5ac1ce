using System.Security.Cryptography.X509Certificates;
using static Vpn.Entry.Tests.Nodes.CoreTlsKit;

namespace Vpn.Entry.Tests.Nodes;

/// <summary>
/// entry's real <see cref="CoreChannelFactory"/> against a real core on Kestrel (127.0.0.1, a port of its own, noop
/// dataplane) with TLS and mTLS from PEM files: only the deployment's CA vouches for either side, names are checked,
/// and a cleartext endpoint is never dialled while APP_REQUIRE_CORE_TLS is on.
/// This class: the handshake (who vouches for whom, names, certificate usages); cleartext endpoints and entry's HTTP
/// API over TLS are <see cref="CoreTlsEndpointTests"/>.
/// </summary>
public sealed class CoreTlsTests : IDisposable
{
    private readonly TestCertificates _pki = new();

    public void Dispose() => _pki.Dispose();

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("localhost")]
    public async Task GetNodeStatus_RightCaAndClientCertificate_Answers(string host)
    {
        await using var core = await TlsCore.StartAsync(_pki.Server, _pki.Ca);
        var factory = Factory(_pki.Ca, _pki.Client);

        var status = await GetNodeStatusAsync(factory, $"https://{host}:{core.Port}");

        Assert.True(status.Healthy);
        Assert.Equal("10.64.0.0/20", status.ClientPool);
    }

    [Fact]
    public async Task GetNodeStatus_NoClientCertificate_RefusedByCore()
    {
        await using var core = await TlsCore.StartAsync(_pki.Server, _pki.Ca);

        await AssertRefusedAsync(Factory(_pki.Ca, client: null), $"https://127.0.0.1:{core.Port}");
    }

    [Fact]
    public async Task GetNodeStatus_ClientCertificateFromOtherCa_RefusedByCore()
    {
        await using var core = await TlsCore.StartAsync(_pki.Server, _pki.Ca);

        await AssertRefusedAsync(Factory(_pki.Ca, _pki.OtherClient), $"https://127.0.0.1:{core.Port}");
    }

    [Fact]
    public async Task GetNodeStatus_ClientCertificateWithoutClientAuthUsage_RefusedByCore()
    {
        await using var core = await TlsCore.StartAsync(_pki.Server, _pki.Ca);

        // The core's own kind of certificate, from the right CA, but issued for serverAuth only. Entry refuses it at
        // start (see the next test), so it is put in place past the settings to show the core's check.
        var (options, _) = OptionsLoading.Load(EntryOptions.Load, EntrySettings(_pki.Ca, _pki.Client, true));
        var forged = new EntryOptions
        {
            AccessTokens = options.AccessTokens,
            Oidc = options.Oidc,
            RateLimits = options.RateLimits,
            CoreTls = new CoreTlsOptions
            {
                Require = true,
                Authorities = options.CoreTls.Authorities,
                ClientCertificate = X509Certificate2.CreateFromPemFile(_pki.Server.CertificateFile, _pki.Server.KeyFile),
            },
        };
        await AssertRefusedAsync(new CoreChannelFactory(forged), $"https://127.0.0.1:{core.Port}");
    }

    [Fact]
    public void Settings_ClientCertificateWithoutClientAuthUsage_RefusedAtStart()
    {
        var (_, errors) = OptionsLoading.Load(EntryOptions.Load, EntrySettings(_pki.Ca, _pki.Server, true));

        Assert.Contains(errors, e => e.Contains("APP_CORE_TLS_CLIENT_CERT_FILE", StringComparison.Ordinal) && e.Contains("client authentication", StringComparison.Ordinal));
    }

    [Fact]
    public async Task GetNodeStatus_ClientCertificateWithoutAnyUsageList_RefusedByCore()
    {
        // Valid for anything to a chain builder; entry's certificate must say client authentication explicitly.
        var noUsage = _pki.CreateClient("no-usage-client", _pki.Ca, purpose: null);
        await using var core = await TlsCore.StartAsync(_pki.Server, _pki.Ca);

        await AssertRefusedAsync(Factory(_pki.Ca, noUsage), $"https://127.0.0.1:{core.Port}");
    }

    [Fact]
    public async Task Handshake_ClientCertificateNamingAnIssuerUrl_CoreFetchesNothing()
    {
        // An unauthenticated client presents a certificate from an unknown CA whose AIA points at a listener we own:
        // the core must refuse it without calling out (no request forgery, no waiting on the peer's URL).
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var url = $"http://127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}/issuer.crt";
        var lure = _pki.CreateClient("aia-client", _pki.OtherCa, TestCertificates.ClientAuthentication, caIssuersUrl: url);
        await using var core = await TlsCore.StartAsync(_pki.Server, _pki.Ca);

        // A bare TLS client that presents the certificate as is (offline: it builds no chain of its own).
        using (var tcp = new TcpClient())
        {
            await tcp.ConnectAsync(IPAddress.Loopback, core.Port, TestContext.Current.CancellationToken);
            await using var tls = new System.Net.Security.SslStream(tcp.GetStream());
            var refused = await Record.ExceptionAsync(async () =>
            {
                await tls.AuthenticateAsClientAsync(new System.Net.Security.SslClientAuthenticationOptions
                {
                    TargetHost = "localhost",
                    ClientCertificateContext = System.Net.Security.SslStreamCertificateContext.Create(lure.Certificate, null, offline: true),
                    // The core's certificate is not what this test is about; the core's check of ours is.
                    RemoteCertificateValidationCallback = (_, certificate, _, _) => certificate is not null,
                    ApplicationProtocols = [System.Net.Security.SslApplicationProtocol.Http2],
                }, TestContext.Current.CancellationToken).WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
                // TLS 1.3 reports a refused client certificate on the first read.
                var buffer = new byte[1];
                var read = await tls.ReadAsync(buffer, TestContext.Current.CancellationToken).AsTask().WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
                Assert.Equal(0, read);
            });
            Assert.IsNotType<TimeoutException>(refused);
        }

        var accepted = listener.AcceptTcpClientAsync(TestContext.Current.CancellationToken).AsTask();
        Assert.NotSame(accepted, await Task.WhenAny(accepted, Task.Delay(1000, TestContext.Current.CancellationToken)));
    }

    [Fact]
    public async Task GetNodeStatus_EntryWithoutCaFile_ServerUntrusted()
    {
        await using var core = await TlsCore.StartAsync(_pki.Server, _pki.Ca);

        var error = await AssertRefusedAsync(Factory(ca: null, _pki.Client), $"https://127.0.0.1:{core.Port}");

        AssertHandshakeRefusedByEntry(error);
    }

    [Fact]
    public async Task GetNodeStatus_EntryTrustsOtherCa_ServerUntrusted()
    {
        await using var core = await TlsCore.StartAsync(_pki.Server, _pki.Ca);

        var error = await AssertRefusedAsync(Factory(_pki.OtherCa, _pki.Client), $"https://127.0.0.1:{core.Port}");

        AssertHandshakeRefusedByEntry(error);
    }

    [Fact]
    public async Task GetNodeStatus_CoreCertificateFromOtherCa_ServerUntrusted()
    {
        await using var core = await TlsCore.StartAsync(_pki.OtherServer, _pki.Ca);

        var error = await AssertRefusedAsync(Factory(_pki.Ca, _pki.Client), $"https://127.0.0.1:{core.Port}");

        AssertHandshakeRefusedByEntry(error);
    }

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("localhost")]
    public async Task GetNodeStatus_CoreCertificateForOtherName_NameMismatchNotWaived(string host)
    {
        await using var core = await TlsCore.StartAsync(_pki.WrongNameServer, _pki.Ca);

        var error = await AssertRefusedAsync(Factory(_pki.Ca, _pki.Client), $"https://{host}:{core.Port}");

        AssertHandshakeRefusedByEntry(error);
    }

    [Fact]
    public async Task GetNodeStatus_ServerCertificateWithoutServerAuthUsage_ServerUntrusted()
    {
        // Kestrel will not serve such a certificate (see the next test), so a bare TLS server presents it.
        using var certificate = X509Certificate2.CreateFromPemFile(_pki.ClientAuthOnlyServer.CertificateFile, _pki.ClientAuthOnlyServer.KeyFile);
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var server = ServeOneHandshakeAsync(listener, certificate);

        var error = await AssertRefusedAsync(Factory(_pki.Ca, _pki.Client), $"https://127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}");

        AssertHandshakeRefusedByEntry(error);
        await server;
    }

    [Fact]
    public async Task Start_ServerCertificateWithoutServerAuthUsage_CoreRefusesToStart()
    {
        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => TlsCore.StartAsync(_pki.ClientAuthOnlyServer, _pki.Ca));

        // Refused by the settings check, before Kestrel would: "…does not allow server authentication."
        Assert.Contains("server authentication", error.Message, StringComparison.Ordinal);
    }
}
