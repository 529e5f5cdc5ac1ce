using System.Net.Sockets;

namespace Vpn.EndToEnd;

// entry's and core's processes: start (and wait until they answer), a second entry, SIGKILL, and what that needs.
public partial class VpnStackFixture
{
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
        if (await KillAsync(_entry, "entry") is { } output)
        {
            _lastEntryOutput = output;
            _entry = null;
        }
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
        _core = StartCoreProcess(environment);
        var process = _core;
        Step($"core started (pid {process.Id}) in {NodeLab.Node.Name}, gRPC {CoreEndpoint}");
        await WaitForCoreAsync(process, cancellationToken);
    }

    /// <summary>Core as a process in the node namespace (ContainerStackFixture: the core image in a container).</summary>
    protected virtual BackgroundProcess StartCoreProcess(Dictionary<string, string?> environment) =>
        StartCapped(NodeLab.Node, RepoLayout.CoreDll, environment);

    /// <summary>After core's process was killed (ContainerStackFixture removes the container, which outlives its client).</summary>
    protected virtual Task CoreStoppedAsync() => Task.CompletedTask;

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
        if (await KillAsync(_core, "core") is { } output)
        {
            _lastCoreOutput = output;
            _core = null;
            await CoreStoppedAsync();
        }
    }

    /// <summary>SIGKILLs <paramref name="process"/> and waits for its whole tree; its output (kept for diagnostics), or null when there was none.</summary>
    private async Task<string?> KillAsync(BackgroundProcess? process, string what)
    {
        if (process is null)
        {
            return null;
        }
        var pid = process.Id;
        var tree = ProcessTree(pid);
        await process.DisposeAsync();
        // Kill(entireProcessTree) only waits for the root (coreutils timeout): wait for the dotnet process itself too, or
        // a restart could bind next to a dying listener (entry's TCP port) or see its socket still accept (core's).
        await WaitForExitAsync(tree, TimeSpan.FromSeconds(15));
        KeepPreviousRun(what, pid, process.Output);
        Step($"{what} killed");
        return process.Output;
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

    internal static int FreeLoopbackPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
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
