using Vpn.Entry.Data.Postgres;
using Vpn.Entry.Devices;

namespace Vpn.Entry.Tests.Data;

/// <summary>
/// One pooled connection per store call: with a pool of four and sixteen times that many conflicting claims at once,
/// every claim answers (no pool timeout), each customer keeps exactly one live session, and losers learn the winner.
/// A claim that opened a second connection while holding its first would deadlock the pool: every connection in a claim,
/// each queued behind the node lock of one that waits for a fifth connection.
/// </summary>
public sealed class PostgresStorePoolTests
{
    private const int PoolSize = 4;
    private static readonly DateTimeOffset T0 = new(2030, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task ClaimAsync_SixteenTimesPoolSizeConflictingClaimsOnPoolOfFour_AllAnswerWithinBound()
    {
        await using var db = await TestDatabase.CreateMigratedAsync("claims_pool");
        var plans = new PostgresPlanStore(db.DataSource);
        var devices = new PostgresDeviceStore(db.DataSource);
        var (node, _) = await new PostgresNodeStore(db.DataSource).UpsertAsync(new NodeRegistration("node-a", "eu-west", "DE", "fra", "default",
            "203.0.113.7:51820", WireGuardKey.Generate().ToBase64(), "core.test:50051", 1000), T0, Ct);
        await plans.UpsertPlanAsync(new Plan("basic", "Basic", 5, ["eu-west"]), Ct);
        // Half the customers already have a live session (every claim conflicts), half have none (one claim wins).
        var customers = new List<(Guid Id, Device Device, Guid? Live)>();
        var setup = new PostgresSessionStore(db.DataSource);
        for (var i = 0; i < 16; i++)
        {
            var customer = Guid.NewGuid();
            await plans.SetSubscriptionAsync(customer, "basic", "active", T0, Ct);
            var device = new Device(Guid.NewGuid(), customer, "device", WireGuardKey.Generate(), T0);
            Assert.Equal(DeviceCreateOutcome.Created, (await devices.CreateAsync(device, 5, Ct)).Outcome);
            Guid? live = null;
            if (i % 2 == 0)
            {
                var existing = Claim(customer, device, node.Id);
                Assert.Equal(ClaimOutcome.Claimed, (await setup.ClaimAsync(existing, replaceExisting: false, Ct)).Outcome);
                live = existing.Id;
            }
            customers.Add((customer, device, live));
        }
        // The pool under test: four connections, and a wait for one bounded well below the test's bound.
        var small = new NpgsqlConnectionStringBuilder(db.ConnectionString) { MaxPoolSize = PoolSize, Timeout = 5 };
        await using var dataSource = NpgsqlDataSource.Create(small.ConnectionString);
        var sessions = new PostgresSessionStore(dataSource);

        var clock = Stopwatch.StartNew();
        var attempts = customers.SelectMany(c => Enumerable.Range(0, PoolSize).Select(_ => (Customer: c, Session: Claim(c.Id, c.Device, node.Id)))).ToList();
        var results = await Task.WhenAll(attempts.Select(a => Task.Run(async () =>
        {
            try
            {
                return (a.Customer, a.Session, Result: await sessions.ClaimAsync(a.Session, replaceExisting: false, Ct), Error: (Exception?)null);
            }
            catch (Exception e) when (e is NpgsqlException or TimeoutException or InvalidOperationException)
            {
                return (a.Customer, a.Session, Result: (ClaimResult?)null, Error: e);
            }
        }, Ct)));
        clock.Stop();

        var errors = results.Where(r => r.Error is not null).Select(r => $"{r.Error!.GetType().Name}: {r.Error.Message}").Distinct().ToList();
        Assert.True(errors.Count == 0, $"{results.Count(r => r.Error is not null)} of {results.Length} claims failed after {clock.Elapsed}: {string.Join("; ", errors)}");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"{results.Length} claims took {clock.Elapsed}");
        foreach (var group in results.GroupBy(r => r.Customer.Id))
        {
            var (_, _, live) = group.First().Customer;
            var winners = group.Where(r => r.Result!.Outcome == ClaimOutcome.Claimed).Select(r => r.Session.Id).ToList();
            Assert.Equal(live is null ? 1 : 0, winners.Count);
            var holder = live ?? winners[0];
            Assert.All(group.Where(r => r.Result!.Outcome != ClaimOutcome.Claimed), r =>
            {
                Assert.Equal(ClaimOutcome.Conflict, r.Result!.Outcome);
                Assert.Equal(holder, r.Result.ActiveSessionId);
            });
            Assert.Equal(1, await db.ScalarAsync<long>("select count(*) from sessions where customer_id = @c and state in ('provisioning', 'active')",
                ("c", group.Key)));
        }
    }

    private static NewSession Claim(Guid customer, Device device, Guid node) =>
        new(Guid.CreateVersion7(), customer, device.Id, device.PublicKey, node, RandomNumberGenerator.GetBytes(32), "eu-west", "DE", "fra", "default", T0);
}
