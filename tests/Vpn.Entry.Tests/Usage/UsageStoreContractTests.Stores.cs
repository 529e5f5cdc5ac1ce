using Vpn.Entry.Data.InMemory;
using Vpn.Entry.Data.Postgres;
using Vpn.Entry.Tests.Data;
using Vpn.Entry.Usage;

namespace Vpn.Entry.Tests.Usage;

/// <summary>The usage contract on the in-memory store.</summary>
public sealed class InMemoryUsageStoreContractTests : UsageStoreContractTests
{
    protected override Task<UsageStoreSet> CreateStoresAsync()
    {
        var stores = new InMemoryStores();
        var db = stores.Database;
        var erasure = new InMemoryCustomerErasureStore(db, new InMemoryIdentityStore(), new InMemoryIdempotencyStore(TimeProvider.System), new InMemoryAuditLog());
        return Task.FromResult(new UsageStoreSet(stores.Plans, stores.Devices, stores.Nodes, stores.Sessions, new InMemoryUsageStore(db), erasure,
            customer =>
            {
                lock (db.Gate)
                {
                    return Task.FromResult(db.Usage.Keys.Count(k => k.CustomerId == customer));
                }
            }));
    }
}

/// <summary>The usage contract on the PostgreSQL stores (record_node_usage), each test on its own migrated database.</summary>
public sealed class PostgresUsageStoreContractTests : UsageStoreContractTests
{
    private TestDatabase? _database;

    protected override async Task<UsageStoreSet> CreateStoresAsync()
    {
        var database = await TestDatabase.CreateMigratedAsync("usage");
        _database = database;
        var ds = database.DataSource;
        return new UsageStoreSet(new PostgresPlanStore(ds), new PostgresDeviceStore(ds), new PostgresNodeStore(ds), new PostgresSessionStore(ds),
            new PostgresUsageStore(ds), new PostgresCustomerErasureStore(ds),
            async customer => await database.ScalarAsync<int>("select count(*)::int from customer_usage where customer_id = @c", ("c", customer)),
            database.DisposeAsync);
    }

    [Fact]
    public async Task Retention_APeriodsTotalGoesSeventyDaysAfterTheDayOfItsLastUpdate()
    {
        await using var s = await CreateStoresAsync();
        var live = await NewLiveAsync(s);
        await RecordAsync(s, live, 1, 100, 0, T0.AddMinutes(5));
        // Kept as the day only (a total says how much, not when the customer was last online).
        var updatedAt = new DateTimeOffset(T0.UtcDateTime.Date, TimeSpan.Zero);
        var retention = new PostgresRetentionStore(_database!.DataSource);
        var longAgo = T0.AddYears(-10);

        Assert.NotNull(await retention.PurgeAsync(longAgo, longAgo, updatedAt + UsageRetention.KeptFor, Ct));
        Assert.Equal(1, await s.CountUsageRows(live.Customer));
        Assert.NotNull(await retention.PurgeAsync(longAgo, longAgo, updatedAt + UsageRetention.KeptFor + TimeSpan.FromSeconds(1), Ct));
        Assert.Equal(0, await s.CountUsageRows(live.Customer));
    }
}
