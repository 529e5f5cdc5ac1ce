using Vpn.ServiceDefaults;

namespace Vpn.Entry.Configuration;

/// <summary>How entry moves the sessions of a node drained with "migrate": true (<see cref="Nodes.NodeDrainMigrator"/>).</summary>
public sealed class DrainOptions
{
    /// <summary>Sessions read and moved per batch (APP_DRAIN_BATCH_SIZE, default 50).</summary>
    public int BatchSize { get; init; } = 50;

    /// <summary>Moves of one batch in flight at once, each a Connect, a store update and a Disconnect (APP_DRAIN_CONCURRENCY, default 4).</summary>
    public int Concurrency { get; init; } = 4;

    /// <summary>Time between passes over the migrating nodes (APP_DRAIN_INTERVAL_SECS, default 5); a drain request starts one at once.</summary>
    public TimeSpan Interval { get; init; } = TimeSpan.FromSeconds(5);

    public static DrainOptions Load(Microsoft.Extensions.Configuration.IConfiguration configuration, List<string> problems) => new()
    {
        BatchSize = Settings.Number(configuration, "APP_DRAIN_BATCH_SIZE", 50, 1, 10_000, problems),
        Concurrency = Settings.Number(configuration, "APP_DRAIN_CONCURRENCY", 4, 1, 64, problems),
        Interval = TimeSpan.FromSeconds(Settings.Number(configuration, "APP_DRAIN_INTERVAL_SECS", 5, 1, 3600, problems)),
    };
}
