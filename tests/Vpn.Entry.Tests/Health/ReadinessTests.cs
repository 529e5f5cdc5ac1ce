using Vpn.Entry.Health;

namespace Vpn.Entry.Tests.Health;

/// <summary>GET /v1/admin/readiness through the real pipeline: ready with a fresh node whose core reconciles, and each way it is not.</summary>
public abstract class ReadinessTests(StoreKind store)
{
    private const string Path = "/v1/admin/readiness";
    private const string SyncedCore = "synced.test:50051";

    [Fact]
    public async Task Readiness_FreshHealthyNodeWithSyncedCore_200Ready()
    {
        await using var routes = new CoreRoutes();
        await using var stack = await routes.StartStackAsync(store);
        await routes.AddSyncedNodeAsync(stack, "node-a", SyncedCore);

        var report = await GetReportAsync(stack, 200);

        Assert.True(report.GetProperty("ready").GetBoolean());
        Assert.Equal(["store", "revocation_list", "sign_in", "nodes", "cores", "core_tls", "privacy", "connection_budget"], Names(report));
        foreach (var check in report.GetProperty("checks").EnumerateArray())
        {
            Assert.True(check.GetProperty("ok").GetBoolean(), check.ToString());
            Assert.False(string.IsNullOrWhiteSpace(check.GetProperty("detail").GetString()), check.ToString());
        }
        // Development without a Google client: allowed, and said.
        Assert.Contains("not configured", Check(report, "sign_in").GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.StartsWith("1 of 1 registered nodes", Check(report, "nodes").GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.StartsWith("1 of 1 cores healthy and synced", Check(report, "cores").GetProperty("detail").GetString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Readiness_NoNode_503NodesCheckFails()
    {
        await using var stack = await TestStack.StartAsync(store);

        var report = await GetReportAsync(stack, 503);

        Assert.False(report.GetProperty("ready").GetBoolean());
        Assert.Equal(["nodes"], Failed(report));
        Assert.Equal("no node registered", Check(report, "nodes").GetProperty("detail").GetString());
    }

    [Fact]
    public async Task Readiness_StaleHeartbeat_503NodesCheckFails()
    {
        await using var routes = new CoreRoutes();
        await using var stack = await routes.StartStackAsync(store);
        var nodeId = await routes.AddSyncedNodeAsync(stack, "node-a", SyncedCore);
        await GetReportAsync(stack, 200);
        // The node's last heartbeat two minutes ago (APP_NODE_FRESHNESS_SECS is 60).
        var nodes = stack.EntryServices.GetRequiredService<INodeStore>();
        Assert.True(await nodes.RecordHeartbeatAsync(nodeId, true, 0, DateTimeOffset.UtcNow - TimeSpan.FromMinutes(2), TestContext.Current.CancellationToken));

        var report = await GetReportAsync(stack, 503);

        Assert.Equal(["nodes"], Failed(report));
        Assert.Contains("0 of 1", Check(report, "nodes").GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Contains("1 stale", Check(report, "nodes").GetProperty("detail").GetString(), StringComparison.Ordinal);
        // A stale node is not asked: its core's verdict would say nothing about what selection will use.
        Assert.Equal("no node with a fresh heartbeat to ask", Check(report, "cores").GetProperty("detail").GetString());
    }

    [Fact]
    public async Task Readiness_UnreachableAndUnsyncedCores_503CoresCheckNamesThem()
    {
        await using var routes = new CoreRoutes();
        await using var stack = await routes.StartStackAsync(store);
        await routes.AddSyncedNodeAsync(stack, "node-good", SyncedCore);
        var missingSocket = CoreRoutes.MissingUnixSocketEndpoint();
        await CoreRoutes.RegisterNodeAsync(stack, "node-down", missingSocket);
        await CoreRoutes.RegisterNodeAsync(stack, "node-port", CoreRoutes.ClosedLoopbackEndpoint());
        // TestStack's own core: answers, healthy, but runs without reconciliation.
        await CoreRoutes.RegisterNodeAsync(stack, "node-unsynced", TestStack.DefaultCoreEndpoint);
        var clock = Stopwatch.StartNew();

        var report = await GetReportAsync(stack, 503);

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(4), $"took {clock.Elapsed}");
        Assert.Equal(["cores"], Failed(report));
        var detail = Check(report, "cores").GetProperty("detail").GetString()!;
        Assert.StartsWith("1 of 4 cores healthy and synced; failed: ", detail, StringComparison.Ordinal);
        Assert.Contains("node-down (unreachable: Unavailable)", detail, StringComparison.Ordinal);
        Assert.Contains("node-port (unreachable: Unavailable)", detail, StringComparison.Ordinal);
        Assert.Contains("node-unsynced (not synced)", detail, StringComparison.Ordinal);
        Assert.DoesNotContain("node-good", detail, StringComparison.Ordinal);
        // Names, never endpoints.
        Assert.DoesNotContain("vpn-missing", detail, StringComparison.Ordinal);
        Assert.DoesNotContain("127.0.0.1", detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Readiness_CoreWhoseResolverFails_503CoresCheckNamesTheNodeAndTheResolver()
    {
        await using var routes = new CoreRoutes();
        await using var stack = await routes.StartStackAsync(store);
        await routes.AddSyncedNodeAsync(stack, "node-good", SyncedCore);
        var dns = await CoreRoutes.RegisterNodeAsync(stack, "node-dns", "dns.test:50051");
        var (settings, services) = CoreRoutes.FailingResolver();
        await routes.StartReconcilingCoreAsync(stack, "dns.test:50051", dns, settings, services);

        var report = await GetReportAsync(stack, 503);

        Assert.Equal(["cores"], Failed(report));
        var detail = Check(report, "cores").GetProperty("detail").GetString()!;
        Assert.StartsWith("1 of 2 cores healthy and synced; failed: node-dns (unhealthy, resolver failing: 127.0.0.1: ", detail, StringComparison.Ordinal);
        Assert.Contains("; ::1: ", detail, StringComparison.Ordinal);
        Assert.DoesNotContain("node-good", detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Readiness_AnotherRegisteredCheck_RunsAndDecides()
    {
        await using var routes = new CoreRoutes();
        await using var stack = await routes.StartStackAsync(store, configureServices: services =>
        {
            services.AddSingleton<IReadinessCheck>(new FixedCheck("extra", ReadinessCheckResult.Fail("retention windows not set")));
        });
        await routes.AddSyncedNodeAsync(stack, "node-a", SyncedCore);

        var report = await GetReportAsync(stack, 503);

        Assert.Equal(["extra"], Failed(report));
        Assert.Equal("extra", Names(report)[^1]);
        Assert.Equal("retention windows not set", Check(report, "extra").GetProperty("detail").GetString());
    }

    [Fact]
    public async Task Readiness_WithoutAdminToken_401()
    {
        await using var stack = await TestStack.StartAsync(store);
        var customer = Guid.NewGuid();

        foreach (var request in new[]
        {
            new HttpRequestMessage(HttpMethod.Get, Path),
            TestStack.AsCustomer(customer, HttpMethod.Get, Path),
            TestStack.WithBearer(stack.TokenFor(customer), HttpMethod.Get, Path),
        })
        {
            using var response = await stack.Client.SendAsync(request, TestContext.Current.CancellationToken);
            var body = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
            Assert.True((int)response.StatusCode == 401, body);
            Assert.Equal("unauthorized", JsonDocument.Parse(body).RootElement.GetProperty("code").GetString());
        }
    }

    [Fact]
    public async Task AdminOpsEndpoints_InOpenApiDocument()
    {
        await using var stack = await TestStack.StartAsync(store);

        var openApi = await stack.Client.GetStringAsync("/openapi/v1.json", TestContext.Current.CancellationToken);

        Assert.Contains("\"/v1/admin/readiness\"", openApi, StringComparison.Ordinal);
        Assert.Contains("\"/v1/admin/core/status\"", openApi, StringComparison.Ordinal);
        Assert.Contains("\"node_id\"", openApi, StringComparison.Ordinal);
    }

    internal static async Task<JsonElement> GetReportAsync(TestStack stack, int expectedStatus)
    {
        using var response = await stack.Client.SendAsync(stack.Admin(HttpMethod.Get, Path), TestContext.Current.CancellationToken);
        var body = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        Assert.True((int)response.StatusCode == expectedStatus, $"expected {expectedStatus}, got {(int)response.StatusCode}: {body}");
        // The report either way, never problem+json.
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var report = JsonDocument.Parse(body).RootElement.Clone();
        Assert.Equal(expectedStatus == 200, report.GetProperty("ready").GetBoolean());
        return report;
    }

    internal static string[] Names(JsonElement report) =>
        [.. report.GetProperty("checks").EnumerateArray().Select(c => c.GetProperty("name").GetString()!)];

    internal static string[] Failed(JsonElement report) =>
        [.. report.GetProperty("checks").EnumerateArray().Where(c => !c.GetProperty("ok").GetBoolean()).Select(c => c.GetProperty("name").GetString()!)];

    internal static JsonElement Check(JsonElement report, string name) =>
        report.GetProperty("checks").EnumerateArray().Single(c => c.GetProperty("name").GetString() == name);

    private sealed class FixedCheck(string name, ReadinessCheckResult result) : IReadinessCheck
    {
        public string Name => name;

        public Task<ReadinessCheckResult> RunAsync(CancellationToken cancellationToken) => Task.FromResult(result);
    }
}

public sealed class InMemoryReadinessTests() : ReadinessTests(StoreKind.InMemory);

public sealed class PostgresReadinessTests() : ReadinessTests(StoreKind.Postgres)
{
    [Fact]
    public async Task Readiness_PostgresStopped_503StoreAndRevocationFail_ThenRecover()
    {
        await using var server = await PostgresServer.StartNewAsync();
        var settings = new Dictionary<string, string?> { ["DATABASE_URL"] = await server.CreateDatabaseAsync("ready") };
        await using var stack = await TestStack.StartAsync(StoreKind.InMemory, settings);
        await stack.RegisterNodeAsync("node-a", "eu-west");
        var before = await GetReportAsync(stack, 503);
        // Up: only the cores check fails (TestStack's core does not reconcile).
        Assert.Equal(["cores"], Failed(before));
        Assert.StartsWith("PostgreSQL reachable", Check(before, "store").GetProperty("detail").GetString(), StringComparison.Ordinal);

        await server.StopAsync();
        // At once the store; within the staleness bound (1 s) the revocation list too.
        var down = await PollAsync(stack, r => Failed(r).Contains("store") && Failed(r).Contains("revocation_list"), TimeSpan.FromSeconds(15));
        Assert.Contains("PostgreSQL unreachable", Check(down, "store").GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Contains("revocation_unavailable", Check(down, "revocation_list").GetProperty("detail").GetString(), StringComparison.Ordinal);
        // The checks that read nodes fail too, naming only the exception type.
        Assert.Matches(@"^check failed \((Npgsql|Postgres)Exception\)$", Check(down, "nodes").GetProperty("detail").GetString());
        Assert.DoesNotContain("Host=", down.ToString(), StringComparison.OrdinalIgnoreCase);

        await server.StartAsync();
        var up = await PollAsync(stack, r => Failed(r).SequenceEqual(["cores"]), TimeSpan.FromSeconds(30));
        Assert.True(Check(up, "store").GetProperty("ok").GetBoolean());
    }

    private static async Task<JsonElement> PollAsync(TestStack stack, Func<JsonElement, bool> done, TimeSpan limit)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var report = await GetReportAsync(stack, 503);
            if (done(report))
            {
                return report;
            }
            Assert.True(clock.Elapsed < limit, $"still not as expected after {limit}: {report}");
            await Task.Delay(100, TestContext.Current.CancellationToken);
        }
    }
}
