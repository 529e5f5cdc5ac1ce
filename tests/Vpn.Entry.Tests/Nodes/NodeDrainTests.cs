using System.Text.Json;

namespace Vpn.Entry.Tests.Nodes;

/// <summary>
/// Drain, undrain, migrate and delete a node through the admin API, with real in-process cores: starts skip a draining
/// node, its sessions move on reconnect or, with migrate, by entry itself, and it can be deleted once empty.
/// </summary>
public abstract class NodeDrainTests(StoreKind store)
{
    private const string CoreB = "core-b.test:50051";

    private static readonly Dictionary<string, string?> SmallBatches = new() { ["APP_DRAIN_BATCH_SIZE"] = "2", ["APP_DRAIN_CONCURRENCY"] = "2" };

    private static HttpRequestMessage Start(Customer c) =>
        TestStack.AsCustomer(c.Id, HttpMethod.Post, "/v1/sessions", new { device_id = c.DeviceId, region = "eu-west" });

    private static HttpRequestMessage Reconnect(Guid customer, string key) =>
        TestStack.AsCustomer(customer, HttpMethod.Post, "/v1/sessions/reconnect", new { session_key = key });

    private static HttpRequestMessage Current(Guid customer) => TestStack.AsCustomer(customer, HttpMethod.Get, "/v1/sessions/current");

    private static Guid NodeOf(JsonElement session) => session.GetProperty("node").GetProperty("id").GetGuid();

    [Fact]
    public async Task Drain_NewStarts_SkipTheNodeUntilUndrained()
    {
        await using var stack = await TestStack.StartAsync(store);
        var first = await stack.SeedCustomerAsync();
        var second = await stack.SeedCustomerAsync();

        var drained = await stack.SendJsonAsync(stack.Admin(HttpMethod.Post, $"/v1/admin/nodes/{first.NodeId}/drain"), 200);
        var refused = await stack.SendJsonAsync(Start(first), 503);
        var b = await stack.RegisterNodeAsync("node-b", "eu-west", coreEndpoint: CoreB);
        var onB = await stack.SendJsonAsync(Start(first), 201);
        var undrained = await stack.SendJsonAsync(stack.Admin(HttpMethod.Post, $"/v1/admin/nodes/{first.NodeId}/undrain"), 200);
        // Least loaded again: the undrained node (0 sessions) over node-b (1).
        var onA = await stack.SendJsonAsync(Start(second), 201);

        Assert.True(drained.GetProperty("draining").GetBoolean());
        Assert.False(drained.GetProperty("drain_migrate").GetBoolean());
        Assert.Equal(JsonValueKind.String, drained.GetProperty("draining_since").ValueKind);
        Assert.Equal("no_nodes_available_in_region", refused.GetProperty("code").GetString());
        Assert.Equal(1, refused.GetProperty("rejected").GetProperty("draining").GetInt32());
        Assert.Equal(b, NodeOf(onB));
        Assert.False(undrained.GetProperty("draining").GetBoolean());
        Assert.Equal(JsonValueKind.Null, undrained.GetProperty("draining_since").ValueKind);
        Assert.Equal(first.NodeId, NodeOf(onA));
    }

