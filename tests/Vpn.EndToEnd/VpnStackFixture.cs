using System.Runtime.ExceptionServices;

namespace Vpn.EndToEnd;

/// <summary>
/// The whole stack for end-to-end tests, built once per test class and torn down after it:
/// PostgreSQL (migrated by <c>Vpn.Entry.dll migrate</c>), entry as a real process in the root namespace,
/// the lab's namespaces (<see cref="VpnLab"/> by default, another <see cref="INodeLab"/> from <see cref="CreateLabAsync"/>)
/// with wireguard-go on the node, core as a real process inside
/// the node namespace serving gRPC on a unix socket, and the e2e plan + node registered and reported healthy.
/// <para>
/// Setup failures do not throw out of <see cref="InitializeAsync"/> (xunit would hide the processes' output):
/// they are kept, and every test starts with <see cref="EnsureReady"/>, which skips (locally) or fails (CI) on
/// missing prerequisites and fails with entry's and core's output on anything else.
/// </para>
/// Later tests reuse the helpers: <see cref="StopCoreAsync"/>/<see cref="StartCoreAsync"/>,
/// <see cref="RestartNodeWireGuardAsync"/>, <see cref="StopEntryAsync"/>/<see cref="StartEntryAsync"/>,
/// <see cref="Postgres"/> (stop/start), <see cref="NodeWgShowPeersAsync"/>, <see cref="ClientCurlAsync"/>. The class is
/// split by concern: setup here, entry's and core's processes in VpnStackFixture.Processes.cs, the database against
/// the node and core's own view in .Convergence.cs, sessions and the client in .Sessions.cs, failing with all
/// diagnostics in .Diagnostics.cs.
/// <para>
/// entry always listens on a unix socket (<see cref="EntrySocketPath"/>) besides loopback TCP: the node namespace cannot
/// reach the root namespace's loopback, but a socket file is reachable from every namespace. With
/// <see cref="CoreReconcilesWithEntry"/> core is configured as in production (CORE_ENTRY_URL on that socket, CORE_NODE_ID,
/// ADMIN_API_TOKEN): it pulls its desired peers and posts its own heartbeats, so the node is registered before core starts
/// and setup waits for core's first healthy heartbeat instead of posting one.
/// </para>
/// </summary>
public partial class VpnStackFixture : IAsyncLifetime
{
    public const string Region = "e2e";
    public const string PlanCode = "e2e";
    public const string NodeName = "e2e-node";

    /// <summary>xunit's contract: an exception whose message starts with this is a skip (Assert.Skip, Prerequisites).</summary>
    public const string SkipToken = PrerequisiteMissingException.SkipToken;

    private static readonly TimeSpan SetupBudget = TimeSpan.FromSeconds(120); // a cap for a heavily loaded machine, not a wait
    private const int OutputTail = 12_000;

    private readonly StringBuilder _setupLog = new();
    private ExceptionDispatchInfo? _setupFailure;
    private string? _setupNetwork;
    private BackgroundProcess? _entry;
    private BackgroundProcess? _core;
    private string _lastEntryOutput = "";
    private string _lastCoreOutput = "";
    private DirectoryInfo? _entrySocketDirectory;
    // Output of earlier entry/core processes (a test that kills and restarts them needs both sides in its message).
    private readonly StringBuilder _previousRuns = new();

    /// <summary>The topology (core's node namespace and device, the clients); <see cref="VpnLab"/> unless <see cref="CreateLabAsync"/> says otherwise.</summary>
    public INodeLab NodeLab { get; private set; } = null!;

    /// <summary>The single-client topology of the golden-path and fault tests (a stack built on another lab has none).</summary>
    public VpnLab Lab => NodeLab as VpnLab ?? throw new InvalidOperationException($"this stack runs on {NodeLab?.GetType().Name ?? "no lab"}, not VpnLab");
    public PostgresServer Postgres { get; private set; } = null!;
    public string DatabaseUrl { get; private set; } = "";

    /// <summary>Npgsql connection string of the e2e database (the tests read the truth from it directly).</summary>
    public string DatabaseConnectionString { get; private set; } = "";

    /// <summary>entry's unix socket (besides TCP), reachable from inside the node namespace.</summary>
    public string EntrySocketPath { get; private set; } = "";
    public string AdminToken { get; } = Convert.ToHexString(RandomNumberGenerator.GetBytes(24)).ToLowerInvariant();
    public Uri EntryBaseAddress { get; private set; } = null!;
    public EntryClient EntryClient { get; private set; } = null!;
    public WireGuardKeys NodeKeys { get; private set; } = null!;
    public string NodePrivateKeyFile { get; private set; } = "";
    public string CoreSocketPath { get; private set; } = "";
    public string CoreEndpoint => "unix:" + CoreSocketPath;
    public Guid NodeId { get; private set; }

