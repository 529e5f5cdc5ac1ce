using Microsoft.AspNetCore.Http.HttpResults;
using Vpn.Entry.Configuration;
using Vpn.Entry.Health;

namespace Vpn.Entry;

public sealed record HealthStatus(string Status);

public static class HealthEndpoints
{
    public static IEndpointRouteBuilder MapHealthEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/healthz", () => TypedResults.Ok(new HealthStatus("ok"))).WithTags("Service");

        // Ready when the store answers and the schema is current; never throws (an outage is a 503, not a 500).
        // The probe is shared with the store check of GET /v1/admin/readiness.
        app.MapGet("/readyz", async Task<Results<Ok<HealthStatus>, JsonHttpResult<HealthStatus>>> (EntryOptions options, IServiceProvider services, CancellationToken ct) =>
            await StoreReadinessCheck.ProbeAsync(options, services, StoreReadinessCheck.ProbeTimeout, ct) switch
            {
                StoreReadiness.MigrationsPending => TypedResults.Json(new HealthStatus("migrations_pending"), statusCode: StatusCodes.Status503ServiceUnavailable),
                StoreReadiness.Unreachable => TypedResults.Json(new HealthStatus("store_unavailable"), statusCode: StatusCodes.Status503ServiceUnavailable),
                _ => TypedResults.Ok(new HealthStatus("ready")),
            }).WithTags("Service");
        return app;
    }
}
