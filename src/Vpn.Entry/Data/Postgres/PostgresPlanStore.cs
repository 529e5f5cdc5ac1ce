using Npgsql;
using Vpn.Entry.Subscriptions;

namespace Vpn.Entry.Data.Postgres;

public sealed class PostgresPlanStore(NpgsqlDataSource dataSource) : IPlanStore
{
    private const string UpsertPlanSql = """
        insert into plans (code, name, max_devices, allowed_regions, monthly_data_bytes) values (@code, @name, @max, @regions, @quota)
        on conflict (code) do update set name = excluded.name, max_devices = excluded.max_devices,
            allowed_regions = excluded.allowed_regions, monthly_data_bytes = excluded.monthly_data_bytes, updated_at = now()
        """;

    private const string ListPlansSql = "select code, name, max_devices, allowed_regions, monthly_data_bytes from plans order by code";

    // Serialize changes per customer on the customer row so two concurrent changes cannot both see "no open row".
    private const string LockCustomerSql = """
        insert into customers (id) values (@customer) on conflict (id) do nothing;
        select id from customers where id = @customer for update;
        """;

    private const string CloseOpenSql = "update customer_subscriptions set ended_at = @now where customer_id = @customer and ended_at is null";

    private const string OpenSql = """
        insert into customer_subscriptions (customer_id, plan_code, status, started_at) values (@customer, @plan, @status, @now)
        """;

    private const string LatestSql = """
        select s.customer_id, s.plan_code, s.status, p.max_devices, p.allowed_regions, s.started_at, s.ended_at
        from customer_subscriptions s join plans p on p.code = s.plan_code
        where s.customer_id = @customer
        order by (s.ended_at is null) desc, s.started_at desc, s.id desc
        limit 1
        """;

    public async Task<Plan> UpsertPlanAsync(Plan plan, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(plan);
        await using var command = dataSource.CreateCommand(UpsertPlanSql);
        command.Parameters.AddWithValue("code", plan.Code);
        command.Parameters.AddWithValue("name", plan.Name);
        command.Parameters.AddWithValue("max", plan.MaxDevices);
        command.Parameters.AddWithValue("regions", plan.AllowedRegions.ToArray());
        command.Parameters.AddWithValue("quota", NpgsqlTypes.NpgsqlDbType.Bigint, (object?)plan.MonthlyDataBytes ?? DBNull.Value);
        await command.ExecuteNonQueryAsync(cancellationToken);
        return plan;
    }

    public async Task<IReadOnlyList<Plan>> ListPlansAsync(CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(ListPlansSql);
        return await command.ReadAllAsync(reader => new Plan(reader.GetString(0), reader.GetString(1), reader.GetInt32(2), reader.GetFieldValue<string[]>(3),
            reader.IsDBNull(4) ? null : reader.GetInt64(4)),
            cancellationToken);
    }

    public async Task<Subscription?> SetSubscriptionAsync(Guid customerId, string planCode, string status, DateTimeOffset now, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await using (var exists = new NpgsqlCommand("select 1 from plans where code = @plan", connection, transaction))
        {
            exists.Parameters.AddWithValue("plan", planCode);
            if (await exists.ExecuteScalarAsync(cancellationToken) is null)
            {
                return null;
            }
        }
        await using (var lockCustomer = new NpgsqlCommand(LockCustomerSql, connection, transaction))
        {
            lockCustomer.Parameters.AddWithValue("customer", customerId);
            await lockCustomer.ExecuteNonQueryAsync(cancellationToken);
        }
        await using (var close = new NpgsqlCommand(CloseOpenSql, connection, transaction))
        {
            close.Parameters.AddWithValue("customer", customerId);
            close.Parameters.AddWithValue("now", now);
            await close.ExecuteNonQueryAsync(cancellationToken);
        }
        await using (var open = new NpgsqlCommand(OpenSql, connection, transaction))
        {
            open.Parameters.AddWithValue("customer", customerId);
            open.Parameters.AddWithValue("plan", planCode);
            open.Parameters.AddWithValue("status", status);
            open.Parameters.AddWithValue("now", now);
            await open.ExecuteNonQueryAsync(cancellationToken);
        }
        var subscription = await ReadLatestAsync(connection, transaction, customerId, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
        return subscription;
    }

    public async Task<Subscription?> GetSubscriptionAsync(Guid customerId, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        return await ReadLatestAsync(connection, null, customerId, cancellationToken);
    }

    private static async Task<Subscription?> ReadLatestAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, Guid customerId, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(LatestSql, connection, transaction);
        command.Parameters.AddWithValue("customer", customerId);
        return await command.ReadFirstOrDefaultAsync(ReadSubscription, cancellationToken);
    }

    // A subscription period: columns 0-6 in this order, here and in the reports (whose SequentialAccess readers must read them in order).
    internal static Subscription ReadSubscription(NpgsqlDataReader reader) =>
        new(reader.GetGuid(0), reader.GetString(1), reader.GetString(2), reader.GetInt32(3), reader.GetFieldValue<string[]>(4),
            reader.GetFieldValue<DateTimeOffset>(5), reader.IsDBNull(6) ? null : reader.GetFieldValue<DateTimeOffset>(6));
}
