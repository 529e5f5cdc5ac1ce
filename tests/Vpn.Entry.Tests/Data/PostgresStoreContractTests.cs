using Vpn.Entry.Data.Postgres;

namespace Vpn.Entry.Tests.Data;

/// <summary>The store contract on the PostgreSQL stores, each test on its own copy of a migrated template database.</summary>
public sealed class PostgresStoreContractTests : StoreContractTests
{
    private TestDatabase? _database;

    private TestDatabase Database => _database ?? throw new InvalidOperationException("CreateStoresAsync first.");

    protected override async Task<StoreSet> CreateStoresAsync()
    {
        var database = await TestDatabase.CreateMigratedAsync("stores");
        _database = database;
        var ds = database.DataSource;
        return new StoreSet(new PostgresPlanStore(ds), new PostgresDeviceStore(ds), new PostgresNodeStore(ds), new PostgresSessionStore(ds),
            database.DisposeAsync) { NodeDrains = new PostgresNodeDrainStore(ds) };
    }

    protected override async Task<IReadOnlyList<SubscriptionPeriod>?> ReadSubscriptionHistoryAsync(Guid customerId)
    {
        await using var command = Database.DataSource.CreateCommand(
            "select plan_code, started_at, ended_at from customer_subscriptions where customer_id = @c order by id");
        command.Parameters.AddWithValue("c", customerId);
        await using var reader = await command.ExecuteReaderAsync(TestContext.Current.CancellationToken);
        var periods = new List<SubscriptionPeriod>();
        while (await reader.ReadAsync(TestContext.Current.CancellationToken))
        {
            periods.Add(new SubscriptionPeriod(reader.GetString(0), reader.GetFieldValue<DateTimeOffset>(1),
                reader.IsDBNull(2) ? null : reader.GetFieldValue<DateTimeOffset>(2)));
        }
        return periods;
    }

    protected override async Task<long?> CountOpenSubscriptionPeriodsAsync(Guid customerId) =>
        await Database.ScalarAsync<long>("select count(*) from customer_subscriptions where customer_id = @c and ended_at is null", ("c", customerId));
}
