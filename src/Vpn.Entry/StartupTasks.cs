using Vpn.Entry.Data;
using Vpn.Entry.Nodes;
using Vpn.Entry.Subscriptions;

namespace Vpn.Entry;

/// <summary>Before serving: apply migrations (development), seed the development plan and node (embedded mode), say where we listen.</summary>
public sealed partial class StartupTasks(IStoreSchema schema, EntryOptions options, IPlanStore plans, INodeSeeder nodeSeeder, TimeProvider time,
    ILogger<StartupTasks> logger) : IHostedService
{
    /// <summary>Fixed id of the seeded development node so a local core can send its heartbeat without configuration.</summary>
    public static readonly Guid DevelopmentNodeId = Guid.Parse("00000000-0000-4000-8000-00000000d001");

    // A syntactically valid placeholder; the noop dataplane has no real key.
    public const string DevelopmentNodePublicKey = "ZGV2LW5vZGUtcHVibGljLWtleS1wbGFjZWhvbGRlciE=";

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (options.MigrateOnStart)
        {
            await schema.EnsureMigratedAsync(cancellationToken);
        }
        if (options.SeedDevelopmentData)
        {
            await plans.UpsertPlanAsync(new Plan("dev", "Development", 5, ["local"]), cancellationToken);
            var registration = new NodeRegistration("dev-node-1", "local", "ZZ", "dev", "default", "127.0.0.1:51820",
                DevelopmentNodePublicKey, options.DevelopmentCoreEndpoint, 100);
            await nodeSeeder.SeedAsync(DevelopmentNodeId, registration, time.GetUtcNow(), cancellationToken);
            LogSeeded(logger);
        }
        if (!options.IsProduction && options.AdminToken == EntryOptions.DevelopmentAdminToken)
        {
            LogDevelopmentToken(logger, EntryOptions.DevelopmentAdminToken);
        }
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(EventId = 10, Level = LogLevel.Information, Message = "Seeded development plan 'dev' and node 'dev-node-1' (region 'local')")]
    private static partial void LogSeeded(ILogger logger);

    // Only the well-known development token is ever printed; a configured token never is.
    [LoggerMessage(EventId = 11, Level = LogLevel.Warning, Message = "Using the development admin token '{Token}'; set ADMIN_API_TOKEN outside development")]
    private static partial void LogDevelopmentToken(ILogger logger, string token);
}
