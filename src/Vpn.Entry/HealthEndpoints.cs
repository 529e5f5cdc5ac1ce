using Microsoft.AspNetCore.Http.HttpResults;
using Npgsql;
using Vpn.Entry.Configuration;
using Vpn.Entry.Data;

namespace Vpn.Entry;

public sealed record HealthStatus(string Status);

public static class HealthEndpoints
{
    public static IEndpointRouteBuilder MapHealthEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/healthz", () => TypedResults.Ok(new HealthStatus("ok"))).WithTags("Service");

        // Ready when the store answers and the schema is current; never throws (an outage is a 503, not a 500).
        app.MapGet("/readyz", async Task<Results<Ok<HealthStatus>, JsonHttpResult<HealthStatus>>> (EntryOptions options, IServiceProvider services, CancellationToken ct) =>
        {
            if (options.DatabaseConnectionString is null)
            {
                return TypedResults.Ok(new HealthStatus("ready"));
            }
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
                timeout.CancelAfter(TimeSpan.FromSeconds(3));
                return await services.GetRequiredService<Migrator>().IsCurrentAsync(timeout.Token)
                    ? TypedResults.Ok(new HealthStatus("ready"))
                    : TypedResults.Json(new HealthStatus("migrations_pending"), statusCode: StatusCodes.Status503ServiceUnavailable);
            }
            catch (Exception e) when (e is NpgsqlException or OperationCanceledException or TimeoutException)
            {
                return TypedResults.Json(new HealthStatus("store_unavailable"), statusCode: StatusCodes.Status503ServiceUnavailable);
            }
        }).WithTags("Service");
        return app;
    }
}
