using System.Net.Http.Json;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Vpn.Core.Control;
using Vpn.Core.Dataplane;

namespace Vpn.Entry.Tests.Infrastructure;

/// <summary>Which store an API test runs against.</summary>
public enum StoreKind
{
    InMemory,
    Postgres,
}

/// <summary>
/// entry (in-process, real HTTP pipeline) calling a real core (noop dataplane) over in-process gRPC. Every node
/// registered with a core_endpoint of "core:..." is served by that core. An error logged by entry or a core fails the
/// test at dispose unless the test expected it (<see cref="ExpectErrors"/>, see <see cref="ErrorLogScope"/>).
/// </summary>
public sealed class TestStack : IAsyncDisposable
{
    public const string AdminToken = "test-admin-token-0123456789abcdef";

    public const string DefaultCoreEndpoint = "core.test:50051";

    public const string JwtKid = "test-k1";

    /// <summary>Request header naming the TCP peer address the request is treated as coming from.</summary>
    public const string PeerAddressHeader = "x-test-peer-address";

    public const string JwtSecret = "test-jwt-secret-0123456789abcdef0123456789";

    private readonly WebApplicationFactory<SessionService> _entry;
    private readonly CoreFleet _cores;

    private TestStack(WebApplicationFactory<SessionService> entry, CoreFleet cores, ErrorLogScope errors, ProblemContractCheck problems)
    {
        _entry = entry;
        _cores = cores;
        Errors = errors;
        Problems = problems;
        Client = entry.CreateClient();
    }

    public HttpClient Client { get; }

    /// <summary>Another client of this entry (its own default headers), disposed by the caller.</summary>
    public HttpClient CreateClient() => _entry.CreateClient();

    /// <summary>Every Error and Critical line entry and its cores logged; checked at <see cref="DisposeAsync"/>.</summary>
    public ErrorLogScope Errors { get; }

    /// <summary>Every problem answered that its OpenAPI operation does not declare; checked at <see cref="DisposeAsync"/>.</summary>
    public ProblemContractCheck Problems { get; }

    /// <summary>Error lines matching <paramref name="match"/> are what this test provokes, not a fault.</summary>
    public void ExpectErrors(Func<CapturedLog, bool> match) => Errors.Expect(match);

    public IServiceProvider EntryServices => _entry.Services;

    /// <summary>The dataplane of the core behind <see cref="DefaultCoreEndpoint"/>.</summary>
    public NoopDataplane CoreDataplane => CoreFor(DefaultCoreEndpoint);

    /// <summary>Each distinct core_endpoint is its own in-process core (noop dataplane), created on first use.</summary>
    public NoopDataplane CoreFor(string coreEndpoint) => (NoopDataplane)_cores.Get(coreEndpoint).Services.GetRequiredService<IDataplane>();

    /// <summary>The services of the in-process core behind <paramref name="coreEndpoint"/> (created on first use).</summary>
    public IServiceProvider CoreServices(string coreEndpoint = DefaultCoreEndpoint) => _cores.Get(coreEndpoint).Services;

    /// <summary>The lease registry of the core behind <paramref name="coreEndpoint"/>: which session holds which peer.</summary>
    public PeerRegistry RegistryFor(string coreEndpoint = DefaultCoreEndpoint) => _cores.Get(coreEndpoint).Services.GetRequiredService<PeerRegistry>();

    /// <summary>Set to make the in-process core refuse every call (a node whose agent is down).</summary>
    public bool CoreDown { get; set; }