    public string EntryOutput => _entry?.Output ?? _lastEntryOutput;
    public string CoreOutput => _core?.Output ?? _lastCoreOutput;
    public bool CoreRunning => _core is { HasExited: false };
    public bool EntryRunning => _entry is { HasExited: false };

    /// <summary>
    /// False (default): core runs without CORE_ENTRY_URL and the fixture posts the node's heartbeat itself.
    /// True: core reconciles with entry and heartbeats every <see cref="CoreIntervalSeconds"/> (the fault tests).
    /// </summary>
    protected virtual bool CoreReconcilesWithEntry => false;

    /// <summary>CORE_RECONCILE_SECS and CORE_HEARTBEAT_SECS when <see cref="CoreReconcilesWithEntry"/>.</summary>
    public virtual int CoreIntervalSeconds => 1;

    /// <summary>Extra settings for entry (applied last; null removes).</summary>
    protected virtual void AddEntryEnvironment(IDictionary<string, string?> environment)
    {
    }

    /// <summary>Extra settings for core (applied before a call's own extras; null removes).</summary>
    protected virtual void AddCoreEnvironment(IDictionary<string, string?> environment)
    {
    }

    /// <summary>The topology, built after entry is up and before the node is registered.</summary>
    protected virtual async Task<INodeLab> CreateLabAsync() => await VpnLab.CreateAsync();

    /// <summary>The last setup step, after core answers and the node is healthy (a failure here is a setup failure too).</summary>
    protected virtual Task CompleteSetUpAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Executables the stack needs on PATH (missing: skip locally, fail under CI).</summary>
    protected virtual IEnumerable<string> RequiredTools => ["ip", "wireguard-go", "wg", "nft", "curl", "python3", "dotnet"];

    public async ValueTask InitializeAsync()
    {
        if (!LabAvailable())
        {
            return; // EnsureReady skips or fails with the precise reason.
        }
        using var budget = new CancellationTokenSource(SetupBudget);
        try
        {
            await SetUpAsync(budget.Token);
        }
        catch (Exception e)
        {
            _setupFailure = ExceptionDispatchInfo.Capture(e);
            if (NodeLab is not null && !e.Message.StartsWith(SkipToken, StringComparison.Ordinal))
            {
                // Now, while the failed state is still there: tests only see the failure later.
                _setupNetwork = await NodeLab.DescribeAsync();
            }
        }
    }

    private bool LabAvailable() =>
        Prerequisites.IsRoot && File.Exists("/dev/net/tun")
        && RequiredTools.All(t => Prerequisites.FindExecutable(t) is not null)
        && File.Exists(RepoLayout.EntryDll) && File.Exists(RepoLayout.CoreDll);

    /// <summary>First line of every test: skip/fail on prerequisites, fail with diagnostics on a broken setup.</summary>
    public void EnsureReady()
    {
        Prerequisites.RequireNetworkLab();
        foreach (var tool in RequiredTools)
        {
            Prerequisites.RequireExecutable(tool);
        }
        Prerequisites.Require(File.Exists(RepoLayout.EntryDll), $"entry built at {RepoLayout.EntryDll}");
        Prerequisites.Require(File.Exists(RepoLayout.CoreDll), $"core built at {RepoLayout.CoreDll}");
        if (_setupFailure is null)
        {
            return;
        }
        if (_setupFailure.SourceException.Message.StartsWith(SkipToken, StringComparison.Ordinal))
        {
            _setupFailure.Throw(); // e.g. PostgreSQL missing: skip locally, fail under CI, as decided by the thrower
        }
        throw new Xunit.Sdk.XunitException(
            $"End-to-end setup failed: {_setupFailure.SourceException}\n\n=== setup log ===\n{_setupLog}\n{DescribeProcesses()}" +
            (_setupNetwork is null ? "" : $"=== network when setup failed ===\n{_setupNetwork}"),
            _setupFailure.SourceException);
    }

