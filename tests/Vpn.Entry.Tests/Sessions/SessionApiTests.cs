namespace Vpn.Entry.Tests.Sessions;

/// <summary>The golden path and the session invariants through the real HTTP pipeline, on each store.</summary>
public abstract class SessionApiTests(StoreKind store)
{
    [Fact]
    public async Task StartSession_ActiveCustomer_ReturnsConfigAndPeerOnCore()
    {
        await using var stack = await TestStack.StartAsync(store);
        var customer = await stack.SeedCustomerAsync();

        var session = await stack.SendJsonAsync(TestStack.AsCustomer(customer.Id, HttpMethod.Post, "/v1/sessions",
            new { device_id = customer.DeviceId, region = "eu-west" }), 201);

        Assert.Equal("active", session.GetProperty("state").GetString());
        Assert.Equal(customer.NodeId, session.GetProperty("node").GetProperty("id").GetGuid());
        Assert.Matches(@"^10\.64\.\d+\.\d+/32$", session.GetProperty("interface").GetProperty("address").GetString());
        Assert.True(session.GetProperty("session_key").GetString()!.Length >= 22);
        var config = session.GetProperty("wireguard_config").GetString()!;
        Assert.Contains("PrivateKey = <your device private key>", config, StringComparison.Ordinal);
        Assert.Contains($"Address = {session.GetProperty("interface").GetProperty("address").GetString()}", config, StringComparison.Ordinal);
        Assert.Equal(1, await stack.CoreDataplane.CountPeersAsync(default));

        var current = await stack.SendJsonAsync(TestStack.AsCustomer(customer.Id, HttpMethod.Get, "/v1/sessions/current"), 200);
        Assert.Equal(session.GetProperty("session_id").GetGuid(), current.GetProperty("session_id").GetGuid());
        Assert.False(current.TryGetProperty("session_key", out _));

        await stack.SendJsonAsync(TestStack.AsCustomer(customer.Id, HttpMethod.Delete, "/v1/sessions/current"), 204);
        Assert.Equal(0, await stack.CoreDataplane.CountPeersAsync(default));
        var metrics = await stack.Client.GetStringAsync("/metrics");
        // Listeners subscribe by meter name, so parallel in-process hosts add to the same series: at least this start.
        Assert.Matches(@"vpn_sessions_started_total(\{[^}]*\})? [1-9]", metrics);
        var again = await stack.SendJsonAsync(TestStack.AsCustomer(customer.Id, HttpMethod.Delete, "/v1/sessions/current"), 404);
        Assert.Equal("no_active_session", again.GetProperty("code").GetString());
        await stack.SendJsonAsync(TestStack.AsCustomer(customer.Id, HttpMethod.Get, "/v1/sessions/current"), 404);
    }

    [Fact]
    public async Task StartSession_FiftyConcurrentForOneCustomer_ExactlyOneCreated()
    {
        await using var stack = await TestStack.StartAsync(store);
        var customer = await stack.SeedCustomerAsync();

        var responses = await Task.WhenAll(Enumerable.Range(0, 50).Select(async _ =>
        {
            using var response = await stack.Client.SendAsync(TestStack.AsCustomer(customer.Id, HttpMethod.Post, "/v1/sessions",
                new { device_id = customer.DeviceId, region = "eu-west" }));
            return ((int)response.StatusCode, await response.Content.ReadAsStringAsync());
        }));

        Assert.Equal(1, responses.Count(r => r.Item1 == 201));
        Assert.Equal(49, responses.Count(r => r.Item1 == 409));
        var winner = JsonDocument.Parse(responses.Single(r => r.Item1 == 201).Item2).RootElement.GetProperty("session_id").GetGuid();
        foreach (var (_, body) in responses.Where(r => r.Item1 == 409))
        {
            var problem = JsonDocument.Parse(body).RootElement;
            Assert.Equal("session_conflict", problem.GetProperty("code").GetString());
            // The loser sees the winner's id once the winner's claim is visible; during provisioning it is the same row.
            Assert.Equal(winner, problem.GetProperty("active_session_id").GetGuid());
        }
        Assert.Equal(1, await stack.CoreDataplane.CountPeersAsync(default));
    }

