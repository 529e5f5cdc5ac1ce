namespace Vpn.EndToEnd;

/// <summary>
/// The stack for the fault tests: a private PostgreSQL server (so it can be stopped and started), core configured as in
/// production (reconciliation pulled from entry over entry's unix socket, own heartbeats, both every second), and a
/// generous core-call deadline for entry (the machine is often heavily loaded; the tests are about faults, not speed).
/// One topology is shared by all fault tests; each restores what it breaks and starts with <see cref="PrepareAsync"/>.
/// </summary>
public sealed class FaultStackFixture : VpnStackFixture
{
    /// <summary>Bound on every "converges" wait: many reconcile periods, for a loaded machine.</summary>
    public static readonly TimeSpan ConvergenceTimeout = TimeSpan.FromSeconds(60);

    public bool PostgresStopped { get; private set; }

    protected override bool CoreReconcilesWithEntry => true;

    protected override Task<PostgresServer> AcquirePostgresAsync() => PostgresServer.StartNewAsync();

    protected override void AddEntryEnvironment(IDictionary<string, string?> environment)
    {
        ArgumentNullException.ThrowIfNull(environment);
        environment["APP_CORE_TIMEOUT_MS"] = "15000";
    }

    public async Task StopPostgresAsync()
    {
        PostgresStopped = true;
        await Postgres.StopAsync();
        Step("postgres stopped (pg_ctl stop -m fast)");
    }

    public async Task StartPostgresAsync()
    {
        await Postgres.StartAsync();
        PostgresStopped = false;
        Step("postgres started");
    }

    /// <summary>
    /// First line of every fault test: prerequisites and setup checked, anything a failed earlier test left stopped is
    /// started again, the node is converged, and the client (configured from an active session) reaches inet, NATed.
    /// </summary>
    public async Task PrepareAsync(CancellationToken cancellationToken)
    {
        EnsureReady();
        var since = DateTimeOffset.UtcNow;
        var restarted = false;
        if (PostgresStopped)
        {
            await StartPostgresAsync();
            restarted = true;
        }
        if (!EntryRunning)
        {
            await StartEntryAsync(cancellationToken);
            restarted = true;
        }
        if (!CoreRunning)
        {
            await StartCoreAsync(cancellationToken: cancellationToken);
            restarted = true;
        }
        if (restarted)
        {
            await WaitForNodeHeartbeatAsync(since, TimeSpan.FromSeconds(60), cancellationToken);
        }
        await WaitForConvergenceAsync("before the fault", ConvergenceTimeout, cancellationToken);
        await EnsureClientSessionAsync(cancellationToken);
        await ExpectClientTrafficAsync("before the fault", TimeSpan.FromSeconds(30), cancellationToken);
    }
}
