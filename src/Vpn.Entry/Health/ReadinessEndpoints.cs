using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Vpn.Entry.Health;

/// <summary>
/// GET /v1/admin/readiness: whether this replica can serve customers end to end, check by check. Unlike /readyz (the
/// orchestrator's probe: store only), it looks at sign-in, nodes and their cores too, so it is for operators, not for
/// taking a replica out of rotation.
/// </summary>
public static class ReadinessEndpoints
{
    public static IEndpointRouteBuilder MapReadinessEndpoints(this IEndpointRouteBuilder app)
    {
        var admin = app.MapGroup("/v1/admin").RequireAdmin().WithTags("Service");

        // The same body either way: a 503 here is a report, not a problem with the request.
        admin.MapGet("/readiness", async Task<Results<Ok<ReadinessReport>, JsonHttpResult<ReadinessReport>>> (ReadinessProbe probe, CancellationToken ct) =>
        {
            var report = await probe.RunAsync(ct);
            return report.Ready ? TypedResults.Ok(report) : TypedResults.Json(report, statusCode: StatusCodes.Status503ServiceUnavailable);
        }).Produces<ReadinessReport>(StatusCodes.Status503ServiceUnavailable);

        return app;
    }
}

public static class ReadinessServiceCollectionExtensions
{
    /// <summary>The probe and the built-in checks, in the order they are reported. Another feature adds its own with TryAddEnumerable.</summary>
    public static IServiceCollection AddReadinessChecks(this IServiceCollection services)
    {
        services.TryAddSingleton<ReadinessProbe>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IReadinessCheck, StoreReadinessCheck>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IReadinessCheck, RevocationListReadinessCheck>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IReadinessCheck, SignInReadinessCheck>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IReadinessCheck, NodesReadinessCheck>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IReadinessCheck, CoresReadinessCheck>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IReadinessCheck, CoreTlsReadinessCheck>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IReadinessCheck, PrivacyReadinessCheck>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IReadinessCheck, ConnectionBudgetReadinessCheck>());
        return services;
    }
}