    [Fact]
    public async Task StartSession_CoreDown_502AndNothingLeftBehind()
    {
        await using var stack = await TestStack.StartAsync(store);
        var customer = await stack.SeedCustomerAsync();
        stack.CoreDown = true;

        var problem = await stack.SendJsonAsync(TestStack.AsCustomer(customer.Id, HttpMethod.Post, "/v1/sessions",
            new { device_id = customer.DeviceId, region = "eu-west" }), 502);

        Assert.Equal("node_unavailable", problem.GetProperty("code").GetString());
        await stack.SendJsonAsync(TestStack.AsCustomer(customer.Id, HttpMethod.Get, "/v1/sessions/current"), 404);
        stack.CoreDown = false;
        // The failed attempt holds neither the customer's slot nor a peer: the next start succeeds.
        await stack.SendJsonAsync(TestStack.AsCustomer(customer.Id, HttpMethod.Post, "/v1/sessions",
            new { device_id = customer.DeviceId, region = "eu-west" }), 201);
        Assert.Equal(1, await stack.CoreDataplane.CountPeersAsync(default));
    }

    [Fact]
    public async Task StartSession_EntitlementChecks_AnswerContractCodes()
    {
        await using var stack = await TestStack.StartAsync(store);
        var customer = await stack.SeedCustomerAsync();

        var region = await stack.SendJsonAsync(TestStack.AsCustomer(customer.Id, HttpMethod.Post, "/v1/sessions",
            new { device_id = customer.DeviceId, region = "us-east" }), 403);
        Assert.Equal("region_not_allowed", region.GetProperty("code").GetString());

        var foreignDevice = await stack.SeedCustomerAsync();
        var foreign = await stack.SendJsonAsync(TestStack.AsCustomer(customer.Id, HttpMethod.Post, "/v1/sessions",
            new { device_id = foreignDevice.DeviceId, region = "eu-west" }), 404);
        Assert.Equal("device_not_found", foreign.GetProperty("code").GetString());

        await stack.SendJsonAsync(stack.Admin(HttpMethod.Post, "/v1/admin/subscriptions", new { customer_id = customer.Id, plan_code = "basic", status = "canceled" }), 200);
        var inactive = await stack.SendJsonAsync(TestStack.AsCustomer(customer.Id, HttpMethod.Post, "/v1/sessions",
            new { device_id = customer.DeviceId, region = "eu-west" }), 403);
        Assert.Equal("subscription_inactive", inactive.GetProperty("code").GetString());
        var device = await stack.SendJsonAsync(TestStack.AsCustomer(customer.Id, HttpMethod.Post, "/v1/devices",
            new { name = "phone", public_key = TestStack.NewKey() }), 403);
        Assert.Equal("subscription_inactive", device.GetProperty("code").GetString());
    }

