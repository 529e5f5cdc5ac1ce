using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using OpenTelemetry.Metrics;
using Vpn.Core.Control;
using Vpn.Core.Dataplane;
using Vpn.Core.Dns;
using Vpn.Core.EntryApi;
using Vpn.Core.Health;
using Vpn.Core.Reconciliation;
using Vpn.ServiceDefaults;

namespace Vpn.Core;

public static class CoreServiceCollectionExtensions
{
    public static WebApplicationBuilder AddCoreServices(this WebApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var options = CoreOptions.Load(builder.Configuration, out var errors);
        if (errors.Count > 0)
        {
            throw new InvalidOperationException("Invalid configuration:\n- " + string.Join("\n- ", errors));
        }
        builder.Services.AddSingleton(options);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            ListenGrpc(kestrel, options);
            // Prometheus scrapes over HTTP/1.1, which the HTTP/2-only gRPC endpoint cannot speak. Its connections are
            // recognised by their local endpoint, so /metrics answers on them only (UseCoreMetricsEndpoint), never on the gRPC port.
            if (options.MetricsListen is { } metrics)
            {
                kestrel.Listen(IPEndPoint.Parse(metrics), o => o.Protocols = HttpProtocols.Http1);
            }
        });
        builder.Services.AddOpenTelemetry().WithMetrics(m => m.AddMeter(ReconcileMetrics.MeterName));
        builder.Services.AddGrpc();
        builder.Services.TryAddSingleton(TimeProvider.System);
        builder.Services.AddMetrics();
        if (options.IsLinux)
        {
            builder.Services.AddSingleton<IDataplane, LinuxDataplane>();
        }
        else
        {
            builder.Services.AddSingleton<IDataplane, NoopDataplane>();
        }
        builder.Services.AddSingleton<ReconcileSignal>();
        builder.Services.AddSingleton<ReconcileMetrics>();
        builder.Services.AddSingleton<PeerRegistry>();
        builder.Services.AddSingleton(new CoreOptionsView(options.ClientPool.ToString(), options.ClientPool6.ToString(),
            options.PrivateKey is { } privateKey ? Vpn.Domain.WireGuard.X25519.PublicKeyOf(privateKey) : null));
        // Registration order is start order: the device is initialized before the first pass reads it.
        builder.Services.AddHostedService<DataplaneInitializer>();
        builder.Services.AddSingleton<ResolverHealth>();
        builder.Services.AddSingleton<NodeHealth>();
        if (options.ResolverCheck)
        {
            builder.Services.AddSingleton(new ResolverProbe(options.NetworkNamespace, ResolverProbe.DefaultTimeout));
            builder.Services.AddHostedService<ResolverMonitor>();
        }
        builder.Services.AddHostedService<FilterDropMetrics>();
        if (options.ReconcileEnabled)
        {
            builder.Services.AddSingleton<EntryClient>();
            builder.Services.AddSingleton<IDesiredStateSource>(sp => sp.GetRequiredService<EntryClient>());
            builder.Services.AddSingleton<Usage.UsageMeter>();
            builder.Services.AddSingleton<Usage.UsageReporter>();
            builder.Services.AddSingleton<IdlePeerWiper>();
            builder.Services.AddSingleton<Reconciler>();
            builder.Services.AddHostedService<ReconcileService>();
            builder.Services.AddHostedService<HeartbeatService>();
        }
        return builder;
    }

    /// <summary>
    /// Serves /metrics, /healthz and /readyz on connections accepted by the CORE_METRICS_LISTEN listener and nowhere
    /// else: not on the gRPC endpoint (which stays gRPC only), and not at all when the setting is unset. The test is the
    /// listener that accepted the connection, not the Host or :authority header, which any client can set.
    /// /healthz (the kubelet's liveness probe) answers 200 while the host serves requests; /readyz answers 200 when the
    /// node would report itself healthy to entry (<see cref="NodeHealth"/>: the device answers, the leases are synced
    /// with entry, the resolver answers where checked) and 503 otherwise. Neither body carries anything but the verdict.
    /// </summary>
    public static WebApplication UseCoreMetricsEndpoint(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        if (app.Services.GetRequiredService<CoreOptions>().MetricsListen is { } listen)
        {
            // The local endpoint the connection was accepted on: a client can send any Host or :authority, not this.
            var endpoint = IPEndPoint.Parse(listen);
            bool OnMetricsListener(HttpContext http) => http.Connection.LocalPort == endpoint.Port
                && http.Connection.LocalIpAddress is { } local
                && (endpoint.Address.Equals(IPAddress.Any) || endpoint.Address.Equals(IPAddress.IPv6Any)
                    || local.Equals(endpoint.Address) || (local.IsIPv4MappedToIPv6 && local.MapToIPv4().Equals(endpoint.Address)));
            app.Use(async (http, next) =>
            {
                if (!HttpMethods.IsGet(http.Request.Method) || !OnMetricsListener(http)
                    || (http.Request.Path != "/healthz" && http.Request.Path != "/readyz"))
                {
                    await next(http);
                    return;
                }
                var ready = http.Request.Path == "/healthz"
                    || (await http.RequestServices.GetRequiredService<NodeHealth>().ReadAsync(http.RequestAborted)).Healthy;
                http.Response.StatusCode = ready ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable;
                http.Response.ContentType = "text/plain";
                await http.Response.WriteAsync(ready ? "ok\n" : "not ready\n", http.RequestAborted);
            });
            app.UseOpenTelemetryPrometheusScrapingEndpoint(http => http.Request.Path == "/metrics" && OnMetricsListener(http));
        }
        return app;
    }

    // gRPC over cleartext needs an endpoint that speaks HTTP/2 only (no ALPN to negotiate it).
    private static void ListenGrpc(KestrelServerOptions kestrel, CoreOptions options)
    {
        var listen = options.GrpcListen;
        // Entry multiplexes every session start onto a few HTTP/2 connections; the default of 100 concurrent streams per
        // connection would queue a burst of Connects behind each other before they can coalesce into one UAPI write.
        // A whole burst (at most one Connect per pool address) fits on one connection: spread over ten connections of
        // 1,000 streams, a burst of 10k Connects was measurably slower (bench p1). The limit was never a memory guard —
        // a client may open more connections — and each stream stays bounded by Kestrel's request limits.
        kestrel.Limits.Http2.MaxStreamsPerConnection = 65_536;
        if (UnixSocketEndpoint.TryGetPath(listen, out var path))
        {
            File.Delete(path);
            kestrel.ListenUnixSocket(path, o => o.Protocols = HttpProtocols.Http2);
            return;
        }
        var endpoint = IPEndPoint.Parse(listen);
        kestrel.Listen(endpoint, o =>
        {
            o.Protocols = HttpProtocols.Http2;
            if (options.TlsCertificate is { } certificate)
            {
                o.UseHttps(https =>
                {
                    https.ServerCertificate = certificate;
                    https.SslProtocols = System.Security.Authentication.SslProtocols.Tls13 | System.Security.Authentication.SslProtocols.Tls12;
                    if (options.TlsClientAuthorities is { } authorities)
                    {
                        https.ClientCertificateMode = Microsoft.AspNetCore.Server.Kestrel.Https.ClientCertificateMode.RequireCertificate;
                        // Nothing fetched during a handshake (no revocation lists, no issuer downloads from URLs the client
                        // put in its certificate): an unauthenticated peer must not make the node call out or wait.
                        https.CheckCertificateRevocation = false;
                        var policy = Vpn.ServiceDefaults.TlsFiles.ChainPolicy(authorities, Vpn.ServiceDefaults.TlsFiles.ClientAuthentication);
                        https.OnAuthenticate = (_, ssl) => ssl.CertificateChainPolicy = policy;
                        // Only this deployment's CA vouches for entry; the machine's trust store does not.
                        https.ClientCertificateValidation = (client, chain, _) =>
                            Vpn.ServiceDefaults.TlsFiles.ChainsTo(client, authorities, Vpn.ServiceDefaults.TlsFiles.ClientAuthentication, chain);
                    }
                });
            }
        });
    }
}
