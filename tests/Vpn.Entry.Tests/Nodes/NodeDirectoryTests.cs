using Microsoft.Extensions.Logging.Abstractions;
using Vpn.Entry.Data.InMemory;
using Vpn.Entry.Data.Postgres;
using Vpn.Entry.Tests.Data;

namespace Vpn.Entry.Tests.Nodes;

/// <summary>
/// The node cache session starts choose from: a change made by another path (another replica, by hand) reaches it by
/// NOTIFY; this replica's heartbeats update it in place; a node whose heartbeat went stale while cached is not used.
/// </summary>
public sealed class NodeDirectoryTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly DateTimeOffset T0 = new(2030, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private static NodeRegistration Registration(string name, int capacity = 100) =>
        new(name, "eu-west", "DE", "fra", "default", "203.0.113.7:51820", TestStack.NewKey(), "core.test:50051", capacity);

    [Fact]
    public async Task ChangeByAnotherPath_ReachesTheCacheByNotify()
    {
        await using var db = await TestDatabase.CreateMigratedAsync("node_cache");
        var ours = new PostgresNodeStore(db.DataSource);
        var (a, _) = await ours.UpsertAsync(Registration("node-a"), T0, Ct);
        // A refresh interval (a minute) beyond the test: only the notification can bring the changes.
        var directory = new NodeDirectory(ours, SlowRefresh(), TimeProvider.System, NullLogger<NodeDirectory>.Instance);
        using var listener = new PostgresNodeChangeListener(db.DataSource, directory, TimeProvider.System, NullLogger<PostgresNodeChangeListener>.Instance);
        await listener.StartAsync(Ct);
        await WaitUntilAsync(async () => (await directory.GetAsync(Ct)).ById.ContainsKey(a.Id));

        // Another replica's store (its own connection pool) registers a node and changes node-a's capacity.
        await using var otherSource = NpgsqlDataSource.Create(db.ConnectionString);
        var theirs = new PostgresNodeStore(otherSource);
        var (b, _) = await theirs.UpsertAsync(Registration("node-b"), T0, Ct);
        await theirs.UpsertAsync(Registration("node-a", capacity: 7), T0, Ct);

        await WaitUntilAsync(async () => (await directory.GetAsync(Ct)) is var s && s.ById.ContainsKey(b.Id) && s.ById[a.Id].Node.Capacity == 7);
        await listener.StopAsync(Ct);
    }

    [Fact]
    public async Task OwnHeartbeat_UpdatesTheCachedNodeInPlace()
    {
        var store = new InMemoryNodeStore(new InMemoryDatabase());
        var (node, _) = await store.UpsertAsync(Registration("node-a"), T0, Ct);
        var directory = new NodeDirectory(store, SlowRefresh(), TimeProvider.System,
            NullLogger<NodeDirectory>.Instance);
        var before = await directory.GetAsync(Ct);
        Assert.False(before.ById[node.Id].Node.Healthy);

        directory.ObserveHeartbeat(node.Id, healthy: true, 3, T0.AddSeconds(5));
        directory.ObserveLoad(node.Id, 4);

        var after = await directory.GetAsync(Ct);
        Assert.Same(before, after);
        Assert.Equal((true, 3, T0.AddSeconds(5), 4), (after.ById[node.Id].Node.Healthy, after.ById[node.Id].Node.ActivePeerCount,
            after.ById[node.Id].Node.LastHeartbeatAt, after.ById[node.Id].LiveSessions));
    }

    [Fact]
    public async Task NodePastItsHeartbeatWhileCached_NoStartLandsOnIt()
    {
        // The cache is told nothing (no NOTIFY for heartbeat times, refresh a minute away): it still holds node-a as fresh.
        await using var stack = await TestStack.StartAsync(StoreKind.Postgres, new Dictionary<string, string?> { ["APP_NODE_CACHE_REFRESH_MS"] = "60000" });
        var stale = await stack.RegisterNodeAsync("node-a", "eu-west");
        var customers = new List<Customer>();
        for (var i = 0; i < 8; i++)
        {
            customers.Add(await stack.SeedCustomerAsync());
        }
        var fresh = customers[0].NodeId;
        Assert.NotEqual(stale, fresh);
        // The first start loads the cache while both nodes are fresh.
        await stack.SendJsonAsync(TestStack.AsCustomer(customers[0].Id, HttpMethod.Post, "/v1/sessions", new { device_id = customers[0].DeviceId, region = "eu-west" }), 201);
        var url = stack.EntryServices.GetRequiredService<EntryOptions>().DatabaseConnectionString!;
        await using (var source = NpgsqlDataSource.Create(url))
        {
            await using var age = source.CreateCommand("update vpn_nodes set last_heartbeat_at = now() - interval '10 minutes' where id = @id");
            age.Parameters.AddWithValue("id", stale);
            Assert.Equal(1, await age.ExecuteNonQueryAsync(Ct));
        }

        var nodes = new List<Guid>();
        foreach (var c in customers.Skip(1))
        {
            var session = await stack.SendJsonAsync(TestStack.AsCustomer(c.Id, HttpMethod.Post, "/v1/sessions", new { device_id = c.DeviceId, region = "eu-west" }), 201);
            nodes.Add(session.GetProperty("node").GetProperty("id").GetGuid());
        }

        Assert.All(nodes, n => Assert.Equal(fresh, n));
    }

    private static EntryOptions SlowRefresh()
    {
        var (options, errors) = OptionsLoading.Load(EntryOptions.Load, ("APP_NODE_CACHE_REFRESH_MS", "60000"));
        Assert.Empty(errors);
        return options;
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition)
    {
        // A bound for a loaded machine, not a measurement: notifications arrive in milliseconds.
        for (var deadline = DateTime.UtcNow.AddSeconds(30); !await condition(); await Task.Delay(20, Ct))
        {
            Assert.True(DateTime.UtcNow < deadline, "the change never reached the node cache");
        }
    }
}
