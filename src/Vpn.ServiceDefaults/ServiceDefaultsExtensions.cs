using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Vpn.ServiceDefaults;

/// <summary>
/// What both services set up the same way (as eShop's ServiceDefaults): OpenTelemetry metrics and traces under the
/// service's own <c>service.name</c>, problem details, and JSON lines on the console.
/// </summary>
public static class ServiceDefaultsExtensions
{
    /// <summary>The OTLP collector (e.g. <c>http://otel-collector:4317</c>); unset, nothing is exported over OTLP.</summary>
    public const string OtlpEndpointSetting = "OTEL_EXPORTER_OTLP_ENDPOINT";

    /// <summary>
    /// Adds the defaults. <paramref name="serviceName"/> ("vpn-entry", "vpn-core") is the telemetry's service.name unless
    /// the operator sets OTEL_SERVICE_NAME; OTEL_RESOURCE_ATTRIBUTES adds to the resource (pod, node, region).
    /// Each service still adds its own meters, maps its Prometheus endpoint and registers its own health checks.
    /// </summary>
    public static TBuilder AddServiceDefaults<TBuilder>(this TBuilder builder, string serviceName) where TBuilder : IHostApplicationBuilder
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrEmpty(serviceName);
        builder.AddJsonConsoleLogging();
        builder.AddOpenTelemetryDefaults(serviceName);
        builder.Services.AddProblemDetails();
        return builder;
    }

    /// <summary>One JSON object per line with a UTC timestamp, unless the operator picks another formatter
    /// (Logging__Console__FormatterName=simple for a terminal).</summary>
    private static void AddJsonConsoleLogging(this IHostApplicationBuilder builder)
    {
        if (!string.IsNullOrEmpty(builder.Configuration["Logging:Console:FormatterName"]))
        {
            return;
        }
        builder.Logging.AddJsonConsole(json =>
        {
            json.UseUtcTimestamp = true;
            json.TimestampFormat = "yyyy-MM-dd'T'HH:mm:ss.fff'Z'";
        });
    }

    private static void AddOpenTelemetryDefaults(this IHostApplicationBuilder builder, string serviceName)
    {
        var name = builder.Configuration["OTEL_SERVICE_NAME"] is { Length: > 0 } configured ? configured : serviceName;
        var otlp = !string.IsNullOrEmpty(builder.Configuration[OtlpEndpointSetting]);
        var telemetry = builder.Services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService(name))
            .WithMetrics(metrics =>
            {
                metrics.AddAspNetCoreInstrumentation()
                    .AddHttpClientInstrumentation()
                    .AddMeter("System.Runtime")
                    .AddPrometheusExporter();
                if (otlp)
                {
                    metrics.AddOtlpExporter();
                }
            });
        // Traces only where they go somewhere: a listener on ASP.NET Core's activity source makes it start an Activity
        // for every request (in core about an eighth of what a Connect allocates), which without an exporter buys nothing.
        if (otlp)
        {
            telemetry.WithTracing(tracing => tracing
                .AddAspNetCoreInstrumentation(aspNetCore => aspNetCore.Filter = IsNotScrape)
                .AddGrpcClientInstrumentation(grpc => grpc.SuppressDownstreamInstrumentation = true)
                .AddHttpClientInstrumentation()
                .AddOtlpExporter());
        }
    }

    private static bool IsNotScrape(HttpContext context) => context.Request.Path != "/metrics";
}
