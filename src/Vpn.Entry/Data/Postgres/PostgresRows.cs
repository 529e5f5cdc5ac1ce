using Npgsql;

namespace Vpn.Entry.Data.Postgres;

/// <summary>Runs a command and maps its rows with a store's row reader (columns by position, as the store's SQL lists them).</summary>
internal static class PostgresRows
{
    public static async Task<IReadOnlyList<T>> ReadAllAsync<T>(this NpgsqlCommand command, Func<NpgsqlDataReader, T> read,
        CancellationToken cancellationToken)
    {
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var rows = new List<T>();
        while (await reader.ReadAsync(cancellationToken))
        {
            rows.Add(read(reader));
        }
        return rows;
    }

    /// <summary>The first row mapped, or null when there is none.</summary>
    public static async Task<T?> ReadFirstOrDefaultAsync<T>(this NpgsqlCommand command, Func<NpgsqlDataReader, T> read,
        CancellationToken cancellationToken)
        where T : class
    {
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? read(reader) : null;
    }
}
