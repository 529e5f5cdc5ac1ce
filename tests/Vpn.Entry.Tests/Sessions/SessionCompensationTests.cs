namespace Vpn.Entry.Tests.Sessions;

/// <summary>
/// Nothing half-done when the store fails after core changed something: the client gets the error, and at once — not
/// after the provisioning sweeper — the node holds no stray peer, the database no live row, and a retry succeeds.
/// </summary>
public abstract class SessionCompensationTests(StoreKind store)
{
    private static HttpRequestMessage Start(Customer c, bool replace = false, string? idempotencyKey = null)
    {
        var request = TestStack.AsCustomer(c.Id, HttpMethod.Post, "/v1/sessions", new { device_id = c.DeviceId, region = "eu-west", replace_existing = replace });
        if (idempotencyKey is not null)
        {
            request.Headers.Add("Idempotency-Key", idempotencyKey);
        }
        return request;
    }

    /// <summary>The node's live rows (provisioning and active) as the database lists them for reconciliation.</summary>
    private static async Task<int> LiveRowsAsync(TestStack stack, Guid nodeId) =>
        (await stack.SendJsonAsync(stack.Admin(HttpMethod.Get, $"/v1/internal/nodes/{nodeId}/peers"), 200)).GetProperty("peers").GetArrayLength();

    private static async Task AssertStoreUnavailableAsync(TestStack stack, HttpRequestMessage request)
    {
        var problem = await stack.SendJsonAsync(request, 503);
        Assert.Equal("store_unavailable", problem.GetProperty("code").GetString());
    }

    [Fact]
    public async Task StartSession_ActivationFailsAfterConnect_503NoRowNoPeerAndRetryCreated()
    {
        var faults = new FaultyStores();
        await using var stack = await TestStack.StartAsync(store, configureServices: faults.Install);
        var c = await stack.SeedCustomerAsync();
        faults.FailNextActivation();

        await AssertStoreUnavailableAsync(stack, Start(c));

        Assert.Equal(0, await stack.CoreDataplane.CountPeersAsync(default));
        Assert.Equal(0, await LiveRowsAsync(stack, c.NodeId));
        await stack.SendJsonAsync(TestStack.AsCustomer(c.Id, HttpMethod.Get, "/v1/sessions/current"), 404);
        var retry = await stack.SendJsonAsync(Start(c), 201);
        Assert.Equal("active", retry.GetProperty("state").GetString());
        Assert.Equal(1, await stack.CoreDataplane.CountPeersAsync(default));
        Assert.Equal(1, await LiveRowsAsync(stack, c.NodeId));
    }

    [Fact]
    public async Task StartSession_ReplaceExistingActivationFails_503NoRowNoPeerAndRetryCreated()
    {
        var faults = new FaultyStores();
        await using var stack = await TestStack.StartAsync(store, configureServices: faults.Install);
        var c = await stack.SeedCustomerAsync();
        await stack.SendJsonAsync(Start(c), 201);
        faults.FailNextActivation();

        await AssertStoreUnavailableAsync(stack, Start(c, replace: true));

        // The old session was replaced (terminated, its peer removed) and the new one undone: neither is left on the node.
        Assert.Equal(0, await stack.CoreDataplane.CountPeersAsync(default));
        Assert.Equal(0, await LiveRowsAsync(stack, c.NodeId));
        await stack.SendJsonAsync(Start(c), 201);
        Assert.Equal(1, await stack.CoreDataplane.CountPeersAsync(default));
    }

    [Fact]
    public async Task StartSession_IdempotencyRecordFailsAfterActivation_503UndoneAndRetryWithKeyCreated()
    {
        var faults = new FaultyStores();
        await using var stack = await TestStack.StartAsync(store, configureServices: faults.Install);
        var c = await stack.SeedCustomerAsync();
        faults.FailNextCreatedRecord();

        await AssertStoreUnavailableAsync(stack, Start(c, idempotencyKey: "k1"));

        Assert.Equal(0, await stack.CoreDataplane.CountPeersAsync(default));
        Assert.Equal(0, await LiveRowsAsync(stack, c.NodeId));
        // The retry with the same key starts a session (not 409 against one whose key nobody holds)...
        var retry = await stack.SendJsonAsync(Start(c, idempotencyKey: "k1"), 201);
        // ...whose key works, and a replay of the same key answers the same session.
        await stack.SendJsonAsync(TestStack.AsCustomer(c.Id, HttpMethod.Post, "/v1/sessions/reconnect",
            new { session_key = retry.GetProperty("session_key").GetString() }), 200);
        var replay = await stack.SendJsonAsync(Start(c, idempotencyKey: "k1"), 201);
        Assert.Equal(retry.GetProperty("session_id").GetGuid(), replay.GetProperty("session_id").GetGuid());
        Assert.Equal(1, await stack.CoreDataplane.CountPeersAsync(default));
    }

    [Fact]
    public async Task Reconnect_MoveFailsInStoreAfterNewNodeConnect_503NewPeerRemovedAndRetryMoves()
    {
        var faults = new FaultyStores();
        await using var stack = await TestStack.StartAsync(store, configureServices: faults.Install);
        var c = await stack.SeedCustomerAsync();
        var session = await stack.SendJsonAsync(Start(c), 201);
        var key = session.GetProperty("session_key").GetString()!;
        var second = await stack.RegisterNodeAsync("node-eu-west-2", "eu-west", coreEndpoint: "core2.test:50051");
        await stack.SendJsonAsync(stack.Admin(HttpMethod.Post, "/v1/internal/nodes/health", new { node_id = c.NodeId, healthy = false, active_peer_count = 1 }), 204);
        faults.FailNextMove();

        await AssertStoreUnavailableAsync(stack, TestStack.AsCustomer(c.Id, HttpMethod.Post, "/v1/sessions/reconnect", new { session_key = key }));

        // The database still has the session on its first node, and only that node has its peer.
        Assert.Equal(0, await stack.CoreFor("core2.test:50051").CountPeersAsync(default));
        Assert.Equal(1, await stack.CoreDataplane.CountPeersAsync(default));
        var current = await stack.SendJsonAsync(TestStack.AsCustomer(c.Id, HttpMethod.Get, "/v1/sessions/current"), 200);
        Assert.Equal(c.NodeId, current.GetProperty("node").GetProperty("id").GetGuid());
        // The key was not rotated by the failed move: the retry moves the session.
        var moved = await stack.SendJsonAsync(TestStack.AsCustomer(c.Id, HttpMethod.Post, "/v1/sessions/reconnect", new { session_key = key }), 200);
        Assert.Equal(second, moved.GetProperty("node").GetProperty("id").GetGuid());
        Assert.Equal(1, await stack.CoreFor("core2.test:50051").CountPeersAsync(default));
        Assert.Equal(0, await stack.CoreDataplane.CountPeersAsync(default));
    }
}

public sealed class InMemorySessionCompensationTests() : SessionCompensationTests(StoreKind.InMemory);

public sealed class PostgresSessionCompensationTests() : SessionCompensationTests(StoreKind.Postgres);