    /// <param name="settings">Extra entry settings (environment-variable names), applied after the defaults.</param>
    /// <param name="configureServices">Runs last on entry's services, e.g. to wrap the core channel factory or add a readiness check.</param>
    public static async Task<TestStack> StartAsync(StoreKind store, IReadOnlyDictionary<string, string?>? settings = null,
        Action<IServiceCollection>? configureServices = null)
    {
        string? databaseUrl = null;
        if (store == StoreKind.Postgres)
        {
            var server = await PostgresServer.SharedAsync();
            databaseUrl = await server.CreateDatabaseAsync("entry");
        }
        var errors = new ErrorLogScope();
        var problems = new ProblemContractCheck();
        var cores = new CoreFleet(errors);
        TestStack? stack = null;
        var entry = new WebApplicationFactory<SessionService>().WithWebHostBuilder(b =>
        {
            b.UseSetting("ADMIN_API_TOKEN", AdminToken);
            b.UseSetting("APP_SEED_DEV_DATA", "false");
            b.UseSetting("APP_JWT_SIGNING_KEYS", $"{JwtKid}:{JwtSecret}");
            // Bursts in these tests are the point; the rate-limit tests set their own budgets.
            b.UseSetting("APP_RATE_LIMIT_SESSIONS_PER_MIN", "1000000");
            b.UseSetting("APP_RATE_LIMIT_SIGNIN_PER_MIN", "1000000");
            b.UseSetting("APP_RATE_LIMIT_ADMIN_FAILURES_PER_MIN", "1000000");
            b.UseSetting("APP_RATE_LIMIT_SESSION_KEY_FAILURES_PER_MIN", "1000000");
            if (databaseUrl is not null)
            {
                b.UseSetting("DATABASE_URL", databaseUrl);
            }
            foreach (var (name, value) in settings ?? new Dictionary<string, string?>())
            {
                b.UseSetting(name, value);
            }
            b.ConfigureTestServices(services =>
            {
                services.AddSingleton<Microsoft.AspNetCore.Hosting.IStartupFilter, PeerAddressFromTestHeader>();
                services.AddSingleton<ILoggerProvider>(errors);
                // First of the problem-details writers, so it sees every problem before the real one writes it.
                services.Insert(0, ServiceDescriptor.Singleton<Microsoft.AspNetCore.Http.IProblemDetailsWriter>(problems));
                services.RemoveAll<ICoreChannelFactory>();
                services.AddSingleton<ICoreChannelFactory>(new InProcessCoreChannels(cores, () => stack?.CoreDown ?? false));
                configureServices?.Invoke(services);
            });
        });
        stack = new TestStack(entry, cores, errors, problems);
        return stack;
    }

    public HttpRequestMessage Admin(HttpMethod method, string path, object? body = null)
    {
        var request = new HttpRequestMessage(method, path);
        request.Headers.Add("x-admin-token", AdminToken);
        if (body is not null)
        {
            request.Content = JsonContent.Create(body);
        }
        return request;
    }

    public static HttpRequestMessage AsCustomer(Guid customerId, HttpMethod method, string path, object? body = null)
    {
        var request = new HttpRequestMessage(method, path);
        request.Headers.Add("x-customer-id", customerId.ToString());
        if (body is not null)
        {
            request.Content = JsonContent.Create(body);
        }
        return request;
    }

    public async Task<JsonElement> SendJsonAsync(HttpRequestMessage request, int expectedStatus)
    {
        using var response = await Client.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True((int)response.StatusCode == expectedStatus, $"{request.Method} {request.RequestUri}: expected {expectedStatus}, got {(int)response.StatusCode}: {text}");
        return text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone();
    }

    /// <summary>A plan, a fresh healthy node in its region served by the in-process core, and an active customer with one device.</summary>
    public async Task<Customer> SeedCustomerAsync(string region = "eu-west", int maxDevices = 5, string plan = "basic")
    {
        await SendJsonAsync(Admin(HttpMethod.Post, "/v1/admin/plans", new { code = plan, name = "Basic", max_devices = maxDevices, allowed_regions = new[] { region } }), 200);
        var node = await RegisterNodeAsync($"node-{region}", region);
        var customer = Guid.NewGuid();
        await SendJsonAsync(Admin(HttpMethod.Post, "/v1/admin/subscriptions", new { customer_id = customer, plan_code = plan, status = "active" }), 200);
        var device = await SendJsonAsync(AsCustomer(customer, HttpMethod.Post, "/v1/devices", new { name = "laptop", public_key = NewKey() }), 201);
        return new Customer(customer, device.GetProperty("id").GetGuid(), node);
    }

