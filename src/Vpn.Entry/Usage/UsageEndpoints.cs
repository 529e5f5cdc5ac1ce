using Microsoft.AspNetCore.Http.HttpResults;
using Vpn.Contracts.Http;
using Vpn.Domain.Usage;
using Vpn.Entry.Audit;

namespace Vpn.Entry.Usage;

/// <summary>A customer's data use in its current billing period; LimitBytes null is an unlimited plan.</summary>
public sealed record UsageView(long UsedBytes, long? LimitBytes, DateTimeOffset PeriodStart, DateTimeOffset ResetsAt)
{
    public static UsageView From(DataUsage usage)
    {
        ArgumentNullException.ThrowIfNull(usage);
        return new(usage.UsedBytes, usage.LimitBytes, usage.Period.Start, usage.Period.End);
    }
}

/// <summary>
/// Core's counter reports (internal), and the operator's view and reset of a customer's use. The customer's own view is
/// in GET /v1/me.
/// </summary>
public static class UsageEndpoints
{
    public static IEndpointRouteBuilder MapUsageEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGroup("/v1/internal/nodes").RequireAdmin().WithTags("Nodes").MapPost("/{node_id}/usage", async Task<NoContent> (string node_id, NodeUsageReportDto request, QuotaEnforcer enforcer,
            CancellationToken ct) =>
        {
            var nodeId = Guid.TryParseExact(node_id, "D", out var id) ? id : throw ApiProblemException.NotFound(ErrorCodes.NodeNotFound, "No such node.");
            await enforcer.RecordAsync(nodeId, Read(request), ct);
            return TypedResults.NoContent();
        });

        var customers = app.MapGroup("/v1/admin/customers").RequireAdmin().WithTags("Customers");
        customers.MapGet("/{customer_id}/usage", async Task<Ok<UsageView>> (string customer_id, IUsageStore usage, TimeProvider time, CancellationToken ct) =>
            TypedResults.Ok(UsageView.From(await usage.GetAsync(CustomerId(customer_id), time.GetUtcNow(), ct))));

        customers.MapPost("/{customer_id}/usage/reset", async Task<Ok<UsageView>> (string customer_id, IUsageStore usage, IAuditLog audit,
            TimeProvider time, CancellationToken ct) =>
        {
            var customerId = CustomerId(customer_id);
            var after = await usage.ResetAsync(customerId, time.GetUtcNow(), ct);
            await audit.WriteAsync(new AuditEvent(time.GetUtcNow(), "admin", "usage.reset", customerId.ToString(),
                new Dictionary<string, string?> { ["period_start"] = after.Period.Start.ToString("O", System.Globalization.CultureInfo.InvariantCulture) }), ct);
            return TypedResults.Ok(UsageView.From(after));
        });
        return app;
    }

    private static Guid CustomerId(string text) =>
        Guid.TryParseExact(text, "D", out var id) ? id : throw ApiProblemException.BadRequest("'customer_id' must be a UUID.");

    /// <summary>The whole report checked before any of it is recorded: one bad entry refuses it all.</summary>
    private static List<SessionCounters> Read(NodeUsageReportDto request)
    {
        var entries = request.Sessions ?? throw ApiProblemException.BadRequest("'sessions' is required.");
        if (entries.Count > NodeUsageReportDto.MaxSessions)
        {
            throw ApiProblemException.BadRequest($"'sessions' holds at most {NodeUsageReportDto.MaxSessions} entries per report.");
        }
        var counters = new List<SessionCounters>(entries.Count);
        var seen = new HashSet<Guid>();
        foreach (var entry in entries)
        {
            if (entry is null)
            {
                throw ApiProblemException.BadRequest("'sessions[]' entries must be objects.");
            }
            var sessionId = Validation.RequireGuid(entry.SessionId, "sessions[].session_id");
            if (!seen.Add(sessionId))
            {
                throw ApiProblemException.BadRequest("'sessions' names a session more than once.");
            }
            counters.Add(new SessionCounters(sessionId,
                Validation.RequireRange(entry.Generation, "sessions[].generation", 1, long.MaxValue),
                Validation.RequireRange(entry.RxBytes, "sessions[].rx_bytes", 0, long.MaxValue),
                Validation.RequireRange(entry.TxBytes, "sessions[].tx_bytes", 0, long.MaxValue)));
        }
        return counters;
    }
}
