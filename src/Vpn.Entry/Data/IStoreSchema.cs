namespace Vpn.Entry.Data;

public enum StoreReadiness
{
    /// <summary>No DATABASE_URL: the in-memory store, always there.</summary>
    InMemory,
    Current,
    MigrationsPending,
    Unreachable,
}

/// <summary>The store's schema: migrated at start (development) and probed by GET /readyz and the <c>store</c> readiness check.</summary>
public interface IStoreSchema
{
    /// <summary>Applies pending migrations (APP_MIGRATE_ON_START); nothing to do in memory.</summary>
    Task EnsureMigratedAsync(CancellationToken cancellationToken);

    /// <summary>Whether the store answers within <paramref name="timeout"/> with every migration applied. Never throws: an outage is <see cref="StoreReadiness.Unreachable"/>.</summary>
    Task<StoreReadiness> CheckAsync(TimeSpan timeout, CancellationToken cancellationToken);
}
