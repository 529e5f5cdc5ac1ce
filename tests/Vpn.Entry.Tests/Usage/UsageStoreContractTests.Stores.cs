using Vpn.Entry.Data.InMemory;
using Vpn.Entry.Data.Postgres;
using Vpn.Entry.Tests.Data;

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
    protected override async Task<UsageStoreSet> CreateStoresAsync()
    {
        var database = await TestDatabase.CreateMigratedAsync("usage");
        var ds = database.DataSource;
        return new UsageStoreSet(new PostgresPlanStore(ds), new PostgresDeviceStore(ds), new PostgresNodeStore(ds), new PostgresSessionStore(ds),
            new PostgresUsageStore(ds), new PostgresCustomerErasureStore(ds),
            async customer => await database.ScalarAsync<int>("select count(*)::int from customer_usage where customer_id = @c", ("c", customer)),
            database.DisposeAsync);
    }
}
