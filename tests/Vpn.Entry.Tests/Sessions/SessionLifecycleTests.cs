using System.Net.Http.Json;

namespace Vpn.Entry.Tests.Sessions;

/// <summary>Retries, races and moves: replace_existing, reconnect by session key, Idempotency-Key, capacity under load.</summary>
public abstract class SessionLifecycleTests(StoreKind store)
{
    private static HttpRequestMessage Start(Customer c, object? extra = null, string? idempotencyKey = null)
    {
        var request = TestStack.AsCustomer(c.Id, HttpMethod.Post, "/v1/sessions", extra ?? new { device_id = c.DeviceId, region = "eu-west" });
        if (idempotencyKey is not null)
        {
            request.Headers.Add("Idempotency-Key", idempotencyKey);
        }
        return request;
    }

    private static HttpRequestMessage Reconnect(Guid customer, string key) =>
        TestStack.AsCustomer(customer, HttpMethod.Post, "/v1/sessions/reconnect", new { session_key = key });

    [Fact]
    public async Task ReplaceExisting_ActiveSession_OldTerminatedPeerSwapped()
    {
        await using var stack = await TestStack.StartAsync(store);
        var c = await stack.SeedCustomerAsync();
        var first = await stack.SendJsonAsync(Start(c), 201);

        var second = await stack.SendJsonAsync(Start(c, new { device_id = c.DeviceId, region = "eu-west", replace_existing = true }), 201);

        Assert.NotEqual(first.GetProperty("session_id").GetGuid(), second.GetProperty("session_id").GetGuid());
        var current = await stack.SendJsonAsync(TestStack.AsCustomer(c.Id, HttpMethod.Get, "/v1/sessions/current"), 200);
        Assert.Equal(second.GetProperty("session_id").GetGuid(), current.GetProperty("session_id").GetGuid());
        Assert.Equal(1, await stack.CoreDataplane.CountPeersAsync(default));
        // The old key died with the old session.
        var old = await stack.SendJsonAsync(Reconnect(c.Id, first.GetProperty("session_key").GetString()!), 401);
        Assert.Equal("invalid_session_key", old.GetProperty("code").GetString());
    }

    [Fact]
    public async Task Reconnect_RotatesKey_ReplayAndForeignKeyRejected()
    {
        await using var stack = await TestStack.StartAsync(store);
        var a = await stack.SeedCustomerAsync();
        var b = await stack.SeedCustomerAsync();
        var session = await stack.SendJsonAsync(Start(a), 201);
        var key1 = session.GetProperty("session_key").GetString()!;

        var foreign = await stack.SendJsonAsync(Reconnect(b.Id, key1), 401);
        Assert.Equal("invalid_session_key", foreign.GetProperty("code").GetString());

        var reconnected = await stack.SendJsonAsync(Reconnect(a.Id, key1), 200);
        Assert.Equal(session.GetProperty("session_id").GetGuid(), reconnected.GetProperty("session_id").GetGuid());
        var key2 = reconnected.GetProperty("session_key").GetString()!;
        Assert.NotEqual(key1, key2);
        Assert.Equal(session.GetProperty("interface").GetProperty("address").GetString(), reconnected.GetProperty("interface").GetProperty("address").GetString());

        var replay = await stack.SendJsonAsync(Reconnect(a.Id, key1), 401);
        Assert.Equal("invalid_session_key", replay.GetProperty("code").GetString());
        await stack.SendJsonAsync(Reconnect(a.Id, "not a key at all"), 401);
        await stack.SendJsonAsync(Reconnect(a.Id, key2), 200);
    }

    [Fact]
    public async Task Reconnect_ConcurrentWithOneKey_ExactlyOneWins()
    {
        await using var stack = await TestStack.StartAsync(store);
        var c = await stack.SeedCustomerAsync();
        var key = (await stack.SendJsonAsync(Start(c), 201)).GetProperty("session_key").GetString()!;

        var statuses = await Task.WhenAll(Enumerable.Range(0, 10).Select(async _ =>
        {
            using var response = await stack.Client.SendAsync(Reconnect(c.Id, key));
            return (int)response.StatusCode;
        }));

        Assert.Equal(1, statuses.Count(s => s == 200));
        Assert.Equal(9, statuses.Count(s => s == 401));
    }

