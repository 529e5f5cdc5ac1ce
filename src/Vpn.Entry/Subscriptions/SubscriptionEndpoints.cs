using System.ComponentModel.DataAnnotations;
using Microsoft.AspNetCore.Http.HttpResults;
using Vpn.Domain.Subscriptions;
using Vpn.Entry.Audit;

namespace Vpn.Entry.Subscriptions;

public sealed record UpsertPlanRequest([property: Required] string? Code, [property: Required] string? Name, [property: Required] int? MaxDevices,
    [property: Required] IReadOnlyList<string>? AllowedRegions, long? MonthlyDataBytes = null);

public sealed record SetSubscriptionRequest([property: Required] string? CustomerId, [property: Required] string? PlanCode, [property: Required] string? Status);

public sealed record PlanList(IReadOnlyList<Plan> Items);

public static class SubscriptionEndpoints
{
    /// <summary>1 PiB: far beyond any month of one customer's traffic, far below where a running total could overflow.</summary>
    public const long MaxMonthlyDataBytes = 1L << 50;

    public static IEndpointRouteBuilder MapSubscriptionEndpoints(this IEndpointRouteBuilder app)
    {
        var plans = app.MapGroup("/v1/admin/plans").RequireAdmin().WithTags("Plans");

        plans.MapGet("/", async Task<Ok<PlanList>> (IPlanStore store, CancellationToken ct) => TypedResults.Ok(new PlanList(await store.ListPlansAsync(ct))));

        plans.MapPost("/", async Task<Ok<Plan>> (UpsertPlanRequest request, IPlanStore store, EntitlementEnforcer enforcer, IAuditLog audit,
            TimeProvider time, CancellationToken ct) =>
        {
            var regions = request.AllowedRegions ?? throw ApiProblemException.BadRequest("'allowed_regions' is required.");
            if (regions.Count > 100)
            {
                throw ApiProblemException.BadRequest("'allowed_regions' holds at most 100 regions.");
            }
            var plan = new Plan(
                Validation.RequireCode(request.Code, "code"),
                Validation.RequireText(request.Name, "name", 200),
                Validation.RequireRange(request.MaxDevices, "max_devices", 0, 1000),
                [.. regions.Select(r => Validation.RequireCode(r, "allowed_regions[]")).Distinct(StringComparer.OrdinalIgnoreCase)],
                request.MonthlyDataBytes is null ? null : Validation.RequireRange(request.MonthlyDataBytes, "monthly_data_bytes", 1, MaxMonthlyDataBytes));
            var saved = await store.UpsertPlanAsync(plan, ct);
            await audit.WriteAsync(new AuditEvent(time.GetUtcNow(), "admin", "plan.upserted", saved.Code, new Dictionary<string, string?>
            {
                ["max_devices"] = saved.MaxDevices.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["allowed_regions"] = string.Join(',', saved.AllowedRegions),
                ["monthly_data_bytes"] = saved.MonthlyDataBytes?.ToString(System.Globalization.CultureInfo.InvariantCulture),
            }), ct);
            await enforcer.AfterPlanChangeAsync(saved, ct);
            return TypedResults.Ok(saved);
        });

        var subscriptions = app.MapGroup("/v1/admin/subscriptions").RequireAdmin().WithTags("Subscriptions");

        subscriptions.MapPost("/", async Task<Ok<Subscription>> (SetSubscriptionRequest request, IPlanStore store, EntitlementEnforcer enforcer,
            IAuditLog audit, TimeProvider time, CancellationToken ct) =>
        {
            var customerId = Validation.RequireGuid(request.CustomerId, "customer_id");
            var planCode = Validation.RequireCode(request.PlanCode, "plan_code");
            var status = Validation.Require(request.Status, "status");
            if (!SubscriptionStatus.IsKnown(status))
            {
                throw ApiProblemException.BadRequest($"'status' must be one of {string.Join(", ", SubscriptionStatus.All)}.");
            }
            var subscription = await store.SetSubscriptionAsync(customerId, planCode, status, time.GetUtcNow(), ct)
                ?? throw ApiProblemException.NotFound(ErrorCodes.PlanNotFound, "No such plan.");
            await audit.WriteAsync(new AuditEvent(time.GetUtcNow(), "admin", "subscription.set", customerId.ToString(),
                new Dictionary<string, string?> { ["plan_code"] = planCode, ["status"] = status }), ct);
            await enforcer.AfterSubscriptionChangeAsync(subscription, ct);
            return TypedResults.Ok(subscription);
        });

        subscriptions.MapGet("/{customer_id}", async Task<Ok<Subscription>> (string customer_id, IPlanStore store, CancellationToken ct) =>
        {
            var customerId = Guid.TryParseExact(customer_id, "D", out var id) ? id : throw ApiProblemException.BadRequest("'customer_id' must be a UUID.");
            return TypedResults.Ok(await store.GetSubscriptionAsync(customerId, ct)
                ?? throw ApiProblemException.NotFound(ErrorCodes.SubscriptionNotFound, "The customer has no subscription."));
        });

        return app;
    }
}
