using Vpn.Entry.Audit;

namespace Vpn.Entry.Tests.Subscriptions;

/// <summary>Entitlements at every moment: downgrades and cancellations end the session and remove its peer, with an audit trail.</summary>
public abstract class EntitlementEnforcementTests(StoreKind store)
{
    [Theory]
    [InlineData("canceled")]
    [InlineData("past_due")]
    [InlineData("expired")]
    public async Task StatusChange_NotEntitled_TerminatesSessionAndRemovesPeer(string status)
    {
        await using var stack = await TestStack.StartAsync(store);
        var c = await stack.SeedCustomerAsync();
        await stack.SendJsonAsync(TestStack.AsCustomer(c.Id, HttpMethod.Post, "/v1/sessions", new { device_id = c.DeviceId, region = "eu-west" }), 201);
        Assert.Equal(1, await stack.CoreDataplane.CountPeersAsync(default));

        await stack.SendJsonAsync(stack.Admin(HttpMethod.Post, "/v1/admin/subscriptions", new { customer_id = c.Id, plan_code = "basic", status }), 200);

        await stack.SendJsonAsync(TestStack.AsCustomer(c.Id, HttpMethod.Get, "/v1/sessions/current"), 404);
        Assert.Equal(0, await stack.CoreDataplane.CountPeersAsync(default));
        var audit = await stack.EntryServices.GetRequiredService<IAuditLog>().RecentAsync(20, default);
        Assert.Contains(audit, e => e.Action == "session.terminated" && e.Details["reason"] == "subscription_" + status);
        Assert.Contains(audit, e => e.Action == "subscription.set" && e.Actor == "admin" && e.Subject == c.Id.ToString());
    }

    [Fact]
    public async Task StatusChange_StillEntitled_SessionKept()
    {
        await using var stack = await TestStack.StartAsync(store);
        var c = await stack.SeedCustomerAsync();
        await stack.SendJsonAsync(TestStack.AsCustomer(c.Id, HttpMethod.Post, "/v1/sessions", new { device_id = c.DeviceId, region = "eu-west" }), 201);

        await stack.SendJsonAsync(stack.Admin(HttpMethod.Post, "/v1/admin/subscriptions", new { customer_id = c.Id, plan_code = "basic", status = "trialing" }), 200);

        await stack.SendJsonAsync(TestStack.AsCustomer(c.Id, HttpMethod.Get, "/v1/sessions/current"), 200);
        Assert.Equal(1, await stack.CoreDataplane.CountPeersAsync(default));
    }

    [Fact]
    public async Task PlanDowngrade_DropsRegion_TerminatesOnlyAffectedSessions()
    {
        await using var stack = await TestStack.StartAsync(store);
        var inEu = await stack.SeedCustomerAsync();
        await stack.SendJsonAsync(stack.Admin(HttpMethod.Post, "/v1/admin/plans", new { code = "basic", name = "Basic", max_devices = 5, allowed_regions = new[] { "eu-west", "us-east" } }), 200);
        var inUs = await stack.SeedCustomerAsync(region: "us-east");
        await stack.SendJsonAsync(stack.Admin(HttpMethod.Post, "/v1/admin/plans", new { code = "basic", name = "Basic", max_devices = 5, allowed_regions = new[] { "eu-west", "us-east" } }), 200);
        await stack.SendJsonAsync(TestStack.AsCustomer(inEu.Id, HttpMethod.Post, "/v1/sessions", new { device_id = inEu.DeviceId, region = "eu-west" }), 201);
        await stack.SendJsonAsync(TestStack.AsCustomer(inUs.Id, HttpMethod.Post, "/v1/sessions", new { device_id = inUs.DeviceId, region = "us-east" }), 201);

        // The plan loses us-east: the us-east session ends, the eu-west one stays.
        await stack.SendJsonAsync(stack.Admin(HttpMethod.Post, "/v1/admin/plans", new { code = "basic", name = "Basic", max_devices = 5, allowed_regions = new[] { "EU-WEST" } }), 200);

        await stack.SendJsonAsync(TestStack.AsCustomer(inUs.Id, HttpMethod.Get, "/v1/sessions/current"), 404);
        await stack.SendJsonAsync(TestStack.AsCustomer(inEu.Id, HttpMethod.Get, "/v1/sessions/current"), 200);
        // Both regions' nodes are served by the same in-process core: one of the two peers remains.
        Assert.Equal(1, await stack.CoreDataplane.CountPeersAsync(default));
        var audit = await stack.EntryServices.GetRequiredService<IAuditLog>().RecentAsync(50, default);
        Assert.Single(audit, e => e.Action == "session.terminated" && e.Details["customer_id"] == inUs.Id.ToString());
        var region = await stack.SendJsonAsync(TestStack.AsCustomer(inUs.Id, HttpMethod.Post, "/v1/sessions", new { device_id = inUs.DeviceId, region = "us-east" }), 403);
        Assert.Equal("region_not_allowed", region.GetProperty("code").GetString());
    }

    [Fact]
    public async Task AdminChanges_WriteAuditEventsWithoutSecrets()
    {
        await using var stack = await TestStack.StartAsync(store);
        await stack.SeedCustomerAsync();
        var audit = await stack.EntryServices.GetRequiredService<IAuditLog>().RecentAsync(50, default);
        Assert.Contains(audit, e => e.Action == "plan.upserted" && e.Actor == "admin");
        Assert.Contains(audit, e => e.Action == "node.created" && e.Actor == "admin");
        Assert.DoesNotContain(audit, e => e.Details.Values.Any(v => v is not null && v.Contains(TestStack.AdminToken, StringComparison.Ordinal)));
    }
}

public sealed class InMemoryEntitlementEnforcementTests() : EntitlementEnforcementTests(StoreKind.InMemory);

public sealed class PostgresEntitlementEnforcementTests() : EntitlementEnforcementTests(StoreKind.Postgres);