    [Fact]
    public async Task Reconnect_NodeUnhealthy_MovesToMatchingNode()
    {
        await using var stack = await TestStack.StartAsync(store);
        var c = await stack.SeedCustomerAsync();
        var session = await stack.SendJsonAsync(Start(c), 201);
        var second = await stack.RegisterNodeAsync("node-eu-west-2", "eu-west", coreEndpoint: "core2.test:50051");
        await stack.RegisterNodeAsync("node-us-east", "us-east", coreEndpoint: "core3.test:50051");
        await stack.SendJsonAsync(stack.Admin(HttpMethod.Post, "/v1/internal/nodes/health", new { node_id = c.NodeId, healthy = false, active_peer_count = 1 }), 204);

        var moved = await stack.SendJsonAsync(Reconnect(c.Id, session.GetProperty("session_key").GetString()!), 200);

        Assert.Equal(session.GetProperty("session_id").GetGuid(), moved.GetProperty("session_id").GetGuid());
        Assert.Equal(second, moved.GetProperty("node").GetProperty("id").GetGuid());
        Assert.Equal(0, await stack.CoreDataplane.CountPeersAsync(default));
        Assert.Equal(1, await stack.CoreFor("core2.test:50051").CountPeersAsync(default));
        var current = await stack.SendJsonAsync(TestStack.AsCustomer(c.Id, HttpMethod.Get, "/v1/sessions/current"), 200);
        Assert.Equal(second, current.GetProperty("node").GetProperty("id").GetGuid());
        Assert.Contains(moved.GetProperty("interface").GetProperty("address").GetString()!, current.GetProperty("wireguard_config").GetString()!, StringComparison.Ordinal);
    }

    [Fact]
    public async Task IdempotencyKey_RetryAfterLostResponse_SameSessionNothingNew()
    {
        await using var stack = await TestStack.StartAsync(store);
        var c = await stack.SeedCustomerAsync();
        var first = await stack.SendJsonAsync(Start(c, idempotencyKey: "start-1"), 201);

        // The app never saw the first answer and retries with the same key and body.
        var retry = await stack.SendJsonAsync(Start(c, idempotencyKey: "start-1"), 201);

        Assert.Equal(first.GetProperty("session_id").GetGuid(), retry.GetProperty("session_id").GetGuid());
        Assert.Equal(1, await stack.CoreDataplane.CountPeersAsync(default));
        // The replay carries a working key (rotated: the key of the lost answer is dead).
        await stack.SendJsonAsync(Reconnect(c.Id, retry.GetProperty("session_key").GetString()!), 200);
        var other = await stack.SendJsonAsync(Start(c, new { device_id = c.DeviceId, region = "eu-west", pool = "other" }, "start-1"), 422);
        Assert.Equal("idempotency_key_reused", other.GetProperty("code").GetString());
        // Without a key, the one-session rule answers as usual.
        await stack.SendJsonAsync(Start(c), 409);
    }

    [Fact]
    public async Task IdempotencyKey_TwentyConcurrentDuplicates_StartOneSession()
    {
        await using var stack = await TestStack.StartAsync(store);
        var c = await stack.SeedCustomerAsync();

        var answers = await Task.WhenAll(Enumerable.Range(0, 20).Select(async _ =>
        {
            using var response = await stack.Client.SendAsync(Start(c, idempotencyKey: "burst"));
            return ((int)response.StatusCode, await response.Content.ReadAsStringAsync());
        }));

        Assert.All(answers, a => Assert.Equal(201, a.Item1));
        Assert.Single(answers.Select(a => JsonDocument.Parse(a.Item2).RootElement.GetProperty("session_id").GetGuid()).Distinct());
        Assert.Equal(1, await stack.CoreDataplane.CountPeersAsync(default));
    }

    [Fact]
    public async Task IdempotencyKey_ScopedPerCustomer()
    {
        await using var stack = await TestStack.StartAsync(store);
        var a = await stack.SeedCustomerAsync();
        var b = await stack.SeedCustomerAsync();
        var sa = await stack.SendJsonAsync(Start(a, idempotencyKey: "same"), 201);
        var sb = await stack.SendJsonAsync(Start(b, idempotencyKey: "same"), 201);
        Assert.NotEqual(sa.GetProperty("session_id").GetGuid(), sb.GetProperty("session_id").GetGuid());
        await stack.SendJsonAsync(Start(a, idempotencyKey: new string('k', 256)), 400);
    }

