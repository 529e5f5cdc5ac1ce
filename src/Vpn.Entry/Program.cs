using Vpn.Entry;
using Vpn.Entry.Accounts;
using Vpn.Entry.Audit;
using Vpn.Entry.Devices;
using Vpn.Entry.Health;
using Vpn.Entry.Locations;
using Vpn.Entry.Nodes;
using Vpn.Entry.Privacy;
using Vpn.Entry.Subscriptions;
using Vpn.Entry.Usage;
using Vpn.ServiceDefaults;

if (args.Length > 0 && args[0] == "migrate")
{
    return await EntryServiceCollectionExtensions.RunMigrateCommandAsync(
        new ConfigurationBuilder().AddEnvironmentVariables().AddCommandLine(args[1..]).Build());
}

// Settings files ship next to the binary: found wherever the service is started from (the default, the working
// directory, silently dropped appsettings.json when an operator or a supervisor started it from elsewhere).
var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
builder.AddServiceDefaults("vpn-entry");
builder.AddEntryServices();

var app = builder.Build();
// The scrape-time gauges (nodes by state, revocation list, retention) exist from the start.
app.Services.GetRequiredService<StateGauges>();
// The server list's signing key (a development one is made and logged now).
app.Services.GetRequiredService<LocationCatalog>();
app.UseExceptionHandler();
app.UseRequestBodyLimit();
app.UseStatusCodePages();
app.UseTrustedForwardedHeaders(app.Services.GetRequiredService<Vpn.Entry.Configuration.EntryOptions>().RateLimits);
app.UseRouting();
app.UseRequestAuthentication();
app.UseRateLimiter();
app.UseStrictJsonBodies();
app.MapOpenApi();
app.MapPrometheusScrapingEndpoint("/metrics");
app.MapHealthEndpoints();
app.MapAuthEndpoints();
app.MapAccountEndpoints();
app.MapDeviceEndpoints();
app.MapSessionEndpoints();
app.MapSessionEventEndpoints();
app.MapNodeEndpoints();
app.MapCoreStatusEndpoints();
app.MapReadinessEndpoints();
app.MapSubscriptionEndpoints();
app.MapSubscriptionReportEndpoints();
app.MapPrivacyEndpoints();
app.MapLocationEndpoints();
app.MapAuditExportEndpoints();
app.MapUsageEndpoints();
await app.RunAsync();
return 0;
