using System.Net;
using System.Net.Sockets;
using System.Runtime.ExceptionServices;
using System.Security.Cryptography;
using System.Text;
using Vpn.Harness;
using Vpn.Harness.Postgres;

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
/// <see cref="Postgres"/> (stop/start), <see cref="NodeWgShowPeersAsync"/>, <see cref="ClientCurlAsync"/>, and the
/// convergence helpers in VpnStackFixture.Convergence.cs.
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
    public const string SkipToken = "$XunitDynamicSkip$";

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

    // ---------------------------------------------------------------- entry

    public async Task StartEntryAsync(CancellationToken cancellationToken = default)
    {
        if (EntryRunning)
        {
            throw new InvalidOperationException("entry is already running");
        }
        var environment = new Dictionary<string, string?>
        {
            ["DATABASE_URL"] = DatabaseUrl,
            ["ADMIN_API_TOKEN"] = AdminToken,
            ["APP_ENV"] = "development",
            ["ASPNETCORE_URLS"] = $"{EntryBaseAddress.ToString().TrimEnd('/')};http://unix:{EntrySocketPath}",
            ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1",
        };
        AddEntryEnvironment(environment);
        // A SIGKILLed entry leaves its socket file behind; binding over it would fail.
        File.Delete(EntrySocketPath);
        _entry = StartCapped(null, RepoLayout.EntryDll, environment);
        var process = _entry;
        Step($"entry started (pid {process.Id}) on {EntryBaseAddress} and unix:{EntrySocketPath}");

        await WaitForEntryReadyAsync(process, EntryBaseAddress, TimeSpan.FromSeconds(30), "entry", cancellationToken);
        Step("entry ready");
    }

    /// <summary>
    /// A second entry process on the same database (another loopback port, same settings): a replica as a deployment of
    /// two would run it. Core keeps pulling from the first; the replica only serves API calls. Dispose stops it.
    /// </summary>
    public async Task<EntryReplicaProcess> StartEntryReplicaAsync(CancellationToken cancellationToken = default)
    {
        var baseAddress = new Uri($"http://127.0.0.1:{FreeLoopbackPort()}/");
        var environment = new Dictionary<string, string?>
        {
            ["DATABASE_URL"] = DatabaseUrl,
            ["ADMIN_API_TOKEN"] = AdminToken,
            ["APP_ENV"] = "development",
            ["ASPNETCORE_URLS"] = baseAddress.ToString().TrimEnd('/'),
            ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1",
        };
        AddEntryEnvironment(environment);
        var process = StartCapped(null, RepoLayout.EntryDll, environment);
        Step($"entry replica started (pid {process.Id}) on {baseAddress}");
        try
        {
            await WaitForEntryReadyAsync(process, baseAddress, TimeSpan.FromSeconds(30), "entry replica", cancellationToken);
        }
        catch
        {
            await process.DisposeAsync();
            throw;
        }
        return new EntryReplicaProcess(process, new EntryClient(baseAddress, AdminToken));
    }

    /// <summary>Until entry's GET /readyz answers 200; fails at once (with its output) if the process exits.</summary>
    internal static async Task WaitForEntryReadyAsync(BackgroundProcess process, Uri baseAddress, TimeSpan limit, string name,
        CancellationToken cancellationToken)
    {
        using var probe = new HttpClient { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(2) };
        var lastProbe = "";
        await VpnLab.WaitUntilAsync(async () =>
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"{name} exited during start:\n{Tail(process.Output)}");
            }
            try
            {
                using var response = await probe.GetAsync("/readyz", cancellationToken);
                lastProbe = $"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync(cancellationToken)}";
                return response.StatusCode == HttpStatusCode.OK;
            }
            catch (HttpRequestException e)
            {
                lastProbe = e.Message;
                return false;
            }
            catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                lastProbe = "timeout";
                return false;
            }
        }, limit, () => $"{name} GET /readyz never answered 200 (last: {lastProbe})", cancellationToken);
    }

    /// <summary>SIGKILL entry (as a crash).</summary>
    public async Task StopEntryAsync()
    {
        if (_entry is null)
        {
            return;
        }
        var pid = _entry.Id;
        var tree = ProcessTree(pid);
        await _entry.DisposeAsync();
        // Kill(entireProcessTree) only waits for the root (coreutils timeout): wait for the dotnet process itself too, or
        // a restart could bind next to a dying listener (entry's TCP port) or see its socket still accept (core's).
        await WaitForExitAsync(tree, TimeSpan.FromSeconds(15));
        _lastEntryOutput = _entry.Output;
        KeepPreviousRun("entry", pid, _lastEntryOutput);
        _entry = null;
        Step("entry killed");
    }

    // ---------------------------------------------------------------- core

    /// <summary>
    /// Starts core inside the node namespace and waits until its gRPC unix socket accepts connections.
    /// <paramref name="extraEnvironment"/> adds or (with null values) removes settings for special cases.
    /// </summary>
    public async Task StartCoreAsync(IDictionary<string, string?>? extraEnvironment = null, CancellationToken cancellationToken = default)
    {
        if (CoreRunning)
        {
            throw new InvalidOperationException("core is already running");
        }
        var environment = CoreEnvironment(extraEnvironment);
        _core = StartCapped(NodeLab.Node, RepoLayout.CoreDll, environment);
        var process = _core;
        Step($"core started (pid {process.Id}) in {NodeLab.Node.Name}, gRPC {CoreEndpoint}");
        await WaitForCoreAsync(process, cancellationToken);
    }

    /// <summary>
    /// Core's whole environment as <see cref="StartCoreAsync"/> passes it (the fixture's settings, then
    /// <see cref="AddCoreEnvironment"/>, then <paramref name="extraEnvironment"/>; a null value removes the setting): also
    /// what <c>Vpn.Core resolver-config</c> is run with.
    /// </summary>
    public Dictionary<string, string?> CoreEnvironment(IDictionary<string, string?>? extraEnvironment = null)
    {
        var environment = new Dictionary<string, string?>
        {
            ["CORE_GRPC_LISTEN"] = CoreEndpoint,
            ["WG_DATAPLANE"] = "linux",
            ["WG_INTERFACE"] = NodeLab.NodeInterface,
            ["WG_PRIVATE_KEY_FILE"] = NodePrivateKeyFile,
            ["WG_LISTEN_PORT"] = VpnLab.NodeListenPort.ToString(),
            ["WG_CLIENT_POOL"] = NodeLab.ClientPool,
            ["WG_NAT_DRIVER"] = "cli",
            // VpnLab runs no resolver on the node: a core checking for one would call itself unhealthy (ConsumerLab does run one).
            ["CORE_RESOLVER_CHECK"] = "false",
            ["ASPNETCORE_URLS"] = null, // nothing inherited from the test host
            ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1",
        };
        if (CoreReconcilesWithEntry)
        {
            environment["CORE_ENTRY_URL"] = "unix:" + EntrySocketPath;
            environment["CORE_NODE_ID"] = NodeId.ToString();
            environment["ADMIN_API_TOKEN"] = AdminToken;
            environment["CORE_RECONCILE_SECS"] = CoreIntervalSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
            environment["CORE_HEARTBEAT_SECS"] = CoreIntervalSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
        AddCoreEnvironment(environment);
        foreach (var (key, value) in extraEnvironment ?? new Dictionary<string, string?>())
        {
            environment[key] = value;
        }
        return environment;
    }

    private async Task WaitForCoreAsync(BackgroundProcess process, CancellationToken cancellationToken)
    {
        var lastProbe = "";
        await VpnLab.WaitUntilAsync(async () =>
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"core exited during start:\n{Tail(process.Output)}");
            }
            if (!await UnixSocketAcceptsAsync(CoreSocketPath))
            {
                lastProbe = "socket does not accept";
                return false;
            }
            // An answered RPC, not just an accepting socket: only a live process answers.
            try
            {
                await GetNodeStatusAsync(TimeSpan.FromSeconds(5), cancellationToken);
                return true;
            }
            catch (Exception e) when (e is Grpc.Core.RpcException or HttpRequestException or SocketException or IOException)
            {
                lastProbe = e.Message;
                return false;
            }
        }, TimeSpan.FromSeconds(45), () => $"core on {CoreSocketPath} never answered GetNodeStatus (last: {lastProbe})", cancellationToken);
        Step("core answers gRPC");
    }

    /// <summary>SIGKILL core (as a crash); the stale socket file is left where the crash left it.</summary>
    public async Task StopCoreAsync()
    {
        if (_core is null)
        {
            return;
        }
        var pid = _core.Id;
        var tree = ProcessTree(pid);
        await _core.DisposeAsync();
        // Kill(entireProcessTree) only waits for the root (coreutils timeout): wait for the dotnet process itself too, or
        // a restart could bind next to a dying listener (entry's TCP port) or see its socket still accept (core's).
        await WaitForExitAsync(tree, TimeSpan.FromSeconds(15));
        _lastCoreOutput = _core.Output;
        KeepPreviousRun("core", pid, _lastCoreOutput);
        _core = null;
        Step("core killed");
    }

    /// <summary>The PID and all its descendants (from /proc/&lt;pid&gt;/task/*/children).</summary>
    private static List<int> ProcessTree(int root)
    {
        var all = new List<int>();
        var pending = new Stack<int>([root]);
        while (pending.Count > 0)
        {
            var pid = pending.Pop();
            all.Add(pid);
            try
            {
                foreach (var task in Directory.EnumerateDirectories($"/proc/{pid}/task"))
                {
                    foreach (var child in File.ReadAllText(Path.Combine(task, "children")).Split(' ', StringSplitOptions.RemoveEmptyEntries))
                    {
                        pending.Push(int.Parse(child, System.Globalization.CultureInfo.InvariantCulture));
                    }
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Gone already.
            }
        }
        return all;
    }

    private static async Task WaitForExitAsync(IReadOnlyList<int> pids, TimeSpan timeout)
    {
        // A zombie (state Z) is dead: its sockets are closed.
        static bool Alive(int pid)
        {
            try
            {
                var stat = File.ReadAllText($"/proc/{pid}/stat");
                var state = stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[0];
                return state != "Z" && state != "X";
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentOutOfRangeException)
            {
                return false;
            }
        }
        var deadline = DateTime.UtcNow + timeout;
        while (pids.Any(Alive) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
        }
    }

    private static async Task<bool> UnixSocketAcceptsAsync(string path)
    {
        if (!File.Exists(path))
        {
            return false;
        }
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await socket.ConnectAsync(new UnixDomainSocketEndPoint(path));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>
    /// <c>dotnet app.dll</c>, optionally inside a namespace, under coreutils <c>timeout</c> so it dies by itself even
    /// if the test host is killed; working directory = the app's output directory (its appsettings).
    /// </summary>
    internal static BackgroundProcess StartCapped(NetworkNamespace? ns, string dll, IDictionary<string, string?> environment)
    {
        var command = new List<string> { "timeout", "-k", "5", ((int)VpnLab.ProcessLifetimeCap.TotalSeconds).ToString(), "dotnet", dll };
        if (ns is not null)
        {
            command.InsertRange(0, ["ip", "netns", "exec", ns.Name]);
        }
        return new BackgroundProcess(command[0], command.Skip(1), environment, Path.GetDirectoryName(dll));
    }

    // ---------------------------------------------------------------- helpers for tests

    public Task RestartNodeWireGuardAsync() => NodeLab.RestartNodeWireGuardAsync();

    public Task<IReadOnlyList<string>> NodeWgShowPeersAsync() => NodeLab.NodeWgShowPeersAsync();

    public Task<ProcessResult> ClientCurlAsync(TimeSpan maxTime) => Lab.ClientCurlAsync(maxTime);

    /// <summary>The heartbeat core would send (the node namespace cannot reach entry's loopback), so the node is fresh.</summary>
    public async Task ReportNodeHealthyAsync(int activePeerCount = 0, CancellationToken cancellationToken = default)
    {
        var health = await EntryClient.AdminAsync(HttpMethod.Post, "/v1/internal/nodes/health",
            new { NodeId, Healthy = true, ActivePeerCount = activePeerCount }, cancellationToken);
        if (health.Status != HttpStatusCode.NoContent)
        {
            await FailAsync($"node heartbeat: expected 204, got {health.Describe()}");
        }
    }

    /// <summary>A new customer id with an active e2e subscription.</summary>
    public async Task<Guid> CreateSubscribedCustomerAsync(CancellationToken cancellationToken = default)
    {
        var customer = Guid.NewGuid();
        var subscription = await EntryClient.AdminAsync(HttpMethod.Post, "/v1/admin/subscriptions",
            new { CustomerId = customer, PlanCode, Status = "active" }, cancellationToken);
        await ExpectStatusAsync(subscription, HttpStatusCode.OK, HttpStatusCode.Created);
        return customer;
    }

    /// <summary>Fails unless the status is one of <paramref name="expected"/>, with the response and all diagnostics.</summary>
    public async Task<EntryResponse> ExpectStatusAsync(EntryResponse response, params HttpStatusCode[] expected)
    {
        ArgumentNullException.ThrowIfNull(response);
        if (!expected.Contains(response.Status))
        {
            await FailAsync($"expected {string.Join(" or ", expected.Select(s => $"{(int)s} {s}"))}:\n{response.Describe()}");
        }
        return response;
    }

    public async Task CheckAsync(bool condition, string message)
    {
        if (!condition)
        {
            await FailAsync(message);
        }
    }

    public async Task FailAsync(string message) =>
        throw new Xunit.Sdk.XunitException($"{message}\n\n{await DiagnosticsAsync()}");

    /// <summary>entry's and core's output, the setup log and the lab's network state.</summary>
    public async Task<string> DiagnosticsAsync()
    {
        var sb = new StringBuilder(DescribeProcesses());
        if (NodeLab is not null)
        {
            sb.AppendLine("=== network ===").AppendLine(await NodeLab.DescribeAsync());
        }
        if (Postgres is not null)
        {
            sb.AppendLine("=== postgres log ===").AppendLine(Tail(Postgres.ReadLog()));
        }
        sb.AppendLine("=== fixture log (setup and fault steps) ===").AppendLine(_setupLog.ToString());
        return sb.ToString();
    }

    private string DescribeProcesses()
    {
        string previous;
        lock (_previousRuns)
        {
            previous = _previousRuns.ToString();
        }
        return (previous.Length == 0 ? "" : $"=== earlier (killed) entry/core processes, tails ===\n{Tail(previous)}\n") +
            $"=== entry output ({(EntryRunning ? "running" : "not running")}) ===\n{Tail(EntryOutput)}\n" +
            $"=== core output ({(CoreRunning ? "running" : "not running")}) ===\n{Tail(CoreOutput)}\n";
    }

    private void KeepPreviousRun(string what, int pid, string output)
    {
        const int perRun = 4_000;
        lock (_previousRuns)
        {
            _previousRuns.AppendLine($"--- {what} pid {pid}, killed {DateTime.UtcNow:HH:mm:ss.fff}:")
                .AppendLine(output.Length <= perRun ? output : "…" + output[^perRun..]);
        }
    }

    internal static string Tail(string text) => text.Length <= OutputTail ? text : "…" + text[^OutputTail..];

    internal static int FreeLoopbackPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
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
        GC.SuppressFinalize(this);
    }
}

/// <summary>A second entry process (see <see cref="VpnStackFixture.StartEntryReplicaAsync"/>).</summary>
public sealed class EntryReplicaProcess(BackgroundProcess process, EntryClient client) : IAsyncDisposable
{
    public EntryClient Client { get; } = client;

    public string Output => process.Output;

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await process.DisposeAsync();
    }
}
