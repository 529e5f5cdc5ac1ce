using Vpn.Entry.Data.Postgres;
using Vpn.Entry.Devices;

namespace Vpn.Entry.Tests.Data;

/// <summary>
/// The races of the store contract made deterministic on PostgreSQL: the test holds the row lock a store serializes on
/// (the customer row for device registration, the node row for claims), starts twenty callers, waits until all of them
/// are queued on that lock, then lets go. Each caller must then see what the ones before it committed.
/// </summary>
public sealed class PostgresStoreLockTests
{
    private static readonly DateTimeOffset T0 = new(2030, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task CreateDevice_TwentyQueuedOnCustomerLockWithLimitFive_ExactlyFiveCreated()
    {
        await using var db = await TestDatabase.CreateMigratedAsync("devices_lock");
        var plans = new PostgresPlanStore(db.DataSource);
        var devices = new PostgresDeviceStore(db.DataSource);
        var customer = Guid.NewGuid();
        await plans.UpsertPlanAsync(new Plan("basic", "Basic", 5, ["eu-west"]), Ct);
        await plans.SetSubscriptionAsync(customer, "basic", "active", T0, Ct);

        var results = await RaceBehindRowLockAsync(db, "select 1 from customers where id = @id for update", customer, 20,
            i => devices.CreateAsync(new Device(Guid.NewGuid(), customer, $"device-{i}", WireGuardKey.Generate(), T0.AddSeconds(i)), 5, Ct));

        Assert.Equal(5, results.Count(r => r.Outcome == DeviceCreateOutcome.Created));
        Assert.Equal(5, await db.ScalarAsync<long>("select count(*) from devices where customer_id = @c", ("c", customer)));
    }

    [Fact]
    public async Task ClaimAsync_TwentyQueuedOnNodeLockWithCapacityFive_ExactlyFiveClaimed()
    {
        await using var db = await TestDatabase.CreateMigratedAsync("claims_lock");
        var plans = new PostgresPlanStore(db.DataSource);
        var devices = new PostgresDeviceStore(db.DataSource);
        var sessions = new PostgresSessionStore(db.DataSource);
        var (node, _) = await new PostgresNodeStore(db.DataSource).UpsertAsync(new NodeRegistration("node-a", "eu-west", "DE", "fra", "default",
            "203.0.113.7:51820", WireGuardKey.Generate().ToBase64(), "core.test:50051", 5), T0, Ct);
        await plans.UpsertPlanAsync(new Plan("basic", "Basic", 5, ["eu-west"]), Ct);
        var claims = new List<NewSession>();
        for (var i = 0; i < 20; i++)
        {
            var customer = Guid.NewGuid();
            await plans.SetSubscriptionAsync(customer, "basic", "active", T0, Ct);
            var device = new Device(Guid.NewGuid(), customer, "device", WireGuardKey.Generate(), T0);
            Assert.Equal(DeviceCreateOutcome.Created, (await devices.CreateAsync(device, 5, Ct)).Outcome);
            claims.Add(new NewSession(Guid.CreateVersion7(), customer, device.Id, device.PublicKey, node.Id, RandomNumberGenerator.GetBytes(32),
                "eu-west", "DE", "fra", "default", T0));
        }

        var results = await RaceBehindRowLockAsync(db, "select 1 from vpn_nodes where id = @id for update", node.Id, claims.Count,
            i => sessions.ClaimAsync(claims[i], replaceExisting: false, Ct));

        Assert.Equal(5, results.Count(r => r.Outcome == ClaimOutcome.Claimed));
        Assert.Equal(5, await db.ScalarAsync<long>(
            "select count(*) from sessions where node_id = @n and state in ('provisioning', 'active')", ("n", node.Id)));
    }

    /// <summary>Runs <paramref name="count"/> calls while a transaction holds <paramref name="lockSql"/>, released once all wait on a lock.</summary>
    private static async Task<T[]> RaceBehindRowLockAsync<T>(TestDatabase db, string lockSql, Guid id, int count, Func<int, Task<T>> call)
    {
        await using var gate = new NpgsqlConnection(db.ConnectionString);
        await gate.OpenAsync(Ct);
        await using var transaction = await gate.BeginTransactionAsync(Ct);
        await using (var hold = new NpgsqlCommand(lockSql, gate, transaction))
        {
            hold.Parameters.AddWithValue("id", id);
            await hold.ExecuteNonQueryAsync(Ct);
        }
        var calls = Enumerable.Range(0, count).Select(i => Task.Run(() => call(i))).ToArray();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        long waiting;
        do
        {
            await Task.Delay(20, Ct);
            // Not on the gate: inside a transaction pg_stat_activity is a snapshot taken at its first read.
            await using var probe = db.DataSource.CreateCommand(
                "select count(*) from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'");
            waiting = (long)(await probe.ExecuteScalarAsync(Ct))!;
        }
        while (waiting < count && DateTime.UtcNow < deadline && !calls.Any(c => c.IsCompleted));
        await transaction.CommitAsync(Ct);
        var results = await Task.WhenAll(calls);
        Assert.True(waiting == count, $"only {waiting} of {count} callers were queued on the lock");
        return results;
    }
}
