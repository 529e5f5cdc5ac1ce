namespace Vpn.Entry.Data.InMemory;

/// <summary>The in-memory store has no schema: nothing to migrate, always there.</summary>
public sealed class InMemoryStoreSchema : IStoreSchema
{
    public Task EnsureMigratedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task<StoreReadiness> CheckAsync(TimeSpan timeout, CancellationToken cancellationToken) => Task.FromResult(StoreReadiness.InMemory);
}
