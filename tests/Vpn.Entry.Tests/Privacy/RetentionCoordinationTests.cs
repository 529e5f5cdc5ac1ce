using Vpn.Entry.Data.Postgres;
using Vpn.Entry.Tests.Data;

namespace Vpn.Entry.Tests.Privacy;

/// <summary>
/// Retention cleanup across replicas on one real PostgreSQL database: each "replica" is a store on a data source of its
/// own (its own pool, as two entry processes have). One pass runs at a time; the others skip theirs.
/// </summary>
public sealed class RetentionCoordinationTests
{
    private const int Ended = 12_000; // a few delete batches, so a pass takes a moment

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static readonly DateTimeOffset Now = DateTimeOffset.UtcNow;

    private static async Task SeedEndedSessionsAsync(TestDatabase db)
    {
        await using var seed = db.DataSource.CreateCommand("""
            insert into customers (id) values ('00000000-0000-4000-8000-000000000001');
            insert into vpn_nodes (id, name, region, capacity, public_endpoint, public_key, core_endpoint)
                values ('00000000-0000-4000-9000-000000000001', 'bulk-node', 'eu-west', 1000, '203.0.113.9:51820', 'bulk-key', 'core.test:50051');
            insert into sessions (id, customer_id, device_public_key, node_id, state, session_key_hash, region, created_at, terminated_at, updated_at)
                select gen_random_uuid(), '00000000-0000-4000-8000-000000000001', 'k', '00000000-0000-4000-9000-000000000001',
                    'terminated', sha256(('ended' || i)::bytea), 'eu-west', now() - interval '40 days', now() - interval '30 days', now() - interval '30 days'
                from generate_series(1, @n) i;
            """);
        seed.Parameters.AddWithValue("n", Ended);
        await seed.ExecuteNonQueryAsync(Ct);
    }

    private static Task<PurgeCounts?> PassAsync(PostgresRetentionStore store) =>
        store.PurgeAsync(Now - TimeSpan.FromDays(7), Now - TimeSpan.FromDays(90), Now, Ct);

    private static async Task AdvisoryLocksReleasedAsync(TestDatabase db)
    {
        for (var deadline = DateTime.UtcNow.AddSeconds(30); DateTime.UtcNow < deadline; await Task.Delay(20, Ct))
        {
            // This test's database only: the server is shared with other tests' databases (and their migrations' locks).
            if (await db.ScalarAsync<long>("select count(*) from pg_locks where locktype = 'advisory' and granted"
                + " and database = (select oid from pg_database where datname = current_database())") == 0)
            {
                return;
            }
        }
        throw new Xunit.Sdk.XunitException("The released holder's advisory lock was still granted after 30 s.");
    }

    private static async Task<NpgsqlConnection> HoldCleanupLockAsync(TestDatabase db)
    {
        // Unpooled: a session advisory lock outlives a pooled connection's Dispose (the pool keeps the backend).
        var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(db.ConnectionString) { Pooling = false }.ConnectionString);
        await connection.OpenAsync(Ct);
        await using var hold = new NpgsqlCommand("select pg_advisory_lock(@key)", connection);
        hold.Parameters.AddWithValue("key", PostgresRetentionStore.LockKey);
        await hold.ExecuteScalarAsync(Ct);
        return connection;
    }

    [Fact]
    public async Task Pass_WhileAnotherReplicasPassHoldsTheLock_SkipsAndDeletesNothing_ThenRunsOnceItIsFree()
    {
        await using var db = await TestDatabase.CreateMigratedAsync("retn_lock");
        await SeedEndedSessionsAsync(db);
        await using var replicaB = NpgsqlDataSource.Create(db.ConnectionString);
        var store = new PostgresRetentionStore(replicaB);

        await using (await HoldCleanupLockAsync(db))
        {
            Assert.Null(await PassAsync(store));
            Assert.Equal(Ended, await db.ScalarAsync<long>("select count(*) from sessions"));
        }
        // The holder's backend ends a moment after its connection closes (Terminate is not waited for): the lock is
        // free once it is gone from pg_locks, which a loaded machine can take a while to get to.
        await AdvisoryLocksReleasedAsync(db);

        Assert.Equal(new PurgeCounts(Ended, 0, 0), await PassAsync(store));
        Assert.Equal(0, await db.ScalarAsync<long>("select count(*) from sessions"));
        // The pass gave the lock back: no session of the server still holds it.
        Assert.Equal(0, await db.ScalarAsync<long>("select count(*) from pg_locks where locktype = 'advisory' and granted"));
    }

    [Fact]
    public async Task Pass_AfterTheHoldingReplicaDied_Runs()
    {
        await using var db = await TestDatabase.CreateMigratedAsync("retn_dead");
        await SeedEndedSessionsAsync(db);
        var holder = await HoldCleanupLockAsync(db);
        var holderPid = holder.ProcessID;
        var store = new PostgresRetentionStore(db.DataSource);
        Assert.Null(await PassAsync(store));

        // The replica holding it is killed mid-pass: its backend goes, and the lock with it.
        Assert.True(await db.ScalarAsync<bool>("select pg_terminate_backend(@pid)", ("pid", holderPid)));
        await holder.DisposeAsync();
        PurgeCounts? purged = null;
        for (var i = 0; i < 50 && purged is null; i++)
        {
            // pg_terminate_backend only signals; the backend's exit (and the lock's release) follows within moments.
            purged = await PassAsync(store);
            if (purged is null)
            {
                await Task.Delay(100, Ct);
            }
        }
        Assert.Equal(new PurgeCounts(Ended, 0, 0), purged);
    }

    [Fact]
    public async Task PassOfReplicaB_WhileReplicaAsPassIsDeleting_Skips_AndAsPassDeletesEverything()
    {
        await using var db = await TestDatabase.CreateMigratedAsync("retn_race");
        await SeedEndedSessionsAsync(db);
        await using var replicaA = NpgsqlDataSource.Create(db.ConnectionString);
        await using var replicaB = NpgsqlDataSource.Create(db.ConnectionString);

        // Every row locked by an open transaction: A's pass takes the cleanup lock and then waits in its first delete.
        await using var rowHolder = await db.DataSource.OpenConnectionAsync(Ct);
        await using var transaction = await rowHolder.BeginTransactionAsync(Ct);
        await using (var lockRows = new NpgsqlCommand("select id from sessions for update", rowHolder, transaction))
        {
            await lockRows.ExecuteNonQueryAsync(Ct);
        }
        var passA = PassAsync(new PostgresRetentionStore(replicaA));
        var waited = Stopwatch.StartNew();
        while (await db.ScalarAsync<long>("select count(*) from pg_locks where locktype = 'advisory' and granted") == 0)
        {
            Assert.True(waited.Elapsed < TimeSpan.FromSeconds(20), "replica A's pass never took the cleanup lock");
            Assert.False(passA.IsCompleted, "replica A's pass ended without waiting for the locked rows");
            await Task.Delay(20, Ct);
        }

        Assert.Null(await PassAsync(new PostgresRetentionStore(replicaB)));
        Assert.False(passA.IsCompleted);

        await transaction.CommitAsync(Ct);
        Assert.Equal(new PurgeCounts(Ended, 0, 0), await passA);
        Assert.Equal(0, await db.ScalarAsync<long>("select count(*) from sessions"));
    }
}
