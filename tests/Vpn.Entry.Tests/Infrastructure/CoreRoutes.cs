using System.Collections.Concurrent;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Vpn.Core.Control;
using Vpn.Core.Health;
using Vpn.Core.Reconciliation;

namespace Vpn.Entry.Tests.Infrastructure;

/// <summary>
/// Extends <see cref="TestStack"/>'s in-process cores (pass <see cref="Install"/> as its configureServices):
/// <list type="bullet">
/// <item>core endpoints <c>unix:…</c> and <c>http://127.0.0.1:…</c> are dialled for real, as in production — a node whose
/// core is unreachable is a missing socket or a closed port;</item>
/// <item><see cref="StartReconcilingCoreAsync"/> serves an endpoint with a core that reconciles with this entry
/// (CORE_ENTRY_URL set, so it reports synced), pulling its desired peers through the stack's HTTP client;</item>
/// <item>every other endpoint is TestStack's core (noop dataplane, no reconciliation).</item>
/// </list>
/// </summary>
public sealed class CoreRoutes : IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, WebApplicationFactory<VpnControlService>> _reconciling = new(StringComparer.Ordinal);

    public void Install(IServiceCollection services)
    {
        var fallback = (ICoreChannelFactory)services.Last(d => d.ServiceType == typeof(ICoreChannelFactory)).ImplementationInstance!;
        services.RemoveAll<ICoreChannelFactory>();
        // The production factory as entry would build it (whatever it depends on), for the endpoints dialled for real.
        services.AddSingleton<ICoreChannelFactory>(sp => new RoutedChannels(this, fallback, ActivatorUtilities.CreateInstance<CoreChannelFactory>(sp)));
    }

    /// <summary>A <see cref="TestStack"/> whose core endpoints these routes serve (<see cref="Install"/>, then <paramref name="configureServices"/>).</summary>
    public Task<TestStack> StartStackAsync(StoreKind store, IReadOnlyDictionary<string, string?>? settings = null,
        Action<IServiceCollection>? configureServices = null) =>
        TestStack.StartAsync(store, settings, services =>
        {
            Install(services);
            configureServices?.Invoke(services);
        });

    /// <summary>A fresh, healthy node (<see cref="RegisterNodeAsync"/>) whose core reconciles with the stack (<see cref="StartReconcilingCoreAsync"/>).</summary>
    public async Task<Guid> AddSyncedNodeAsync(TestStack stack, string name, string coreEndpoint,
        IReadOnlyDictionary<string, string>? settings = null, Action<IServiceCollection>? configureCore = null)
    {
        var nodeId = await RegisterNodeAsync(stack, name, coreEndpoint);
        await StartReconcilingCoreAsync(stack, coreEndpoint, nodeId, settings, configureCore);
        return nodeId;
    }

    /// <summary>
    /// A core for <paramref name="nodeId"/> behind <paramref name="coreEndpoint"/> whose reconciliation pulls from the
    /// stack; returns once its first pass has converged (GetNodeStatus says synced) and, if it checks its resolver, that
    /// was checked once. Heartbeats are the test's to send.
    /// <paramref name="settings"/> and <paramref name="configureCore"/> adjust that core (its environment, its services).
    /// </summary>
    public async Task StartReconcilingCoreAsync(TestStack stack, string coreEndpoint, Guid nodeId,
        IReadOnlyDictionary<string, string>? settings = null, Action<IServiceCollection>? configureCore = null)
    {
        var core = new WebApplicationFactory<VpnControlService>().WithWebHostBuilder(b =>
        {
            b.UseSetting("WG_DATAPLANE", "noop");
            b.UseSetting("WG_CLIENT_POOL", "10.64.0.0/20");
            b.UseSetting("CORE_GRPC_LISTEN", "127.0.0.1:0");
            // Turns reconciliation on; the desired state source below replaces the HTTP client that would use it.
            b.UseSetting("CORE_ENTRY_URL", "http://entry.invalid");
            b.UseSetting("CORE_NODE_ID", nodeId.ToString());
            b.UseSetting("ADMIN_API_TOKEN", TestStack.AdminToken);
            foreach (var (name, value) in settings ?? new Dictionary<string, string>())
            {
                b.UseSetting(name, value);
            }
            b.ConfigureTestServices(services =>
            {
                services.AddSingleton<ILoggerProvider>(stack.Errors);
                configureCore?.Invoke(services);
                services.RemoveAll<IDesiredStateSource>();
                services.AddSingleton<IDesiredStateSource>(new DesiredPeersFromStack(stack, nodeId));
                // Its EntryClient cannot reach the in-process entry; tests post heartbeats themselves.
                var heartbeat = services.Single(d => d.ServiceType == typeof(IHostedService) && d.ImplementationType == typeof(HeartbeatService));
                services.Remove(heartbeat);
            });
        });
        Assert.True(_reconciling.TryAdd(coreEndpoint, core), $"{coreEndpoint} already has a core");
        _ = core.Server;
        using var channel = ChannelTo(core);
        var client = new VpnControl.VpnControlClient(channel);
        var clock = Stopwatch.StartNew();
        // Synced, and a resolver it checks checked once (its first verdict, not "no check yet").
        while ((await client.GetNodeStatusAsync(new GetNodeStatusRequest(), cancellationToken: TestContext.Current.CancellationToken)) is not
            { Synced: true, Resolver: { Checked: false } or { LastCheckUnixMs: > 0 } })
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(15), "the reconciling core never reported synced (and its resolver checked)");
            await Task.Delay(20, TestContext.Current.CancellationToken);
        }
    }

    /// <summary>Registers a node (without starting any core for it) and posts one healthy heartbeat for it; returns its id.</summary>
    public static async Task<Guid> RegisterNodeAsync(TestStack stack, string name, string coreEndpoint)
    {
        var node = await stack.SendJsonAsync(stack.Admin(HttpMethod.Post, "/v1/admin/nodes", new
        {
            name, region = "eu-west", country_code = "DE", city_code = "fra", pool = "default", public_endpoint = "203.0.113.7:51820",
            public_key = TestStack.NewKey(), core_endpoint = coreEndpoint, capacity = 100,
        }), 201);
        var id = node.GetProperty("id").GetGuid();
        await stack.SendJsonAsync(stack.Admin(HttpMethod.Post, "/v1/internal/nodes/health", new { node_id = id, healthy = true, active_peer_count = 0 }), 204);
        return id;
    }

    /// <summary>A loopback endpoint where nothing listens (connection refused at once).</summary>
    public static string ClosedLoopbackEndpoint()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return $"http://127.0.0.1:{port}";
    }

    /// <summary>
    /// Settings and services for <see cref="StartReconcilingCoreAsync"/>: a core that checks its resolver every second
    /// and finds it failing — nothing listens where it asks. Its pools are on loopback (gateways 127.0.0.1 and ::1) and
    /// it asks a closed port, so the check's datagrams never leave this machine.
    /// </summary>
    public static (IReadOnlyDictionary<string, string> Settings, Action<IServiceCollection> Services) FailingResolver()
    {
        var settings = new Dictionary<string, string>
        {
            ["WG_CLIENT_POOL"] = "127.0.0.0/29",
            ["WG_CLIENT_POOL_V6"] = "::/125",
            ["CORE_RESOLVER_CHECK"] = "true",
            ["CORE_RESOLVER_CHECK_SECS"] = "1",
        };
        var port = ClosedUdpPort();
        return (settings, services =>
        {
            services.RemoveAll<Vpn.Core.Dns.ResolverProbe>();
            services.AddSingleton(new Vpn.Core.Dns.ResolverProbe(null, TimeSpan.FromSeconds(1), port));
        });
    }

    private static int ClosedUdpPort()
    {
        using var socket = new Socket(AddressFamily.InterNetworkV6, SocketType.Dgram, ProtocolType.Udp) { DualMode = true };
        socket.Bind(new IPEndPoint(IPAddress.IPv6Any, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }

    /// <summary>A unix socket path that does not exist.</summary>
    public static string MissingUnixSocketEndpoint() => $"unix:/tmp/vpn-missing-{Guid.NewGuid():N}/core.sock";

    public async ValueTask DisposeAsync()
    {
        foreach (var core in _reconciling.Values)
        {
            await core.DisposeAsync();
        }
    }

    private static GrpcChannel ChannelTo(WebApplicationFactory<VpnControlService> core) =>
        GrpcChannel.ForAddress(core.Server.BaseAddress, new GrpcChannelOptions { HttpHandler = core.Server.CreateHandler() });

    private sealed class RoutedChannels(CoreRoutes routes, ICoreChannelFactory fallback, CoreChannelFactory real) : ICoreChannelFactory
    {
        public GrpcChannel Create(string coreEndpoint) =>
            coreEndpoint.StartsWith("unix:", StringComparison.Ordinal) || coreEndpoint.StartsWith("http://127.0.0.1:", StringComparison.Ordinal)
                ? real.Create(coreEndpoint)
                : routes._reconciling.TryGetValue(coreEndpoint, out var core) ? ChannelTo(core)
                : fallback.Create(coreEndpoint);
    }

    /// <summary>What core's EntryClient does, over the stack's in-process client: GET /v1/internal/nodes/{id}/peers.</summary>
    private sealed class DesiredPeersFromStack(TestStack stack, Guid nodeId) : IDesiredStateSource
    {
        public async Task<DesiredSnapshot> FetchAsync(CancellationToken cancellationToken)
        {
            using var request = stack.Admin(HttpMethod.Get, $"/v1/internal/nodes/{nodeId}/peers");
            using var response = await stack.Client.SendAsync(request, cancellationToken);
            if (response.StatusCode != HttpStatusCode.OK)
            {
                throw new DesiredStateUnavailableException($"entry answered {(int)response.StatusCode} for the desired peers");
            }
            using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync(cancellationToken));
            var root = body.RootElement;
            var sessions = root.GetProperty("peers").EnumerateArray().Select(p => new DesiredSession(
                p.GetProperty("session_id").GetGuid(),
                WireGuardKey.TryParseBase64(p.GetProperty("public_key").GetString(), out var key) ? key : throw new DesiredStateUnavailableException("bad key"),
                p.GetProperty("address").GetString() is { } address ? IPAddress.Parse(address.Split('/')[0]) : null,
                p.GetProperty("state").GetString() == "active" ? DesiredSessionState.Active : DesiredSessionState.Provisioning,
                p.TryGetProperty("address_v6", out var v6) && v6.GetString() is { } address6 ? IPAddress.Parse(address6.Split('/')[0]) : null)).ToList();
            return new DesiredSnapshot(root.GetProperty("generated_at").GetDateTimeOffset(), sessions);
        }
    }
}
