using System.Data;
using System.Runtime.CompilerServices;
using Npgsql;
using Vpn.Entry.Subscriptions;

namespace Vpn.Entry.Data.Postgres;

/// <summary>
/// The admin reports over customer_subscriptions, one statement each. Open rows are reached through the partial
/// indexes of 0001: customer_subscriptions_one_open (customer_id) walks them in keyset order,
/// customer_subscriptions_open_listing (status, plan_code, customer_id) serves the filtered pages and counts, and
/// customer_subscriptions_history (customer_id, started_at, id) serves the history.
/// </summary>
public sealed class PostgresSubscriptionReportStore(NpgsqlDataSource dataSource) : ISubscriptionReportStore
{
    private const string CurrentColumns = """
        select s.customer_id, s.plan_code, s.status, p.max_devices, p.allowed_regions, s.started_at, s.ended_at, p.name
        from customer_subscriptions s join plans p on p.code = s.plan_code
        where s.ended_at is null
        """;

    // Only the predicates a request uses are sent: "(@x is null or …)" would let a cached generic plan ignore the indexes.
    private const string StatusPredicate = " and s.status = @status";
    private const string PlanPredicate = " and s.plan_code = @plan";
    private const string AfterPredicate = " and s.customer_id > @after";
    private const string OrderByCustomer = " order by s.customer_id";

    private const string CountSql = "select count(*) from customer_subscriptions s where s.ended_at is null";

    private const string HistorySql = """
        select s.customer_id, s.plan_code, s.status, p.max_devices, p.allowed_regions, s.started_at, s.ended_at
        from customer_subscriptions s join plans p on p.code = s.plan_code
        where s.customer_id = @customer
        order by s.started_at, s.id
        """;

    public async Task<IReadOnlyList<Subscription>> ListCurrentAsync(SubscriptionFilter filter, Guid? after, int limit, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(filter);
        await using var command = CurrentCommand(filter, after, " limit @limit");
        command.Parameters.AddWithValue("limit", limit);
        return await command.ReadAllAsync(PostgresPlanStore.ReadSubscription, cancellationToken);
    }

    public async Task<long> CountCurrentAsync(SubscriptionFilter filter, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(filter);
        await using var command = dataSource.CreateCommand(CountSql + FilterPredicates(filter));
        AddFilterParameters(command, filter);
        return (long)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    public async IAsyncEnumerable<SubscriptionExportRow> ExportCurrentAsync(SubscriptionFilter filter, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(filter);
        // Npgsql hands rows over as they arrive on the socket; with the reader pulled one row per write, the server
        // is paced by the HTTP client and the service holds one row and the socket buffers at a time.
        await using var command = CurrentCommand(filter, after: null, suffix: "");
        command.CommandTimeout = 0; // a long export is not a stuck one; the request's cancellation still stops it
        await using var reader = await command.ExecuteReaderAsync(CommandBehavior.SequentialAccess, cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            var subscription = PostgresPlanStore.ReadSubscription(reader);
            yield return new SubscriptionExportRow(subscription, reader.GetString(7));
        }
    }

    public async Task<IReadOnlyList<Subscription>> GetHistoryAsync(Guid customerId, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand(HistorySql);
        command.Parameters.AddWithValue("customer", customerId);
        return await command.ReadAllAsync(PostgresPlanStore.ReadSubscription, cancellationToken);
    }

    private NpgsqlCommand CurrentCommand(SubscriptionFilter filter, Guid? after, string suffix)
    {
        var command = dataSource.CreateCommand(CurrentColumns + FilterPredicates(filter) + (after is null ? "" : AfterPredicate) + OrderByCustomer + suffix);
        AddFilterParameters(command, filter);
        if (after is { } last)
        {
            command.Parameters.AddWithValue("after", last);
        }
        return command;
    }

    private static string FilterPredicates(SubscriptionFilter filter) =>
        (filter.Status is null ? "" : StatusPredicate) + (filter.PlanCode is null ? "" : PlanPredicate);

    private static void AddFilterParameters(NpgsqlCommand command, SubscriptionFilter filter)
    {
        if (filter.Status is { } status)
        {
            command.Parameters.AddWithValue("status", status);
        }
        if (filter.PlanCode is { } plan)
        {
            command.Parameters.AddWithValue("plan", plan);
        }
    }
}