    private async Task SetUpAsync(CancellationToken cancellationToken)
    {
        Step($"binaries: {RepoLayout.EntryDll}, {RepoLayout.CoreDll}");
        Postgres = await AcquirePostgresAsync();
        Step($"postgres: {Postgres}");
        var connectionString = await Postgres.CreateDatabaseAsync("e2e");
        DatabaseConnectionString = connectionString;
        DatabaseUrl = PostgresServer.ToUrl(connectionString);
        Step("database created");

        var migrate = await ProcessRunner.RunAsync("dotnet", [RepoLayout.EntryDll, "migrate"], null, TimeSpan.FromSeconds(60),
            new Dictionary<string, string> { ["DATABASE_URL"] = DatabaseUrl, ["APP_ENV"] = "development", ["ADMIN_API_TOKEN"] = AdminToken });
        Step($"migrate exit {migrate.ExitCode}\n{Tail(migrate.StandardOutput)}\n{Tail(migrate.StandardError)}");
        migrate.EnsureSuccess("Vpn.Entry.dll migrate");

        var port = FreeLoopbackPort();
        EntryBaseAddress = new Uri($"http://127.0.0.1:{port}/");
        EntryClient = new EntryClient(EntryBaseAddress, AdminToken);
        _entrySocketDirectory = Directory.CreateTempSubdirectory("vpn-e2e-entry-");
        EntrySocketPath = Path.Combine(_entrySocketDirectory.FullName, "entry.sock");
        await StartEntryAsync(cancellationToken);

        NodeLab = await CreateLabAsync();
        Step($"lab: node={NodeLab.Node.Name}/{NodeLab.NodeInterface} {NodeLab}");

        NodeKeys = await WireGuardKeys.GenerateAsync();
        NodePrivateKeyFile = NodeKeys.WritePrivateKeyFile(Path.Combine(NodeLab.WorkDirectory, "node.key"));
        CoreSocketPath = Path.Combine(NodeLab.WorkDirectory, "core.sock");

        // The node is registered before core starts: a reconciling core needs its id (registration does not call core).
        var plan = await EntryClient.AdminAsync(HttpMethod.Post, "/v1/admin/plans",
            new { Code = PlanCode, Name = "E2E", MaxDevices = 5, AllowedRegions = new[] { Region } }, cancellationToken);
        ExpectSetup(plan, HttpStatusCode.OK, HttpStatusCode.Created);

        var node = await EntryClient.AdminAsync(HttpMethod.Post, "/v1/admin/nodes", new
        {
            Name = NodeName,
            Region,
            CountryCode = "DE",
            CityCode = "fra",
            Pool = "default",
            PublicEndpoint = NodeLab.NodeEndpoint,
            PublicKey = NodeKeys.PublicKey,
            CoreEndpoint,
            Capacity = 100,
        }, cancellationToken);
        ExpectSetup(node, HttpStatusCode.OK, HttpStatusCode.Created);
        NodeId = Guid.Parse(node.Text("id"));
        Step("registered plan and node");

        var coreStarted = DateTimeOffset.UtcNow;
        await StartCoreAsync(cancellationToken: cancellationToken);
        if (CoreReconcilesWithEntry)
        {
            await WaitForNodeHeartbeatAsync(coreStarted, TimeSpan.FromSeconds(45), cancellationToken);
            Step("core synced and reported the node healthy");
        }
        else
        {
            await ReportNodeHealthyAsync(cancellationToken: cancellationToken);
            Step("heartbeat posted");
        }
        await CompleteSetUpAsync(cancellationToken);
    }

    /// <summary>
    /// The shared per-process server by default. A fixture for PostgreSQL-restart tests overrides this with
    /// <see cref="PostgresServer.StartNewAsync"/> (only a private server can be stopped/started; it is disposed with the fixture).
    /// </summary>
    protected virtual Task<PostgresServer> AcquirePostgresAsync() => PostgresServer.SharedAsync();

    private void ExpectSetup(EntryResponse response, params HttpStatusCode[] expected)
    {
        Step(response.Describe());
        if (!expected.Contains(response.Status))
        {
            throw new InvalidOperationException($"expected {string.Join(" or ", expected.Select(s => (int)s))}: {response.Describe()}");
        }
    }

    /// <summary>A line in the setup log (printed with every failure's diagnostics), timestamped.</summary>
    public void Step(string line)
    {
        lock (_setupLog)
        {
            _setupLog.AppendLine($"[{DateTime.UtcNow:HH:mm:ss.fff}] {line}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopCoreAsync();
        await StopEntryAsync();
        if (NodeLab is not null)
        {
            await NodeLab.DisposeAsync();
        }
        EntryClient?.Dispose();
        try
        {
            _entrySocketDirectory?.Delete(recursive: true);
        }
        catch (IOException)
        {
        }
        if (Postgres is not null)
        {
            await Postgres.DisposeAsync(); // no-op for the shared server (stopped at process exit)
        }
        await DisposeMoreAsync();
        GC.SuppressFinalize(this);
    }

    /// <summary>The last step of <see cref="DisposeAsync"/>, for what a derived stack made (ContainerStackFixture: its images).</summary>
    protected virtual ValueTask DisposeMoreAsync() => ValueTask.CompletedTask;
}
