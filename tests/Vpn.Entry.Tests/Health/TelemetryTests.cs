using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;
using Vpn.Core.Control;

namespace Vpn.Entry.Tests.Health;

/// <summary>
/// Both services' telemetry (Vpn.ServiceDefaults) carries their own service.name, not unknown_service:dotnet; traces are
/// recorded only with an OTLP collector to send them to.
/// </summary>
public sealed class TelemetryTests
{
    // Nothing listens there: the exporter's failures are its own business, the test reads the providers only.
    private const string Collector = "http://127.0.0.1:9";

    private static readonly Dictionary<string, string?> WithCollector = new() { ["OTEL_EXPORTER_OTLP_ENDPOINT"] = Collector };

    [Fact]
    public async Task Entry_WithoutCollector_MetricsNamedVpnEntry_NoTracing()
    {
        await using var stack = await TestStack.StartAsync(StoreKind.InMemory);

        Assert.Equal("vpn-entry", ServiceName(stack.EntryServices.GetRequiredService<MeterProvider>()));
        Assert.Null(stack.EntryServices.GetService<TracerProvider>());
    }

    [Fact]
    public async Task Entry_WithCollector_MetricsAndTracesNamedVpnEntry()
    {
        await using var stack = await TestStack.StartAsync(StoreKind.InMemory, WithCollector);

        Assert.Equal("vpn-entry", ServiceName(stack.EntryServices.GetRequiredService<MeterProvider>()));
        Assert.Equal("vpn-entry", ServiceName(stack.EntryServices.GetRequiredService<TracerProvider>()));
    }

    [Fact]
    public async Task Core_WithoutCollector_MetricsNamedVpnCore_NoTracing()
    {
        await using var core = StartCore(otlp: false);

        Assert.Equal("vpn-core", ServiceName(core.Services.GetRequiredService<MeterProvider>()));
        Assert.Null(core.Services.GetService<TracerProvider>());
    }

    [Fact]
    public async Task Core_WithCollector_MetricsAndTracesNamedVpnCore()
    {
        await using var core = StartCore(otlp: true);

        Assert.Equal("vpn-core", ServiceName(core.Services.GetRequiredService<MeterProvider>()));
        Assert.Equal("vpn-core", ServiceName(core.Services.GetRequiredService<TracerProvider>()));
    }

    [Fact]
    public async Task Entry_OtelServiceNameSet_OperatorsNameWins()
    {
        await using var stack = await TestStack.StartAsync(StoreKind.InMemory, new Dictionary<string, string?> { ["OTEL_SERVICE_NAME"] = "vpn-entry-eu" });

        Assert.Equal("vpn-entry-eu", ServiceName(stack.EntryServices.GetRequiredService<MeterProvider>()));
    }

    private static string? ServiceName(BaseProvider provider) =>
        provider.GetResource().Attributes.SingleOrDefault(a => a.Key == "service.name").Value as string;

    private static WebApplicationFactory<VpnControlService> StartCore(bool otlp)
    {
        var core = new WebApplicationFactory<VpnControlService>().WithWebHostBuilder(b =>
        {
            b.UseSetting("WG_DATAPLANE", "noop");
            b.UseSetting("WG_CLIENT_POOL", "10.64.0.0/20");
            b.UseSetting("CORE_GRPC_LISTEN", "127.0.0.1:0");
            if (otlp)
            {
                b.UseSetting("OTEL_EXPORTER_OTLP_ENDPOINT", Collector);
            }
        });
        _ = core.Server;
        return core;
    }
}
