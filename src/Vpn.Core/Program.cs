using Vpn.Core;
using Vpn.Core.Control;

// Settings files ship next to the binary: found wherever the service is started from (the default, the working
// directory, silently dropped appsettings.json when an operator or a supervisor started it from elsewhere).
var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
builder.AddCoreServices();

var app = builder.Build();
// Instruments exist from the start, so /metrics shows synced = 0 before the first pass rather than nothing.
_ = app.Services.GetRequiredService<Vpn.Core.Reconciliation.ReconcileMetrics>();
app.MapGrpcService<VpnControlService>();
app.MapPrometheusScrapingEndpoint("/metrics");
await app.RunAsync();