    [Fact]
    public async Task StartSession_NoFreshNode_503WithRejectionCounts()
    {
        await using var stack = await TestStack.StartAsync(store);
        var customer = await stack.SeedCustomerAsync();
        await stack.SendJsonAsync(stack.Admin(HttpMethod.Post, "/v1/internal/nodes/health", new { node_id = customer.NodeId, healthy = false, active_peer_count = 0 }), 204);

        var problem = await stack.SendJsonAsync(TestStack.AsCustomer(customer.Id, HttpMethod.Post, "/v1/sessions",
            new { device_id = customer.DeviceId, region = "eu-west" }), 503);

        Assert.Equal("no_nodes_available_in_region", problem.GetProperty("code").GetString());
        Assert.Equal(1, problem.GetProperty("rejected").GetProperty("unhealthy").GetInt32());
        Assert.DoesNotContain(customer.NodeId.ToString(), problem.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Devices_LimitKeyUniquenessAndDelete_FollowContract()
    {
        await using var stack = await TestStack.StartAsync(store);
        var customer = await stack.SeedCustomerAsync(maxDevices: 2);
        var key = TestStack.NewKey();
        await stack.SendJsonAsync(TestStack.AsCustomer(customer.Id, HttpMethod.Post, "/v1/devices", new { name = "phone", public_key = key }), 201);

        var limit = await stack.SendJsonAsync(TestStack.AsCustomer(customer.Id, HttpMethod.Post, "/v1/devices", new { name = "tv", public_key = TestStack.NewKey() }), 403);
        Assert.Equal("device_limit_reached", limit.GetProperty("code").GetString());
        var other = await stack.SeedCustomerAsync();
        var inUse = await stack.SendJsonAsync(TestStack.AsCustomer(other.Id, HttpMethod.Post, "/v1/devices", new { name = "dup", public_key = key }), 409);
        Assert.Equal("device_key_in_use", inUse.GetProperty("code").GetString());

        var list = await stack.SendJsonAsync(TestStack.AsCustomer(customer.Id, HttpMethod.Get, "/v1/devices"), 200);
        Assert.Equal(2, list.GetProperty("items").GetArrayLength());

        // Deleting a device with a live session terminates it and removes its peer.
        await stack.SendJsonAsync(TestStack.AsCustomer(customer.Id, HttpMethod.Post, "/v1/sessions", new { device_id = customer.DeviceId, region = "eu-west" }), 201);
        Assert.Equal(1, await stack.CoreDataplane.CountPeersAsync(default));
        var foreign = await stack.SendJsonAsync(TestStack.AsCustomer(other.Id, HttpMethod.Delete, $"/v1/devices/{customer.DeviceId}"), 404);
        Assert.Equal("device_not_found", foreign.GetProperty("code").GetString());
        await stack.SendJsonAsync(TestStack.AsCustomer(customer.Id, HttpMethod.Delete, $"/v1/devices/{customer.DeviceId}"), 204);
        Assert.Equal(0, await stack.CoreDataplane.CountPeersAsync(default));
        await stack.SendJsonAsync(TestStack.AsCustomer(customer.Id, HttpMethod.Get, "/v1/sessions/current"), 404);
        await stack.SendJsonAsync(TestStack.AsCustomer(customer.Id, HttpMethod.Delete, $"/v1/devices/{customer.DeviceId}"), 404);
    }

    [Fact]
    public async Task Admin_NodesPlansSubscriptions_RoundTrip()
    {
        await using var stack = await TestStack.StartAsync(store);
        var customer = await stack.SeedCustomerAsync();

        var nodes = await stack.SendJsonAsync(stack.Admin(HttpMethod.Get, "/v1/admin/nodes"), 200);
        var node = nodes.GetProperty("items").EnumerateArray().Single();
        Assert.True(node.GetProperty("healthy").GetBoolean());
        Assert.NotEqual(JsonValueKind.Null, node.GetProperty("last_heartbeat_at").ValueKind);
        // Upsert by name answers 200 with the same id.
        var updated = await stack.SendJsonAsync(stack.Admin(HttpMethod.Post, "/v1/admin/nodes", new
        {
            name = "node-eu-west", region = "eu-west", public_endpoint = "203.0.113.8:51820", public_key = TestStack.NewKey(),
            core_endpoint = "core.test:50051", capacity = 10,
        }), 200);
        Assert.Equal(customer.NodeId, updated.GetProperty("id").GetGuid());
        Assert.Equal(10, updated.GetProperty("capacity").GetInt32());

        var plans = await stack.SendJsonAsync(stack.Admin(HttpMethod.Get, "/v1/admin/plans"), 200);
        Assert.Equal("basic", plans.GetProperty("items")[0].GetProperty("code").GetString());
        var subscription = await stack.SendJsonAsync(stack.Admin(HttpMethod.Get, $"/v1/admin/subscriptions/{customer.Id}"), 200);
        Assert.Equal("active", subscription.GetProperty("status").GetString());
        Assert.Equal(5, subscription.GetProperty("max_devices").GetInt32());
        var none = await stack.SendJsonAsync(stack.Admin(HttpMethod.Get, $"/v1/admin/subscriptions/{Guid.NewGuid()}"), 404);
        Assert.Equal("subscription_not_found", none.GetProperty("code").GetString());
        var unknownPlan = await stack.SendJsonAsync(stack.Admin(HttpMethod.Post, "/v1/admin/subscriptions",
            new { customer_id = Guid.NewGuid(), plan_code = "gold", status = "active" }), 404);
        Assert.Equal("plan_not_found", unknownPlan.GetProperty("code").GetString());
    }

    [Fact]
    public async Task Service_HealthReadyOpenApi_Answer()
    {
        await using var stack = await TestStack.StartAsync(store);
        Assert.Equal(HttpStatusCode.OK, (await stack.Client.GetAsync("/healthz")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await stack.Client.GetAsync("/readyz")).StatusCode);
        var openApi = await stack.Client.GetStringAsync("/openapi/v1.json");
        Assert.Contains("/v1/sessions/current", openApi, StringComparison.Ordinal);
    }
}

public sealed class InMemorySessionApiTests() : SessionApiTests(StoreKind.InMemory);

public sealed class PostgresSessionApiTests() : SessionApiTests(StoreKind.Postgres);
