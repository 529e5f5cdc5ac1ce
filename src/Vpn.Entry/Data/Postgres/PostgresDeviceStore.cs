using Npgsql;
using Vpn.Domain.WireGuard;
using Vpn.Entry.Devices;

namespace Vpn.Entry.Data.Postgres;

public sealed class PostgresDeviceStore(NpgsqlDataSource dataSource) : IDeviceStore
{
    // The customer row lock serializes one customer's registrations so the count-then-insert holds the limit. The count
    // is its own statement: under READ COMMITTED it then sees every registration committed while we waited for the lock.
    private const string LockCustomerSql = """
        insert into customers (id) values (@customer) on conflict (id) do nothing;
        select id from customers where id = @customer for update;
        """;

    private const string CountSql = "select count(*) from devices where customer_id = @customer";

    private const string InsertSql = """
        insert into devices (id, customer_id, name, public_key, created_at) values (@id, @customer, @name, @key, @created)
        """;

    private const string ListSql = "select id, customer_id, name, public_key, created_at from devices where customer_id = @customer order by created_at, id";

    private const string GetSql = "select id, customer_id, name, public_key, created_at from devices where customer_id = @customer and id = @id";

    // The device row goes first: its delete waits for any in-flight session insert that references it (the foreign
    // key's share lock), so the terminate below sees that session. The key identifies the session once device_id is nulled.
    private const string TerminateDeviceSessionSql = $"""
        update sessions set state = 'terminated', terminated_at = @now, updated_at = @now, terminate_reason = 'device_deleted'
        where customer_id = @customer and device_public_key = @key and state in ('provisioning', 'active')
        returning {PostgresSessionStore.Columns}
        """;

    private const string DeleteSql = "delete from devices where customer_id = @customer and id = @id returning public_key";

    public async Task<DeviceCreateResult> CreateAsync(Device device, int maxDevices, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(device);
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await using (var lockCustomer = new NpgsqlCommand(LockCustomerSql, connection, transaction))
        {
            lockCustomer.Parameters.AddWithValue("customer", device.CustomerId);
            await lockCustomer.ExecuteNonQueryAsync(cancellationToken);
        }
        await using (var count = new NpgsqlCommand(CountSql, connection, transaction))
        {
            count.Parameters.AddWithValue("customer", device.CustomerId);
            if ((long)(await count.ExecuteScalarAsync(cancellationToken))! >= maxDevices)
            {
                return new DeviceCreateResult(DeviceCreateOutcome.LimitReached, null);
            }
        }
        try
        {
            await using var insert = new NpgsqlCommand(InsertSql, connection, transaction);
            insert.Parameters.AddWithValue("id", device.Id);
            insert.Parameters.AddWithValue("customer", device.CustomerId);
            insert.Parameters.AddWithValue("name", device.Name);
            insert.Parameters.AddWithValue("key", device.PublicKey.ToBase64());
            insert.Parameters.AddWithValue("created", device.CreatedAt);
            await insert.ExecuteNonQueryAsync(cancellationToken);
            await transaction.CommitAsync(cancellationToken);
            return new DeviceCreateResult(DeviceCreateOutcome.Created, device);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation)
        {
            return new DeviceCreateResult(DeviceCreateOutcome.KeyInUse, null);
        }
    }

    public async Task<IReadOnlyList<Device>> ListAsync(Guid customerId, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(ListSql);
        command.Parameters.AddWithValue("customer", customerId);
        return await command.ReadAllAsync(Read, cancellationToken);
    }

    public async Task<Device?> GetAsync(Guid customerId, Guid deviceId, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(GetSql);
        command.Parameters.AddWithValue("customer", customerId);
        command.Parameters.AddWithValue("id", deviceId);
        return await command.ReadFirstOrDefaultAsync(Read, cancellationToken);
    }

    public async Task<(bool Deleted, SessionRecord? TerminatedSession)> DeleteAsync(Guid customerId, Guid deviceId, DateTimeOffset now, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        string publicKey;
        await using (var delete = new NpgsqlCommand(DeleteSql, connection, transaction))
        {
            delete.Parameters.AddWithValue("customer", customerId);
            delete.Parameters.AddWithValue("id", deviceId);
            if (await delete.ExecuteScalarAsync(cancellationToken) is not string key)
            {
                return (false, null);
            }
            publicKey = key;
        }
        SessionRecord? terminated;
        await using (var terminate = new NpgsqlCommand(TerminateDeviceSessionSql, connection, transaction))
        {
            terminate.Parameters.AddWithValue("customer", customerId);
            terminate.Parameters.AddWithValue("key", publicKey);
            terminate.Parameters.AddWithValue("now", now);
            terminated = await terminate.ReadFirstOrDefaultAsync(PostgresSessionStore.Read, cancellationToken);
        }
        await transaction.CommitAsync(cancellationToken);
        return (true, terminated);
    }

    private static Device Read(NpgsqlDataReader reader) =>
        new(reader.GetGuid(0), reader.GetGuid(1), reader.GetString(2), WireGuardKey.ParseBase64(reader.GetString(3)), reader.GetFieldValue<DateTimeOffset>(4));
}
