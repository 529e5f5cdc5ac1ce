using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Grpc.Core;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Vpn.Contracts.Core.V1;
using Vpn.Core.Control;
using Vpn.Entry.Configuration;
using Vpn.Entry.Nodes;
using Vpn.Entry.Tests.Infrastructure;
using Vpn.TestSupport;

namespace Vpn.Entry.Tests.Nodes;

/// <summary>
/// entry's real <see cref="CoreChannelFactory"/> against a real core on Kestrel (127.0.0.1, a port of its own, noop
/// dataplane) with TLS and mTLS from PEM files: only the deployment's CA vouches for either side, names are checked,
/// and a cleartext endpoint is never dialled while APP_REQUIRE_CORE_TLS is on.
/// </summary>
public sealed class CoreTlsTests : IDisposable
{
    private static readonly TimeSpan CallDeadline = TimeSpan.FromSeconds(5);

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

    [Theory]
    [InlineData("http://127.0.0.1:{0}")]
    [InlineData("127.0.0.1:{0}")]
    public async Task GetNodeStatus_CleartextToTlsPort_Fails(string endpoint)
    {
        await using var core = await TlsCore.StartAsync(_pki.Server, _pki.Ca);

        await AssertRefusedAsync(Factory(_pki.Ca, _pki.Client, require: false), string.Format(endpoint, core.Port));
    }

    [Theory]
    [InlineData("http://127.0.0.1:{0}")]
    [InlineData("127.0.0.1:{0}")]
    [InlineData("HTTP://127.0.0.1:{0}")]
    public async Task GetNodeStatus_CleartextEndpointWhileRequired_RefusedWithoutConnecting(string endpoint)
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;

        var error = await AssertRefusedAsync(Factory(_pki.Ca, _pki.Client, require: true), string.Format(endpoint, port));

