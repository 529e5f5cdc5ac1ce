namespace Vpn.Entry.Tests.Nodes;

/// <summary>GET /v1/admin/core/status?node_id=: a node's core GetNodeStatus through entry, and every way it can fail.</summary>
public abstract class CoreStatusEndpointTests(StoreKind store)
{
    private const string Path = "/v1/admin/core/status";

    [Fact]
    public async Task CoreStatus_NodeWithSession_ReturnsCoreStatusInSnakeCase()
    {
        await using var stack = await TestStack.StartAsync(store);
        var customer = await stack.SeedCustomerAsync();
        await stack.SendJsonAsync(TestStack.AsCustomer(customer.Id, HttpMethod.Post, "/v1/sessions",
            new { device_id = customer.DeviceId, region = "eu-west" }), 201);

        var status = await stack.SendJsonAsync(stack.Admin(HttpMethod.Get, $"{Path}?node_id={customer.NodeId}"), 200);

        Assert.Equal(customer.NodeId, status.GetProperty("node_id").GetGuid());
        Assert.Equal("node-eu-west", status.GetProperty("node_name").GetString());
        Assert.True(status.GetProperty("healthy").GetBoolean());
        Assert.Equal(1, status.GetProperty("active_peers").GetInt32());
        Assert.Equal("none", status.GetProperty("nat_driver").GetString());
        Assert.Equal("noop", status.GetProperty("dataplane_mode").GetString());
        Assert.Equal(JsonValueKind.Array, status.GetProperty("native_features").ValueKind);
        Assert.Equal("10.64.0.0/20", status.GetProperty("client_pool").GetString());
        Assert.Equal("fd64:6400::/64", status.GetProperty("client_pool_v6").GetString());
        // The noop dataplane checks no resolver and has no filter.
        var resolver = status.GetProperty("resolver");
        Assert.False(resolver.GetProperty("checked").GetBoolean());
        Assert.Equal(["10.64.0.1", "fd64:6400::1"], resolver.GetProperty("addresses").EnumerateArray().Select(a => a.GetString()));
        Assert.Equal(JsonValueKind.Null, resolver.GetProperty("last_check_at").ValueKind);
        Assert.Equal(0, status.GetProperty("filter_drops").GetArrayLength());
        // TestStack's cores run without CORE_ENTRY_URL: no reconciliation, so never synced and every counter zero.
        Assert.False(status.GetProperty("synced").GetBoolean());
        foreach (var counter in new[] { "reconcile_passes", "reconcile_failures", "reconcile_peers_added", "reconcile_peers_removed", "reconcile_peers_corrected", "device_reinitializations" })
        {
            Assert.Equal(0, status.GetProperty(counter).GetInt64());
        }
        Assert.Equal(JsonValueKind.Null, status.GetProperty("last_reconcile_at").ValueKind);
    }

