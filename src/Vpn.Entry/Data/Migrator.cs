using System.Reflection;
using Npgsql;

namespace Vpn.Entry.Data;

/// <summary>
/// Applies the numbered SQL files embedded from db/migrations in order, each in its own transaction, under a
/// session advisory lock so concurrent runs (replicas, a migration job) never collide. A no-op when current.
/// </summary>
public sealed partial class Migrator(NpgsqlDataSource dataSource, ILogger<Migrator> logger)
{
    // Arbitrary constant shared by every entry binary: "vpn-migr" in ASCII.
    private const long AdvisoryLockKey = 0x76706e2d6d696772;

    public static IReadOnlyList<(string Version, string Sql)> Migrations { get; } = LoadEmbedded();

    public static string LatestVersion => Migrations[^1].Version;

    public async Task<int> MigrateAsync(CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using (var lockCommand = new NpgsqlCommand("select pg_advisory_lock(@key)", connection))
        {
            lockCommand.Parameters.AddWithValue("key", AdvisoryLockKey);
            await lockCommand.ExecuteNonQueryAsync(cancellationToken);
        }
        try
        {
            await using (var create = new NpgsqlCommand(
                "create table if not exists schema_migrations (version text primary key, applied_at timestamptz not null default now())", connection))
            {
                await create.ExecuteNonQueryAsync(cancellationToken);
            }
            var applied = new HashSet<string>(StringComparer.Ordinal);
            await using (var read = new NpgsqlCommand("select version from schema_migrations", connection))
            await using (var reader = await read.ExecuteReaderAsync(cancellationToken))
            {
                while (await reader.ReadAsync(cancellationToken))
                {
                    applied.Add(reader.GetString(0));
                }
            }
            var count = 0;
            foreach (var (version, sql) in Migrations)
            {
                if (applied.Contains(version))
                {
                    continue;
                }
                await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
                await using (var apply = new NpgsqlCommand(sql, connection, transaction))
                {
                    await apply.ExecuteNonQueryAsync(cancellationToken);
                }
                await using (var record = new NpgsqlCommand("insert into schema_migrations (version) values (@v)", connection, transaction))
                {
                    record.Parameters.AddWithValue("v", version);
                    await record.ExecuteNonQueryAsync(cancellationToken);
                }
                await transaction.CommitAsync(cancellationToken);
                LogApplied(logger, version);
                count++;
            }
            return count;
        }
        finally
        {
            await using var unlock = new NpgsqlCommand("select pg_advisory_unlock(@key)", connection);
            unlock.Parameters.AddWithValue("key", AdvisoryLockKey);
            await unlock.ExecuteNonQueryAsync(CancellationToken.None);
        }
    }

    /// <summary>True when every embedded migration is recorded as applied.</summary>
    public async Task<bool> IsCurrentAsync(CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(
            "select count(*) from schema_migrations where version = any(@versions)");
        command.Parameters.AddWithValue("versions", Migrations.Select(m => m.Version).ToArray());
        try
        {
            var count = (long)(await command.ExecuteScalarAsync(cancellationToken))!;
            return count == Migrations.Count;
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UndefinedTable)
        {
            return false;
        }
    }

    private static List<(string Version, string Sql)> LoadEmbedded()
    {
        var assembly = Assembly.GetExecutingAssembly();
        var list = new List<(string, string)>();
        foreach (var name in assembly.GetManifestResourceNames().Where(n => n.StartsWith("migrations/", StringComparison.Ordinal)).Order(StringComparer.Ordinal))
        {
            using var stream = assembly.GetManifestResourceStream(name)!;
            using var reader = new StreamReader(stream);
            list.Add((Path.GetFileNameWithoutExtension(name), reader.ReadToEnd()));
        }
        if (list.Count == 0)
        {
            throw new InvalidOperationException("No migrations embedded in the entry binary.");
        }
        return list;
    }

    [LoggerMessage(EventId = 100, Level = LogLevel.Information, Message = "Applied migration {Version}")]
    private static partial void LogApplied(ILogger logger, string version);
}