        Assert.Contains(Causes(error), e => e is HttpRequestException && e.Message.Contains("APP_REQUIRE_CORE_TLS", StringComparison.Ordinal));
        Assert.False(await AcceptsWithinAsync(listener, TimeSpan.FromMilliseconds(500)), "entry dialled a cleartext core endpoint while TLS is required");
    }

    [Fact]
    public async Task GetNodeStatus_CleartextEndpointNotRequired_Dials()
    {
        // The other side of the test above: the listener does see entry when cleartext is allowed.
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        using var channel = Factory(_pki.Ca, _pki.Client, require: false).Create($"http://127.0.0.1:{port}");
        var call = new VpnControl.VpnControlClient(channel).GetNodeStatusAsync(new GetNodeStatusRequest(),
            deadline: DateTime.UtcNow.AddSeconds(2), cancellationToken: TestContext.Current.CancellationToken);

        Assert.True(await AcceptsWithinAsync(listener, CallDeadline), "entry never dialled the cleartext endpoint");
        await Assert.ThrowsAsync<RpcException>(() => call.ResponseAsync);
    }

    [Fact]
    public async Task CoreStatus_ThroughEntryWithTlsSettings_ReachesTlsCore()
    {
        await using var core = await TlsCore.StartAsync(_pki.Server, _pki.Ca);
        await using var stack = await TestStack.StartAsync(StoreKind.InMemory, EntrySettings(_pki.Ca, _pki.Client, require: true), RealCoreChannels);
        var nodeId = await RegisterAsync(stack, "node-tls", $"https://127.0.0.1:{core.Port}", 201);

        var status = await stack.SendJsonAsync(stack.Admin(HttpMethod.Get, $"/v1/admin/core/status?node_id={nodeId}"), 200);

        Assert.Equal("10.64.0.0/20", status.GetProperty("client_pool").GetString());
    }

    [Fact]
    public async Task CoreStatus_ThroughEntryTrustingOtherCa_NodeUnavailable()
    {
        await using var core = await TlsCore.StartAsync(_pki.Server, _pki.Ca);
        await using var stack = await TestStack.StartAsync(StoreKind.InMemory, EntrySettings(_pki.OtherCa, _pki.Client, require: true), RealCoreChannels);
        var nodeId = await RegisterAsync(stack, "node-tls", $"https://127.0.0.1:{core.Port}", 201);

        var problem = await stack.SendJsonAsync(stack.Admin(HttpMethod.Get, $"/v1/admin/core/status?node_id={nodeId}"), 502);

        Assert.Equal("node_unavailable", problem.GetProperty("code").GetString());
    }

    [Theory]
    [InlineData("http://127.0.0.1:1")]
    [InlineData("127.0.0.1:1")]
    [InlineData("core.internal:50051")]
    public async Task RegisterNode_CleartextCoreEndpointWhileRequired_Invalid(string coreEndpoint)
    {
        await using var stack = await TestStack.StartAsync(StoreKind.InMemory, new Dictionary<string, string?> { ["APP_REQUIRE_CORE_TLS"] = "true" });

        using var response = await stack.Client.SendAsync(stack.Admin(HttpMethod.Post, "/v1/admin/nodes", NodeBody("node-plain", coreEndpoint)),
            TestContext.Current.CancellationToken);
        var text = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        using var problem = System.Text.Json.JsonDocument.Parse(text);
        Assert.Equal("invalid_request", problem.RootElement.GetProperty("code").GetString());
        Assert.Contains("APP_REQUIRE_CORE_TLS", problem.RootElement.GetProperty("detail").GetString(), StringComparison.Ordinal);
        var nodes = await stack.SendJsonAsync(stack.Admin(HttpMethod.Get, "/v1/admin/nodes"), 200);
        Assert.Empty(nodes.GetProperty("items").EnumerateArray());
    }

    [Theory]
    [InlineData("https://127.0.0.1:1")]
    [InlineData("https://core.internal:50051")]
    [InlineData("unix:/run/vpn/core.sock")]
    public async Task RegisterNode_SecureCoreEndpointWhileRequired_Registered(string coreEndpoint)
    {
        await using var stack = await TestStack.StartAsync(StoreKind.InMemory, new Dictionary<string, string?> { ["APP_REQUIRE_CORE_TLS"] = "true" });

        await RegisterAsync(stack, "node-secure", coreEndpoint, 201);
        await RegisterAsync(stack, "node-secure", coreEndpoint, 200);
    }

    [Fact]
    public async Task RegisterNode_CleartextCoreEndpointNotRequired_Registered()
    {
        await using var stack = await TestStack.StartAsync(StoreKind.InMemory, new Dictionary<string, string?> { ["APP_REQUIRE_CORE_TLS"] = "false" });

        await RegisterAsync(stack, "node-plain", "http://127.0.0.1:1", 201);
    }

    private static object NodeBody(string name, string coreEndpoint) => new
    {
        name, region = "eu-west", country_code = "DE", city_code = "fra", pool = "default", public_endpoint = "203.0.113.7:51820",
        public_key = TestStack.NewKey(), core_endpoint = coreEndpoint, capacity = 100,
    };

    private static async Task<Guid> RegisterAsync(TestStack stack, string name, string coreEndpoint, int expectedStatus)
    {
        var node = await stack.SendJsonAsync(stack.Admin(HttpMethod.Post, "/v1/admin/nodes", NodeBody(name, coreEndpoint)), expectedStatus);
        Assert.Equal(coreEndpoint, node.GetProperty("core_endpoint").GetString());
        return node.GetProperty("id").GetGuid();
    }

    // TestStack serves cores in-process; these tests want entry's own factory, built from entry's settings.
    private static void RealCoreChannels(IServiceCollection services)
    {
        services.RemoveAll<ICoreChannelFactory>();
        services.AddSingleton<ICoreChannelFactory, CoreChannelFactory>();
    }

    private static Dictionary<string, string?> EntrySettings(TestCertificate? ca, TestCertificate? client, bool require)
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
    private static CoreChannelFactory Factory(TestCertificate? ca, TestCertificate? client, bool require = true)
    {
        var (options, errors) = OptionsLoading.Load(EntryOptions.Load, EntrySettings(ca, client, require));
        Assert.Empty(errors);
        return new CoreChannelFactory(options);
    }

    private static async Task<NodeStatus> GetNodeStatusAsync(CoreChannelFactory factory, string endpoint)
    {
        using var channel = factory.Create(endpoint);
        return await new VpnControl.VpnControlClient(channel).GetNodeStatusAsync(new GetNodeStatusRequest(),
            deadline: DateTime.UtcNow + CallDeadline, cancellationToken: TestContext.Current.CancellationToken);
    }

    /// <summary>The call fails quickly with an RpcException (never a deadline: the refusal is what ends it).</summary>
    private static async Task<RpcException> AssertRefusedAsync(CoreChannelFactory factory, string endpoint)
    {
        var error = await Assert.ThrowsAsync<RpcException>(() => GetNodeStatusAsync(factory, endpoint));
        Assert.NotEqual(StatusCode.DeadlineExceeded, error.StatusCode);
        return error;
    }

    /// <summary>Entry itself refused the core's certificate during the handshake (not, say, a connection reset later).</summary>
    private static void AssertHandshakeRefusedByEntry(RpcException error) =>
        Assert.True(Causes(error).Any(e => e is AuthenticationException), $"not a TLS handshake refusal: {error.Status.DebugException}");

    private static List<Exception> Causes(RpcException error)
    {
        var causes = new List<Exception>();
        for (var e = error.Status.DebugException; e is not null; e = e.InnerException)
        {
            causes.Add(e);
        }
        return causes;
    }

    /// <summary>Accepts one connection and completes (or fails) a TLS handshake offering h2 with <paramref name="certificate"/>; then hangs up.</summary>
    private static async Task ServeOneHandshakeAsync(TcpListener listener, X509Certificate2 certificate)
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

    private static async Task<bool> AcceptsWithinAsync(TcpListener listener, TimeSpan wait)
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

    /// <summary>A core (noop dataplane) on real Kestrel at 127.0.0.1:&lt;free port&gt;, TLS required, with the given files.</summary>
    private sealed class TlsCore : IAsyncDisposable
    {
        private readonly WebApplicationFactory<VpnControlService> _factory;

        private TlsCore(WebApplicationFactory<VpnControlService> factory, int port)
        {
            _factory = factory;
            Port = port;
        }

        public int Port { get; }

        public static Task<TlsCore> StartAsync(TestCertificate server, TestCertificate clientCa)
        {
            var factory = new WebApplicationFactory<VpnControlService>().WithWebHostBuilder(b =>
            {
                b.UseSetting("WG_DATAPLANE", "noop");
                b.UseSetting("WG_CLIENT_POOL", "10.64.0.0/20");
                // Port 0: Kestrel picks a free one, read back below, so parallel tests never race for a port.
                b.UseSetting("CORE_GRPC_LISTEN", "127.0.0.1:0");
                b.UseSetting("CORE_REQUIRE_TLS", "true");
                b.UseSetting("CORE_TLS_CERT_FILE", server.CertificateFile);
                b.UseSetting("CORE_TLS_KEY_FILE", server.KeyFile);
                b.UseSetting("CORE_TLS_CLIENT_CA_FILE", clientCa.CertificateFile);
            });
            try
            {
                factory.UseKestrel();
                factory.StartServer();
                var addresses = factory.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses;
                var address = new Uri(Assert.Single(addresses));
                Assert.Equal(("https", "127.0.0.1"), (address.Scheme, address.Host));
                return Task.FromResult(new TlsCore(factory, address.Port));
            }
            catch
            {
                factory.Dispose();
                throw;
            }
        }

        public ValueTask DisposeAsync() => _factory.DisposeAsync();
    }
}
