using Vpn.Entry.Data;
using Vpn.Harness;

namespace Vpn.Entry.Tests.Data;

public sealed partial class MigrationTests
{
    /// <summary>
    /// A database at 0005 with a node and a live session on it is upgraded by 0006 (node drain): the node is not draining,
    /// can be drained, and is refused deletion while the session lives.
    /// </summary>
    [Fact]
    public async Task MigrateAsync_From0005WithLiveSession_NodeNotDrainingThenDrainableNotDeletable()
    {
        await using var db = await TestDatabase.CreateEmptyAsync("migrate_upgrade_0006");
        await ApplyUpToAsync(db, "0005_session_claim_seq");
        var customer = Guid.NewGuid();
        var nodeId = Guid.NewGuid();
        await using (var seed = db.DataSource.CreateCommand(Seed0002Sql))
        {
            seed.Parameters.AddWithValue("customer", customer);
            seed.Parameters.AddWithValue("device", Guid.NewGuid());
            seed.Parameters.AddWithValue("device_key", TestStack.NewKey());
            seed.Parameters.AddWithValue("node", nodeId);
            seed.Parameters.AddWithValue("node_key", TestStack.NewKey());
            seed.Parameters.AddWithValue("core", TestStack.DefaultCoreEndpoint);
            seed.Parameters.AddWithValue("session", Guid.NewGuid());
            seed.Parameters.AddWithValue("hash", RandomNumberGenerator.GetBytes(32));
            await seed.ExecuteNonQueryAsync(Ct);
        }

        var applied = await NewMigrator(db.DataSource).MigrateAsync(Ct);

        Assert.Equal(Migrator.Migrations.Count(m => string.CompareOrdinal(m.Version, "0005_session_claim_seq") > 0), applied);
        Assert.Equal(1L, await db.ScalarAsync<long>("select count(*) from vpn_nodes where not draining and not drain_migrate and draining_since is null"));
        await using var stack = await TestStack.StartAsync(StoreKind.InMemory, new Dictionary<string, string?>
        {
            ["DATABASE_URL"] = PostgresServer.ToUrl(db.ConnectionString),
        });
        var node = Assert.Single((await stack.SendJsonAsync(stack.Admin(HttpMethod.Get, "/v1/admin/nodes"), 200)).GetProperty("items").EnumerateArray());
        Assert.False(node.GetProperty("draining").GetBoolean());
        var drained = await stack.SendJsonAsync(stack.Admin(HttpMethod.Post, $"/v1/admin/nodes/{nodeId}/drain"), 200);
        Assert.True(drained.GetProperty("draining").GetBoolean());
        var refused = await stack.SendJsonAsync(stack.Admin(HttpMethod.Delete, $"/v1/admin/nodes/{nodeId}"), 409);
        Assert.Equal("node_not_empty", refused.GetProperty("code").GetString());
        await stack.SendJsonAsync(TestStack.AsCustomer(customer, HttpMethod.Get, "/v1/sessions/current"), 200);
    }
}
