using Vpn.Entry.Data;

namespace Vpn.Entry.Health;

/// <summary><c>connection_budget</c>: APP_ENTRY_REPLICAS × APP_DB_POOL_SIZE + APP_DB_RESERVED_CONNECTIONS fits in <c>max_connections</c>.</summary>
public sealed class ConnectionBudgetReadinessCheck(ConnectionBudget budget, EntryOptions options) : IReadinessCheck
{
    public string Name => "connection_budget";

    public async Task<ReadinessCheckResult> RunAsync(CancellationToken cancellationToken)
    {
        if (options.DatabaseConnectionString is null)
        {
            return ReadinessCheckResult.Pass("in-memory store (no DATABASE_URL)");
        }
        if (!budget.IsChecked)
        {
            return ReadinessCheckResult.Pass($"not checked (APP_DB_CHECK_BUDGET=false): {options.DatabasePool.Describe()}");
        }
        var verdict = (await budget.CheckAsync(cancellationToken))!;
        return new ReadinessCheckResult(verdict.Fits, verdict.Detail);
    }
}
