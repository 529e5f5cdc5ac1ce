using Vpn.Core;
using Vpn.Core.Control;
using Vpn.Core.Dns;
using Vpn.ServiceDefaults;

// `resolver-config --out PATH`: render the resolver's unbound.conf from the same settings and exit (the pod's init container).
if (args.Length > 0 && args[0] == ResolverConfigCommand.Name)
{
    return ResolverConfigCommand.Run(args[1..], new ConfigurationBuilder().AddEnvironmentVariables().Build(), Console.Out, Console.Error);
}

// Settings files ship next to the binary: found wherever the service is started from (the default, the working
// directory, silently dropped appsettings.json when an operator or a supervisor started it from elsewhere).
var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
builder.AddServiceDefaults("vpn-core");
builder.AddCoreServices();

var app = builder.Build();
// Instruments exist from the start, so /metrics shows synced = 0 before the first pass rather than nothing.
_ = app.Services.GetRequiredService<Vpn.Core.Reconciliation.ReconcileMetrics>();
app.MapGrpcService<VpnControlService>();
app.UseCoreMetricsEndpoint();
await app.RunAsync();
return 0;
