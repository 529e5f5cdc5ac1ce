using Vpn.Entry.Accounts;
using Vpn.Entry.Audit;
using Vpn.Entry.Data.InMemory;
using Vpn.Entry.Data.Postgres;
using Vpn.Entry.Devices;
using Vpn.Entry.Nodes;
using Vpn.Entry.Privacy;
using Vpn.Entry.Subscriptions;

namespace Vpn.Entry.Data;

public static class StoreServiceCollectionExtensions
{
    /// <summary>
    /// Every store the features use: PostgreSQL when DATABASE_URL is set, else the in-memory stores with the same
    /// invariants. Call after registering StartupTasks: hosted services start in registration order, and the revocation
    /// follower needs the tables that migrations at start create.
    /// </summary>
    public static IServiceCollection AddEntryStores(this IServiceCollection services, string? connectionString) =>
        connectionString is null ? services.AddInMemoryStores() : services.AddPostgresStores(connectionString);

    private static IServiceCollection AddPostgresStores(this IServiceCollection services, string connectionString)
    {
        // Every statement entry sends is one of a few dozen fixed texts: prepared once per physical connection, a start's
        // claim and activation skip parse and plan (unless DATABASE_URL sets a Max Auto Prepare of its own).
        var builder = new Npgsql.NpgsqlConnectionStringBuilder(connectionString);
        if (!builder.ConnectionString.Contains("Max Auto Prepare=", StringComparison.OrdinalIgnoreCase))
        {
            builder.MaxAutoPrepare = 64;
        }
        services.AddNpgsqlDataSource(builder.ConnectionString);
        services.AddSingleton<PostgresOutageRecovery>();
        services.AddSingleton<Migrator>();
        services.AddSingleton<IStoreSchema, PostgresStoreSchema>();
        services.AddSingleton<IPlanStore, PostgresPlanStore>();
        services.AddSingleton<Usage.IUsageStore, PostgresUsageStore>();
        services.AddSingleton<IDeviceStore, PostgresDeviceStore>();
        services.AddSingleton<PostgresNodeStore>();
        services.AddSingleton<INodeStore>(sp => sp.GetRequiredService<PostgresNodeStore>());
        services.AddSingleton<INodeSeeder>(sp => sp.GetRequiredService<PostgresNodeStore>());
        services.AddSingleton<ISessionStore, PostgresSessionStore>();
        services.AddSingleton<INodeDrainStore, PostgresNodeDrainStore>();
        services.AddSingleton<IIdempotencyStore, PostgresIdempotencyStore>();
        services.AddSingleton<ISubscriptionReportStore, PostgresSubscriptionReportStore>();
        services.AddAuditLog<PostgresAuditLog>();
        services.AddSingleton<IRetentionStore, PostgresRetentionStore>();
        services.AddSingleton<IPrivacyFactsStore, PostgresPrivacyFacts>();
        services.AddSingleton<IIdentityStore, PostgresIdentityStore>();
        services.AddSingleton<PostgresTokenRevocations>();
        services.AddSingleton<ITokenRevocations>(sp => sp.GetRequiredService<PostgresTokenRevocations>());
        services.AddHostedService(sp => sp.GetRequiredService<PostgresTokenRevocations>());
        services.AddSingleton<ICustomerErasureStore, PostgresCustomerErasureStore>();
        services.AddSingleton<INodeDirectory, NodeDirectory>();
        services.AddHostedService<PostgresNodeChangeListener>();
        services.AddSingleton<PostgresSessionEvents>();
        services.AddSingleton<ISessionEventStore>(sp => sp.GetRequiredService<PostgresSessionEvents>());
        services.AddHostedService(sp => sp.GetRequiredService<PostgresSessionEvents>());
        return services;
    }

    // One InMemoryDatabase under the plan, device, node and session stores; retention and erasure reach into the
    // other in-memory stores by their concrete types.
    private static IServiceCollection AddInMemoryStores(this IServiceCollection services)
    {
        services.AddSingleton<InMemoryDatabase>();
        services.AddSingleton<IStoreSchema, InMemoryStoreSchema>();
        services.AddSingleton<IPlanStore, InMemoryPlanStore>();
        services.AddSingleton<InMemoryUsageStore>();
        services.AddSingleton<Usage.IUsageStore>(sp => sp.GetRequiredService<InMemoryUsageStore>());
        services.AddSingleton<IDeviceStore, InMemoryDeviceStore>();
        services.AddSingleton<InMemoryNodeStore>();
        services.AddSingleton<INodeStore>(sp => sp.GetRequiredService<InMemoryNodeStore>());
        services.AddSingleton<INodeSeeder>(sp => sp.GetRequiredService<InMemoryNodeStore>());
        services.AddSingleton<ISessionStore, InMemorySessionStore>();
        services.AddSingleton<INodeDrainStore, InMemoryNodeDrainStore>();
        services.AddSingleton<InMemoryIdempotencyStore>();
        services.AddSingleton<IIdempotencyStore>(sp => sp.GetRequiredService<InMemoryIdempotencyStore>());
        services.AddSingleton<ISubscriptionReportStore, InMemorySubscriptionReportStore>();
        services.AddAuditLog<InMemoryAuditLog>();
        services.AddSingleton<IRetentionStore, InMemoryRetentionStore>();
        services.AddSingleton<IPrivacyFactsStore, InMemoryPrivacyFacts>();
        services.AddSingleton<InMemoryIdentityStore>();
        services.AddSingleton<IIdentityStore>(sp => sp.GetRequiredService<InMemoryIdentityStore>());
        services.AddSingleton<ITokenRevocations, InMemoryTokenRevocations>();
        services.AddSingleton<ICustomerErasureStore, InMemoryCustomerErasureStore>();
        services.AddSingleton<INodeDirectory, NodeDirectory>();
        services.AddSingleton<ISessionEventStore, InMemorySessionEvents>();
        return services;
    }

    /// <summary>The audit store, with every event also written to the log (people redacted as APP_LOG_REDACTION_MODE says).</summary>
    private static void AddAuditLog<TStore>(this IServiceCollection services) where TStore : class, IAuditLog
    {
        services.AddSingleton<TStore>();
        services.AddSingleton<IAuditLog>(sp => ActivatorUtilities.CreateInstance<LoggingAuditLog>(sp, sp.GetRequiredService<TStore>()));
    }
}
