using System.Text.Json;
using Microsoft.AspNetCore.Http.Json;
using Npgsql;
using OpenTelemetry.Metrics;
using Vpn.Entry.Data;
using Vpn.Entry.Devices;
using Vpn.Entry.Health;
using Vpn.Entry.Nodes;
using Vpn.Entry.Privacy;
using Vpn.Entry.Subscriptions;

namespace Vpn.Entry;

public static class EntryServiceCollectionExtensions
{
    /// <summary>Request bodies above this are refused (413) before they are read.</summary>
    public const long MaxRequestBodyBytes = 64 * 1024;

    public static WebApplicationBuilder AddEntryServices(this WebApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var options = EntryOptions.Load(builder.Configuration, out var errors);
        if (errors.Count > 0)
        {
            throw new InvalidOperationException("Invalid configuration:\n- " + string.Join("\n- ", errors));
        }
        var services = builder.Services;
        services.AddSingleton(options);
        services.AddSingleton(TimeProvider.System);
        builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = MaxRequestBodyBytes);

        services.Configure<JsonOptions>(json =>
        {
            json.SerializerOptions.PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower;
            json.SerializerOptions.DictionaryKeyPolicy = null;
            json.SerializerOptions.MaxDepth = 16;
            // The web defaults accept "10" for a number; the contract says wrong types are invalid_request.
            json.SerializerOptions.NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.Strict;
            // {"public_key": A, "public_key": B} is refused, not "last wins" (see StrictJsonBodies for the rest of the body).
            json.SerializerOptions.AllowDuplicateProperties = false;
        });
        services.Configure<RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
        services.AddExceptionHandler<ProblemExceptionHandler>();
        services.AddEntryOpenApi();
        services.AddOpenTelemetry().WithMetrics(metrics => metrics.AddMeter(EntryMetrics.MeterName));
        services.AddSingleton<EntryMetrics>();
        services.AddSingleton<Health.StateGauges>();
        services.AddSingleton<Locations.LocationCatalog>();
        services.AddSingleton(options.Privacy);
        services.AddLogRedaction(options.Privacy);
        services.AddSingleton<RetentionStatus>();
        services.AddSingleton<PrivacyConformance>();

        // The connection budget before anything opens connections; then StartupTasks: hosted services start in
        // registration order, and its migrations come before anything reads the database.
        services.AddSingleton<ConnectionBudget>();
        services.AddHostedService<ConnectionBudgetStartupCheck>();
        services.AddHostedService<StartupTasks>();
        services.AddEntryStores(options.DatabaseConnectionString);
        services.AddSingleton<Auth.AccessTokenService>();
        services.AddSingleton<Auth.OidcSignIn>();
        services.AddHttpClient(Auth.OidcSignIn.HttpClientName, client => client.Timeout = options.Oidc.Timeout * 2)
            .ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler
            {
                AllowAutoRedirect = false,
                ConnectTimeout = options.Oidc.Timeout,
                PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            });
        services.AddEntryRateLimiting(options.RateLimits);
        services.AddEntryLoadShedding(options);
        services.AddSingleton<Auth.AuthFailureThrottle>();
        services.AddSingleton<ICoreChannelFactory, CoreChannelFactory>();
        services.AddSingleton<CoreClients>();
        services.AddReadinessChecks();
        services.AddSingleton<ReadyzProbe>();
        services.AddSingleton<SessionService>();
        services.AddSingleton<SessionEventHub>();
        services.AddSingleton<Accounts.AccountErasure>();
        services.AddSingleton<EntitlementEnforcer>();
        services.AddSingleton<Usage.QuotaEnforcer>();
        services.AddHostedService<ProvisioningSweeper>();
        services.AddSingleton<NodeDrainMigrator>();
        services.AddHostedService(sp => sp.GetRequiredService<NodeDrainMigrator>());
        services.AddSingleton<RetentionCleanupService>();
        services.AddHostedService(sp => sp.GetRequiredService<RetentionCleanupService>());
        return builder;
    }

    /// <summary>The migrate command: apply migrations under the advisory lock and exit.</summary>
    public static async Task<int> RunMigrateCommandAsync(IConfiguration configuration)
    {
        // Only what migrate uses: the migration step of a deployment (an init container, a Job) is given the database
        // URL and nothing else, whatever APP_ENV the image sets.
        var errors = new List<string>();
        var (connectionString, _) = EntryOptions.LoadDatabase(configuration, errors);
        if (errors.Count > 0)
        {
            await Console.Error.WriteLineAsync("migrate: invalid configuration:\n- " + string.Join("\n- ", errors));
            return 2;
        }
        if (connectionString is null)
        {
            await Console.Error.WriteLineAsync("migrate: DATABASE_URL is required.");
            return 2;
        }
        await using var dataSource = NpgsqlDataSource.Create(connectionString);
        using var loggerFactory = LoggerFactory.Create(l => l.AddSimpleConsole());
        try
        {
            var applied = await new Migrator(dataSource, loggerFactory.CreateLogger<Migrator>()).MigrateAsync(CancellationToken.None);
            await Console.Out.WriteLineAsync($"migrate: {applied} migration(s) applied; schema at {Migrator.LatestVersion}.");
            return 0;
        }
        catch (NpgsqlException e)
        {
            // The SQL state and kind say enough; the message could quote the connection target, never the password.
            await Console.Error.WriteLineAsync($"migrate: failed ({e.GetType().Name}{(e is PostgresException p ? " " + p.SqlState : "")}).");
            return 1;
        }
    }
}
