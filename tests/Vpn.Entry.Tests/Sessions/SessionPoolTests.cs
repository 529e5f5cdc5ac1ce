namespace Vpn.Entry.Tests.Sessions;

/// <summary>
/// Conflicting starts at pool-size concurrency through the whole request path on PostgreSQL: entry's pool cut to four
/// connections, four concurrent starts for each of eight customers. Every request answers 201 or 409 — none waits for a
/// connection until the pool's timeout (503) — within a bound.
/// </summary>
public sealed class SessionPoolTests
{
    private const int PoolSize = 4;

    [Fact]
    public async Task StartSession_FourConcurrentPerCustomerOnPoolOfFour_One201PerCustomerRest409No503()
    {
        await using var stack = await TestStack.StartAsync(StoreKind.Postgres, configureServices: services =>
            services.AddSingleton(sp => NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(sp.GetRequiredService<EntryOptions>().DatabaseConnectionString)
            {
                MaxPoolSize = PoolSize,
                Timeout = 5,
            }.ConnectionString)));
        var first = await stack.SeedCustomerAsync();
        var customers = new List<Customer> { first };
        for (var i = 1; i < 8; i++)
        {
            var id = Guid.NewGuid();
            await stack.SendJsonAsync(stack.Admin(HttpMethod.Post, "/v1/admin/subscriptions", new { customer_id = id, plan_code = "basic", status = "active" }), 200);
            var device = await stack.SendJsonAsync(TestStack.AsCustomer(id, HttpMethod.Post, "/v1/devices", new { name = "laptop", public_key = TestStack.NewKey() }), 201);
            customers.Add(new Customer(id, device.GetProperty("id").GetGuid(), first.NodeId));
        }

        for (var round = 0; round < 2; round++)
        {
            var clock = Stopwatch.StartNew();
            var answers = await Task.WhenAll(customers.SelectMany(c => Enumerable.Range(0, PoolSize).Select(async _ =>
            {
                using var response = await stack.Client.SendAsync(TestStack.AsCustomer(c.Id, HttpMethod.Post, "/v1/sessions",
                    new { device_id = c.DeviceId, region = "eu-west" }));
                return (Customer: c.Id, Status: (int)response.StatusCode, Body: await response.Content.ReadAsStringAsync());
            })));
            clock.Stop();

            var summary = $"round {round} in {clock.Elapsed}: " + string.Join(", ", answers.GroupBy(a => a.Status).Select(g => $"{g.Key}x{g.Count()} ({g.First().Body})"));
            Assert.True(answers.All(a => a.Status is 201 or 409), summary);
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), summary);
            // Round 0: one start per customer wins; round 1: every start conflicts with it.
            foreach (var group in answers.GroupBy(a => a.Customer))
            {
                var created = group.Count(a => a.Status == 201);
                Assert.True(created == (round == 0 ? 1 : 0), summary);
            }
        }
        foreach (var c in customers)
        {
            await stack.SendJsonAsync(TestStack.AsCustomer(c.Id, HttpMethod.Get, "/v1/sessions/current"), 200);
        }
        Assert.Equal(customers.Count, await stack.CoreDataplane.CountPeersAsync(default));
    }
}
