using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Mvc.Testing;
using Vpn.Core.Control;

namespace Vpn.Entry.Tests.Nodes;

/// <summary>A core (noop dataplane) on real Kestrel at 127.0.0.1:&lt;free port&gt;, TLS required, with the given files.</summary>
internal sealed class TlsCore : IAsyncDisposable
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