    [Fact]
    public async Task CoreStatus_ReconcilingCore_SyncedWithCounters()
    {
        await using var routes = new CoreRoutes();
        await using var stack = await routes.StartStackAsync(store);
        var nodeId = await CoreRoutes.RegisterNodeAsync(stack, "node-synced", "synced.test:50051");
        await routes.StartReconcilingCoreAsync(stack, "synced.test:50051", nodeId);

        var status = await stack.SendJsonAsync(stack.Admin(HttpMethod.Get, $"{Path}?node_id={nodeId}"), 200);

        Assert.True(status.GetProperty("healthy").GetBoolean());
        Assert.True(status.GetProperty("synced").GetBoolean());
        Assert.True(status.GetProperty("reconcile_passes").GetInt64() >= 1);
        Assert.Equal(0, status.GetProperty("reconcile_failures").GetInt64());
        var lastPass = status.GetProperty("last_reconcile_at").GetDateTimeOffset();
        Assert.InRange(lastPass, DateTimeOffset.UtcNow - TimeSpan.FromMinutes(1), DateTimeOffset.UtcNow + TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task CoreStatus_CoreWhoseResolverFails_ShowsTheResolverUnhealthyWithItsReason()
    {
        await using var routes = new CoreRoutes();
        await using var stack = await routes.StartStackAsync(store);
        var nodeId = await CoreRoutes.RegisterNodeAsync(stack, "node-dns", "dns.test:50051");
        var (settings, services) = CoreRoutes.FailingResolver();
        await routes.StartReconcilingCoreAsync(stack, "dns.test:50051", nodeId, settings, services);

        var status = await stack.SendJsonAsync(stack.Admin(HttpMethod.Get, $"{Path}?node_id={nodeId}"), 200);

        // A resolver that does not answer makes the node unhealthy (as its heartbeat says), though it is synced.
        Assert.False(status.GetProperty("healthy").GetBoolean());
        Assert.True(status.GetProperty("synced").GetBoolean());
        Assert.Equal("127.0.0.0/29", status.GetProperty("client_pool").GetString());
        Assert.Equal("::/125", status.GetProperty("client_pool_v6").GetString());
        var resolver = status.GetProperty("resolver");
        Assert.True(resolver.GetProperty("checked").GetBoolean());
        Assert.False(resolver.GetProperty("healthy").GetBoolean());
        Assert.Equal(["127.0.0.1", "::1"], resolver.GetProperty("addresses").EnumerateArray().Select(a => a.GetString()));
        Assert.Matches(@"^127\.0\.0\.1: refused: nothing listens on port \d+; ::1: refused: nothing listens on port \d+$", resolver.GetProperty("detail").GetString());
        Assert.InRange(resolver.GetProperty("last_check_at").GetDateTimeOffset(), DateTimeOffset.UtcNow - TimeSpan.FromMinutes(1), DateTimeOffset.UtcNow + TimeSpan.FromSeconds(5));
        Assert.Equal(0, status.GetProperty("filter_drops").GetArrayLength());
    }

    [Theory]
    [InlineData("")]
    [InlineData("?node_id=")]
    [InlineData("?node_id=not-a-uuid")]
    [InlineData("?node_id=0b9a3a4e5c6d4e7f8a9b0c1d2e3f4a5b")]
    [InlineData("?node_id=0b9a3a4e-5c6d-4e7f-8a9b-0c1d2e3f4a5b&node_id=0b9a3a4e-5c6d-4e7f-8a9b-0c1d2e3f4a5c")]
    [InlineData("?nodeid=0b9a3a4e-5c6d-4e7f-8a9b-0c1d2e3f4a5b")]
    public async Task CoreStatus_MissingOrMalformedNodeId_400InvalidRequest(string query)
    {
        await using var stack = await TestStack.StartAsync(store);

        using var response = await stack.Client.SendAsync(stack.Admin(HttpMethod.Get, Path + query), TestContext.Current.CancellationToken);

        await AssertProblemAsync(response, 400, "invalid_request");
    }

    [Fact]
    public async Task CoreStatus_UnknownNode_404NodeNotFound()
    {
        await using var stack = await TestStack.StartAsync(store);

        using var response = await stack.Client.SendAsync(stack.Admin(HttpMethod.Get, $"{Path}?node_id={Guid.NewGuid()}"), TestContext.Current.CancellationToken);

        await AssertProblemAsync(response, 404, "node_not_found");
    }

    public static TheoryData<string> UnreachableEndpoints => new() { "missing unix socket", "closed loopback port" };

    [Theory]
    [MemberData(nameof(UnreachableEndpoints))]
    public async Task CoreStatus_CoreUnreachable_502NodeUnavailable(string kind)
    {
        await using var routes = new CoreRoutes();
        await using var stack = await routes.StartStackAsync(store);
        var endpoint = kind == "missing unix socket" ? CoreRoutes.MissingUnixSocketEndpoint() : CoreRoutes.ClosedLoopbackEndpoint();
        var nodeId = await CoreRoutes.RegisterNodeAsync(stack, "node-down", endpoint);
        var clock = Stopwatch.StartNew();

        using var response = await stack.Client.SendAsync(stack.Admin(HttpMethod.Get, $"{Path}?node_id={nodeId}"), TestContext.Current.CancellationToken);

        var body = await AssertProblemAsync(response, 502, "node_unavailable");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(3), $"took {clock.Elapsed}");
        // Neither the endpoint nor a transport message reaches the client.
        Assert.DoesNotContain("127.0.0.1", body, StringComparison.Ordinal);
        Assert.DoesNotContain("vpn-missing", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task CoreStatus_CoreSilentPastDeadline_502NodeUnavailable()
    {
        await using var routes = new CoreRoutes();
        await using var stack = await routes.StartStackAsync(store, new Dictionary<string, string?> { ["APP_CORE_TIMEOUT_MS"] = "200" });
        // Connections are accepted by the kernel and then never answered: only the deadline ends the call.
        using var silent = new TcpListener(IPAddress.Loopback, 0);
        silent.Start();
        var nodeId = await CoreRoutes.RegisterNodeAsync(stack, "node-silent", $"http://127.0.0.1:{((IPEndPoint)silent.LocalEndpoint).Port}");
        var clock = Stopwatch.StartNew();

        using var response = await stack.Client.SendAsync(stack.Admin(HttpMethod.Get, $"{Path}?node_id={nodeId}"), TestContext.Current.CancellationToken);

        var body = await AssertProblemAsync(response, 502, "node_unavailable");
        Assert.Contains("DeadlineExceeded", body, StringComparison.Ordinal);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(3), $"took {clock.Elapsed}");
    }

    [Fact]
    public async Task CoreStatus_CoreRefusesCalls_502NodeUnavailable()
    {
        await using var stack = await TestStack.StartAsync(store);
        var customer = await stack.SeedCustomerAsync();
        stack.CoreDown = true;

        using var response = await stack.Client.SendAsync(stack.Admin(HttpMethod.Get, $"{Path}?node_id={customer.NodeId}"), TestContext.Current.CancellationToken);

        await AssertProblemAsync(response, 502, "node_unavailable");
    }

    [Fact]
    public async Task CoreStatus_WithoutAdminToken_401BeforeValidation()
    {
        await using var stack = await TestStack.StartAsync(store);
        var customer = await stack.SeedCustomerAsync();

        foreach (var query in new[] { $"?node_id={customer.NodeId}", "", "?node_id=bad" })
        {
            using var response = await stack.Client.SendAsync(TestStack.AsCustomer(customer.Id, HttpMethod.Get, Path + query), TestContext.Current.CancellationToken);
            await AssertProblemAsync(response, 401, "unauthorized");
        }
    }

    private static async Task<string> AssertProblemAsync(HttpResponseMessage response, int status, string code)
    {
        var body = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        Assert.True((int)response.StatusCode == status, $"expected {status}, got {(int)response.StatusCode}: {body}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(code, JsonDocument.Parse(body).RootElement.GetProperty("code").GetString());
        return body;
    }
}

public sealed class InMemoryCoreStatusEndpointTests() : CoreStatusEndpointTests(StoreKind.InMemory);

public sealed class PostgresCoreStatusEndpointTests() : CoreStatusEndpointTests(StoreKind.Postgres);
