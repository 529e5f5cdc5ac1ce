using Vpn.Core;
using Vpn.Core.Control;

var builder = WebApplication.CreateBuilder(args);
builder.AddCoreServices();

var app = builder.Build();
// Instruments exist from the start, so /metrics shows synced = 0 before the first pass rather than nothing.
_ = app.Services.GetRequiredService<Vpn.Core.Reconciliation.ReconcileMetrics>();
app.MapGrpcService<VpnControlService>();
app.MapPrometheusScrapingEndpoint("/metrics");
await app.RunAsync();