    [Fact]
    public async Task Drain_WithoutMigrate_SessionMovesOnReconnectAndNodeIsDeletedOnceEmpty()
    {
        await using var stack = await TestStack.StartAsync(store);
        var c = await stack.SeedCustomerAsync();
        var ended = await stack.SeedCustomerAsync();
        // A session that ended on the node leaves a history row naming it; delete takes it along.
        await stack.SendJsonAsync(Start(ended), 201);
        await stack.SendJsonAsync(TestStack.AsCustomer(ended.Id, HttpMethod.Delete, "/v1/sessions/current"), 204);
        var session = await stack.SendJsonAsync(Start(c), 201);
        var b = await stack.RegisterNodeAsync("node-b", "eu-west", coreEndpoint: CoreB);

        var notDraining = await stack.SendJsonAsync(stack.Admin(HttpMethod.Delete, $"/v1/admin/nodes/{c.NodeId}"), 409);
        await stack.SendJsonAsync(stack.Admin(HttpMethod.Post, $"/v1/admin/nodes/{c.NodeId}/drain", new { migrate = false }), 200);
        var notEmpty = await stack.SendJsonAsync(stack.Admin(HttpMethod.Delete, $"/v1/admin/nodes/{c.NodeId}"), 409);
        var moved = await stack.SendJsonAsync(Reconnect(c.Id, session.GetProperty("session_key").GetString()!), 200);

        Assert.Equal("node_not_draining", notDraining.GetProperty("code").GetString());
        Assert.Equal("node_not_empty", notEmpty.GetProperty("code").GetString());
        Assert.Equal(session.GetProperty("session_id").GetGuid(), moved.GetProperty("session_id").GetGuid());
        Assert.Equal(b, NodeOf(moved));
        Assert.NotEqual(session.GetProperty("wireguard_config").GetString(), moved.GetProperty("wireguard_config").GetString());
        Assert.Equal(0, await stack.CoreDataplane.CountPeersAsync(default));
        Assert.Equal(1, await stack.CoreFor(CoreB).CountPeersAsync(default));

        using var deleted = await stack.Client.SendAsync(stack.Admin(HttpMethod.Delete, $"/v1/admin/nodes/{c.NodeId}"));
        Assert.Equal(204, (int)deleted.StatusCode);
        var gone = await stack.SendJsonAsync(stack.Admin(HttpMethod.Delete, $"/v1/admin/nodes/{c.NodeId}"), 404);
        Assert.Equal("node_not_found", gone.GetProperty("code").GetString());
        var nodes = await stack.SendJsonAsync(stack.Admin(HttpMethod.Get, "/v1/admin/nodes"), 200);
        Assert.Equal([b], nodes.GetProperty("items").EnumerateArray().Select(n => n.GetProperty("id").GetGuid()));
        Assert.Equal(b, NodeOf(await stack.SendJsonAsync(Current(c.Id), 200)));
        Assert.Equal(b, NodeOf(await stack.SendJsonAsync(Start(ended), 201)));
    }

    [Fact]
    public async Task DrainWithMigrate_EverySessionMovesInBatches_ReconnectGetsNewConfig()
    {
        await using var stack = await TestStack.StartAsync(store, SmallBatches);
        var customers = new List<Customer>();
        var keys = new Dictionary<Guid, string>();
        for (var i = 0; i < 5; i++)
        {
            var c = await stack.SeedCustomerAsync();
            customers.Add(c);
            keys[c.Id] = (await stack.SendJsonAsync(Start(c), 201)).GetProperty("session_key").GetString()!;
        }
        var a = customers[0].NodeId;
        var b = await stack.RegisterNodeAsync("node-b", "eu-west", coreEndpoint: CoreB);

        var drained = await stack.SendJsonAsync(stack.Admin(HttpMethod.Post, $"/v1/admin/nodes/{a}/drain", new { migrate = true }), 200);
        await WaitUntilAsync(async () =>
        {
            using var response = await stack.Client.SendAsync(stack.Admin(HttpMethod.Delete, $"/v1/admin/nodes/{a}"));
            return (int)response.StatusCode == 204;
        });

        Assert.True(drained.GetProperty("drain_migrate").GetBoolean());
        Assert.Equal(0, await stack.CoreDataplane.CountPeersAsync(default));
        Assert.Equal(5, await stack.CoreFor(CoreB).CountPeersAsync(default));
        var addresses = new HashSet<string>();
        foreach (var c in customers)
        {
            var current = await stack.SendJsonAsync(Current(c.Id), 200);
            // The key the client already holds still works and brings the new node's config.
            var reconnected = await stack.SendJsonAsync(Reconnect(c.Id, keys[c.Id]), 200);
            Assert.Equal(b, NodeOf(current));
            Assert.Equal(b, NodeOf(reconnected));
            Assert.Equal(current.GetProperty("interface").GetProperty("address").GetString(), reconnected.GetProperty("interface").GetProperty("address").GetString());
            Assert.Contains(reconnected.GetProperty("node").GetProperty("public_key").GetString()!, reconnected.GetProperty("wireguard_config").GetString()!,
                StringComparison.Ordinal);
            Assert.True(addresses.Add(reconnected.GetProperty("interface").GetProperty("address").GetString()!));
        }
    }

