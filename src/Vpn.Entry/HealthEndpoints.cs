using Microsoft.AspNetCore.Http.HttpResults;
using Vpn.Entry.Data;
using Vpn.Entry.Health;

namespace Vpn.Entry;

public sealed record HealthStatus(string Status);

public static class HealthEndpoints
{
    public static IEndpointRouteBuilder MapHealthEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/healthz", () => TypedResults.Ok(new HealthStatus("ok"))).WithTags("Service");

        // Ready when the store answers and the schema is current; never throws (an outage is a 503, not a 500).
        // The probe is shared with the store check of GET /v1/admin/readiness; unauthenticated callers share one
        // probe per second (ReadyzProbe), so hammering /readyz cannot turn into as many database round trips.
        app.MapGet("/readyz", async Task<Results<Ok<HealthStatus>, JsonHttpResult<HealthStatus>>> (ReadyzProbe probe, CancellationToken ct) =>
            await probe.ProbeAsync(ct) switch
            {
                StoreReadiness.MigrationsPending => TypedResults.Json(new HealthStatus("migrations_pending"), statusCode: StatusCodes.Status503ServiceUnavailable),
                StoreReadiness.Unreachable => TypedResults.Json(new HealthStatus("store_unavailable"), statusCode: StatusCodes.Status503ServiceUnavailable),
                _ => TypedResults.Ok(new HealthStatus("ready")),
            }).Produces<HealthStatus>(StatusCodes.Status503ServiceUnavailable).WithTags("Service");
        return app;
    }
}

/// <summary>
/// The store probe behind the unauthenticated GET /readyz, coalesced: at most one probe in flight, and its answer
/// reused for <see cref="MaxAge"/>. An orchestrator polls every few seconds, so it always sees a fresh answer; a flood of
/// requests costs one database round trip per second, not one each.
/// </summary>
public sealed class ReadyzProbe
{
    public static readonly TimeSpan MaxAge = TimeSpan.FromSeconds(1);

    private readonly Lock _gate = new();
    private readonly Func<Task<StoreReadiness>> _run;
    private readonly TimeProvider _time;
    private Task<StoreReadiness>? _probe;
    private long _startedAt;

    // Not the request's token: the probe is shared, and bounded by its own timeout (it never throws).
    public ReadyzProbe(IStoreSchema schema, TimeProvider time)
        : this(() => schema.CheckAsync(StoreReadinessCheck.ProbeTimeout, CancellationToken.None), time)
    {
    }

    internal ReadyzProbe(Func<Task<StoreReadiness>> run, TimeProvider time)
    {
        _run = run;
        _time = time;
    }

    public Task<StoreReadiness> ProbeAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            if (_probe is null || (_probe.IsCompleted && _time.GetElapsedTime(_startedAt) > MaxAge))
            {
                _startedAt = _time.GetTimestamp();
                _probe = _run();
            }
            return _probe.WaitAsync(cancellationToken);
        }
    }
}
