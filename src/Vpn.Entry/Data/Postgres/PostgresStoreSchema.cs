using Npgsql;

namespace Vpn.Entry.Data.Postgres;

/// <summary>The PostgreSQL schema through <see cref="Migrator"/>.</summary>
public sealed class PostgresStoreSchema(Migrator migrator) : IStoreSchema
{
    public async Task EnsureMigratedAsync(CancellationToken cancellationToken) => await migrator.MigrateAsync(cancellationToken);

    public async Task<StoreReadiness> CheckAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        try
        {
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            deadline.CancelAfter(timeout);
            return await migrator.IsCurrentAsync(deadline.Token)
                ? StoreReadiness.Current
                : StoreReadiness.MigrationsPending;
        }
        catch (Exception e) when (e is NpgsqlException or OperationCanceledException or TimeoutException)
        {
            return StoreReadiness.Unreachable;
        }
    }
}