    public async Task<Guid> RegisterNodeAsync(string name, string region, int capacity = 1000, string coreEndpoint = DefaultCoreEndpoint)
    {
        // Start the node's core now: created lazily under a burst, its synchronous start-up would starve the thread pool.
        _ = _cores.Get(coreEndpoint);
        var node = await SendJsonAsync(Admin(HttpMethod.Post, "/v1/admin/nodes", new
        {
            name, region, country_code = "DE", city_code = "fra", pool = "default", public_endpoint = "203.0.113.7:51820",
            public_key = NewKey(), core_endpoint = coreEndpoint, capacity,
        }), name == LastNodeName ? 200 : 201);
        LastNodeName = name;
        var id = node.GetProperty("id").GetGuid();
        await SendJsonAsync(Admin(HttpMethod.Post, "/v1/internal/nodes/health", new { node_id = id, healthy = true, active_peer_count = 0 }), 204);
        return id;
    }

    private string? LastNodeName { get; set; }

    /// <summary>A bearer token for <paramref name="customerId"/>, issued by this entry.</summary>
    public string TokenFor(Guid customerId) => EntryServices.GetRequiredService<global::Vpn.Entry.Auth.AccessTokenService>().Issue(customerId).Token;

    public static HttpRequestMessage WithBearer(string token, HttpMethod method, string path, object? body = null)
    {
        var request = new HttpRequestMessage(method, path);
        request.Headers.Add("Authorization", "Bearer " + token);
        if (body is not null)
        {
            request.Content = JsonContent.Create(body);
        }
        return request;
    }

    public static string NewKey() => Domain.WireGuard.WireGuardKey.Generate().ToBase64();

    /// <summary>Stops entry and the cores, then fails the test if either logged an error it did not expect.</summary>
    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await _entry.DisposeAsync();
        await _cores.DisposeAsync();
        Errors.Verify();
        Problems.Verify();
    }

    private sealed class CoreFleet(ErrorLogScope errors) : IAsyncDisposable
    {
        private readonly System.Collections.Concurrent.ConcurrentDictionary<string, Lazy<WebApplicationFactory<VpnControlService>>> _cores = new();

        public WebApplicationFactory<VpnControlService> Get(string endpoint) => _cores.GetOrAdd(endpoint, key => new(() =>
        {
            var core = new WebApplicationFactory<VpnControlService>().WithWebHostBuilder(b =>
            {
                b.UseSetting("WG_DATAPLANE", "noop");
                b.UseSetting("WG_CLIENT_POOL", "10.64.0.0/20");
                b.UseSetting("CORE_GRPC_LISTEN", "127.0.0.1:0");
                b.ConfigureServices(services => services.AddSingleton<ILoggerProvider>(errors));
            });
            _ = core.Server;
            return core;
        })).Value;

        public async ValueTask DisposeAsync()
        {
            foreach (var core in _cores.Values.Where(c => c.IsValueCreated))
            {
                await core.Value.DisposeAsync();
            }
        }
    }

    private sealed class InProcessCoreChannels(CoreFleet cores, Func<bool> down) : ICoreChannelFactory
    {
        public GrpcChannel Create(string coreEndpoint)
        {
            var core = cores.Get(coreEndpoint);
            return GrpcChannel.ForAddress(core.Server.BaseAddress, new GrpcChannelOptions
            {
                HttpHandler = new DownSwitch(core.Server.CreateHandler(), down),
            });
        }
    }

    // Lets a test take the core "down" without rebuilding the stack.
    private sealed class DownSwitch(HttpMessageHandler inner, Func<bool> down) : DelegatingHandler(inner)
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
            down() ? throw new HttpRequestException("core is down (test switch)") : base.SendAsync(request, cancellationToken);
    }
}

/// <summary>
/// The in-memory test server has no TCP peer; this lets a test say which address a request comes from (header
/// <see cref="TestStack.PeerAddressHeader"/>), before any of entry's middleware runs — as Kestrel would have set it.
/// </summary>
internal sealed class PeerAddressFromTestHeader : Microsoft.AspNetCore.Hosting.IStartupFilter
{
    public Action<Microsoft.AspNetCore.Builder.IApplicationBuilder> Configure(Action<Microsoft.AspNetCore.Builder.IApplicationBuilder> next) => app =>
    {
        app.Use(async (http, inner) =>
        {
            if (http.Request.Headers.Remove(TestStack.PeerAddressHeader, out var value) && System.Net.IPAddress.TryParse(value, out var address))
            {
                http.Connection.RemoteIpAddress = address;
            }
            await inner(http);
        });
        next(app);
    };
}

public sealed record Customer(Guid Id, Guid DeviceId, Guid NodeId);
