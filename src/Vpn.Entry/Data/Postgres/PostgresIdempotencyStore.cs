using Npgsql;

namespace Vpn.Entry.Data.Postgres;

public sealed class PostgresIdempotencyStore(NpgsqlDataSource dataSource) : IIdempotencyStore
{
    private static readonly TimeSpan Retention = TimeSpan.FromHours(24);

    // The primary key (customer_id, key) decides which of several concurrent first uses runs the request.
    private const string BeginSql = """
        insert into customers (id) values (@customer) on conflict (id) do nothing;
        delete from idempotency_keys where customer_id = @customer and key = @key
            and (expires_at < @now or (state = 'pending' and created_at < @abandoned));
        insert into idempotency_keys (customer_id, key, request_hash, state, created_at, expires_at)
        values (@customer, @key, @hash, 'pending', @now, @expires) on conflict (customer_id, key) do nothing;
        """;

    private const string ReadSql = """
        select request_hash, state, response_status, response_body from idempotency_keys where customer_id = @customer and key = @key
        """;

    private const string CompleteSql = """
        update idempotency_keys set state = 'completed', response_status = @status, response_body = @body
        where customer_id = @customer and key = @key
        """;

    private const string ReleaseSql = "delete from idempotency_keys where customer_id = @customer and key = @key and state = 'pending'";

    public async Task<IdempotencyResult> BeginAsync(Guid customerId, string key, byte[] requestHash, DateTimeOffset now, TimeSpan abandonAfter,
        CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using (var begin = new NpgsqlBatch(connection))
        {
            foreach (var sql in BeginSql.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                var command = new NpgsqlBatchCommand(sql);
                command.Parameters.AddWithValue("customer", customerId);
                command.Parameters.AddWithValue("key", key);
                command.Parameters.AddWithValue("hash", requestHash);
                command.Parameters.AddWithValue("now", now);
                command.Parameters.AddWithValue("expires", now + Retention);
                command.Parameters.AddWithValue("abandoned", now - abandonAfter);
                begin.BatchCommands.Add(command);
            }
            await begin.ExecuteNonQueryAsync(cancellationToken);
            // The last statement is the insert: one row means this request owns the key.
            if (begin.BatchCommands[^1].RecordsAffected == 1)
            {
                return new IdempotencyResult(IdempotencyOutcome.Started);
            }
        }
        await using var read = new NpgsqlCommand(ReadSql, connection);
        read.Parameters.AddWithValue("customer", customerId);
        read.Parameters.AddWithValue("key", key);
        await using var row = await read.ExecuteReaderAsync(cancellationToken);
        if (!await row.ReadAsync(cancellationToken))
        {
            // Released between our insert attempt and this read: let the caller try again.
            return new IdempotencyResult(IdempotencyOutcome.InProgress);
        }
        if (!row.GetFieldValue<byte[]>(0).AsSpan().SequenceEqual(requestHash))
        {
            return new IdempotencyResult(IdempotencyOutcome.Mismatch);
        }
        return row.GetString(1) == "completed"
            ? new IdempotencyResult(IdempotencyOutcome.Replay, row.GetInt32(2), row.GetString(3))
            : new IdempotencyResult(IdempotencyOutcome.InProgress);
    }

    public async Task CompleteAsync(Guid customerId, string key, int status, string body, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(CompleteSql);
        command.Parameters.AddWithValue("customer", customerId);
        command.Parameters.AddWithValue("key", key);
        command.Parameters.AddWithValue("status", status);
        command.Parameters.AddWithValue("body", body);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    public async Task ReleaseAsync(Guid customerId, string key, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(ReleaseSql);
        command.Parameters.AddWithValue("customer", customerId);
        command.Parameters.AddWithValue("key", key);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }
}