    [Fact]
    public async Task StartSession_FiveHundredCustomersTwoNodesOfTwoHundred_FourHundredSucceed()
    {
        // Capacity is what this burst measures, not shedding: admission queues all of it, however slow the machine.
        await using var stack = await TestStack.StartAsync(store, new Dictionary<string, string?>
        {
            ["APP_SESSION_ADMISSION_QUEUE"] = "1000",
            ["APP_SESSION_ADMISSION_WAIT_MS"] = "60000",
        });
        await stack.SendJsonAsync(stack.Admin(HttpMethod.Post, "/v1/admin/plans", new { code = "load", name = "Load", max_devices = 1, allowed_regions = new[] { "load" } }), 200);
        var nodeA = await stack.RegisterNodeAsync("load-a", "load", 200, "core-a.test:50051");
        var nodeB = await stack.RegisterNodeAsync("load-b", "load", 200, "core-b.test:50051");
        var customers = new List<(Guid Id, Guid Device)>();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        for (var i = 0; i < 500; i++)
        {
            var id = Guid.NewGuid();
            await stack.SendJsonAsync(stack.Admin(HttpMethod.Post, "/v1/admin/subscriptions", new { customer_id = id, plan_code = "load", status = "active" }), 200);
            var device = await stack.SendJsonAsync(TestStack.AsCustomer(id, HttpMethod.Post, "/v1/devices", new { name = "d", public_key = TestStack.NewKey() }), 201);
            customers.Add((id, device.GetProperty("id").GetGuid()));
        }
        var setupMs = clock.ElapsedMilliseconds;
        // Setup takes a while on a loaded machine; the nodes' cores would have sent heartbeats meanwhile.
        foreach (var node in new[] { nodeA, nodeB })
        {
            await stack.SendJsonAsync(stack.Admin(HttpMethod.Post, "/v1/internal/nodes/health", new { node_id = node, healthy = true, active_peer_count = 0 }), 204);
        }

        var results = await Task.WhenAll(customers.Select(async c =>
        {
            using var response = await stack.Client.SendAsync(TestStack.AsCustomer(c.Id, HttpMethod.Post, "/v1/sessions", new { device_id = c.Device, region = "load" }));
            return ((int)response.StatusCode, await response.Content.ReadAsStringAsync());
        }));

        var summary = $"setup {setupMs} ms, burst done {clock.ElapsedMilliseconds} ms: " + string.Join(", ", results.GroupBy(r => r.Item1).Select(g => $"{g.Key}x{g.Count()}: {g.Last().Item2[..Math.Min(600, g.Last().Item2.Length)]}"));
        Assert.True(results.Count(r => r.Item1 == 201) == 400, summary);
        Assert.Equal(100, results.Count(r => r.Item1 == 503));
        var sessions = results.Where(r => r.Item1 == 201).Select(r => JsonDocument.Parse(r.Item2).RootElement).ToList();
        var perNode = sessions.GroupBy(s => s.GetProperty("node").GetProperty("id").GetGuid()).ToDictionary(g => g.Key, g => g.ToList());
        Assert.Equal(200, perNode[nodeA].Count);
        Assert.Equal(200, perNode[nodeB].Count);
        foreach (var group in perNode.Values)
        {
            var addresses = group.Select(s => s.GetProperty("interface").GetProperty("address").GetString()).ToList();
            Assert.Equal(addresses.Count, addresses.Distinct().Count());
        }
        Assert.Equal(200, await stack.CoreFor("core-a.test:50051").CountPeersAsync(default));
        Assert.Equal(200, await stack.CoreFor("core-b.test:50051").CountPeersAsync(default));
        var rejected = JsonDocument.Parse(results.First(r => r.Item1 == 503).Item2).RootElement;
        Assert.Equal("no_nodes_available_in_region", rejected.GetProperty("code").GetString());
        Assert.Equal(2, rejected.GetProperty("rejected").GetProperty("at_capacity").GetInt32());
        var nodes = await stack.Client.SendAsync(stack.Admin(HttpMethod.Get, "/v1/admin/nodes"));
        Assert.True(nodes.IsSuccessStatusCode);
        _ = await nodes.Content.ReadFromJsonAsync<JsonElement>();
    }
}

public sealed class InMemorySessionLifecycleTests() : SessionLifecycleTests(StoreKind.InMemory);

public sealed class PostgresSessionLifecycleTests() : SessionLifecycleTests(StoreKind.Postgres);