    [Fact]
    public async Task DrainWithMigrate_NoOtherNode_SessionsStayUntilOneJoins()
    {
        await using var stack = await TestStack.StartAsync(store, new Dictionary<string, string?> { ["APP_DRAIN_INTERVAL_SECS"] = "1" });
        var c = await stack.SeedCustomerAsync();
        var key = (await stack.SendJsonAsync(Start(c), 201)).GetProperty("session_key").GetString()!;

        await stack.SendJsonAsync(stack.Admin(HttpMethod.Post, $"/v1/admin/nodes/{c.NodeId}/drain", new { migrate = true }), 200);
        await stack.EntryServices.GetRequiredService<NodeDrainMigrator>().PassAsync(TestContext.Current.CancellationToken);

        Assert.Equal(c.NodeId, NodeOf(await stack.SendJsonAsync(Current(c.Id), 200)));
        // Nowhere to move to: the draining node keeps serving it, and reconnect answers as usual (a new key).
        var stayed = await stack.SendJsonAsync(Reconnect(c.Id, key), 200);
        Assert.Equal(c.NodeId, NodeOf(stayed));
        await stack.SendJsonAsync(Reconnect(c.Id, key), 401);
        key = stayed.GetProperty("session_key").GetString()!;
        var notEmpty = await stack.SendJsonAsync(stack.Admin(HttpMethod.Delete, $"/v1/admin/nodes/{c.NodeId}"), 409);
        Assert.Equal("node_not_empty", notEmpty.GetProperty("code").GetString());

        var b = await stack.RegisterNodeAsync("node-b", "eu-west", coreEndpoint: CoreB);
        await WaitUntilAsync(async () => NodeOf(await stack.SendJsonAsync(Current(c.Id), 200)) == b);
        Assert.Equal(b, NodeOf(await stack.SendJsonAsync(Reconnect(c.Id, key), 200)));
    }

    [Theory]
    [InlineData(65_535, 201)]
    [InlineData(65_536, 400)]
    [InlineData(1_000_000, 400)]
    public async Task RegisterNode_CapacityAgainstWireGuardLimit_OnlyBelowItAccepted(int capacity, int status)
    {
        await using var stack = await TestStack.StartAsync(store);

        using var response = await stack.Client.SendAsync(stack.Admin(HttpMethod.Post, "/v1/admin/nodes", new
        {
            name = "big", region = "eu-west", public_endpoint = "203.0.113.7:51820", public_key = TestStack.NewKey(),
            core_endpoint = TestStack.DefaultCoreEndpoint, capacity,
        }));

        Assert.Equal(status, (int)response.StatusCode);
        Assert.True(capacity < Vpn.Domain.Nodes.NodeSnapshot.MaxPeersPerInterface == (status == 201));
    }

    [Theory]
    [InlineData("POST", "/drain")]
    [InlineData("POST", "/undrain")]
    [InlineData("DELETE", "")]
    public async Task DrainEndpoints_UnknownOrMalformedNode_404AndAdminOnly(string method, string suffix)
    {
        await using var stack = await TestStack.StartAsync(store);

        var unknown = await stack.SendJsonAsync(stack.Admin(new HttpMethod(method), $"/v1/admin/nodes/{Guid.NewGuid()}{suffix}"), 404);
        var malformed = await stack.SendJsonAsync(stack.Admin(new HttpMethod(method), $"/v1/admin/nodes/not-a-uuid{suffix}"), 404);
        using var anonymous = await stack.Client.SendAsync(new HttpRequestMessage(new HttpMethod(method), $"/v1/admin/nodes/{Guid.NewGuid()}{suffix}"));

        Assert.Equal("node_not_found", unknown.GetProperty("code").GetString());
        Assert.Equal("node_not_found", malformed.GetProperty("code").GetString());
        Assert.Equal(401, (int)anonymous.StatusCode);
    }

    /// <summary>Polls until the condition holds (the migrator runs in the background); fails after 30 s.</summary>
    private static async Task WaitUntilAsync(Func<Task<bool>> condition)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        deadline.CancelAfter(TimeSpan.FromSeconds(30));
        while (!await condition())
        {
            await Task.Delay(50, deadline.Token);
        }
    }
}

public sealed class InMemoryNodeDrainTests() : NodeDrainTests(StoreKind.InMemory);

public sealed class PostgresNodeDrainTests() : NodeDrainTests(StoreKind.Postgres);
