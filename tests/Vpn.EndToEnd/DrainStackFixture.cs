using Npgsql;

namespace Vpn.EndToEnd;

/// <summary>
/// Two nodes for the drain tests: the fixture's own node (A, <see cref="VpnLab"/>) and a second one (B) in its own
/// namespace with its own wireguard-go and core process, both cores reconciling with entry and sending heartbeats:
/// <code>
///  client ──veth 10.201.0.0/24── node A ──veth 203.0.113.0/24── inet (.2, HTTP echo of the source address)
///     └────veth 10.202.0.0/24── node B ──veth 198.51.100.0/24─────┘
/// </code>
/// The client reaches either node's endpoint outside the tunnel; inet sees which node NATed a request (A: 203.0.113.1,
/// B: 198.51.100.1).
/// </summary>
public sealed class DrainStackFixture : VpnStackFixture, IAsyncLifetime
{
    public const string NodeBName = "e2e-node-b";
    public const string NodeBClientSideIp = "10.202.0.1";
    public const string NodeBInetSideIp = "198.51.100.1";
    public static readonly string NodeBEndpoint = $"{NodeBClientSideIp}:{VpnLab.NodeListenPort}";

    private NetworkNamespace? _nodeB;
    private WireGuardGo? _nodeBWireGuard;
    private BackgroundProcess? _coreB;
    private string _coreBSocket = "";
    private string _coreBKeyFile = "";

    protected override bool CoreReconcilesWithEntry => true;

    public Guid NodeBId { get; private set; }

    public string NodeBInterface { get; } = NetworkNamespace.UniqueName("wgb");

    public NetworkNamespace NodeB => _nodeB ?? throw new InvalidOperationException("node B not set up");

    public bool CoreBRunning => _coreB is { HasExited: false };

    public string CoreBOutput => _coreB?.Output ?? "";

    protected override void AddEntryEnvironment(IDictionary<string, string?> environment)
    {
        ArgumentNullException.ThrowIfNull(environment);
        environment["APP_CORE_TIMEOUT_MS"] = "15000";
        environment["APP_DRAIN_BATCH_SIZE"] = "2";
        environment["APP_DRAIN_INTERVAL_SECS"] = "1";
    }

    protected override async Task CompleteSetUpAsync(CancellationToken cancellationToken)
    {
        _nodeB = await NetworkNamespace.CreateAsync("eb");
        await NetworkNamespace.ConnectAsync(Lab.Client, "10.202.0.2/24", _nodeB, NodeBClientSideIp + "/24");
        await NetworkNamespace.ConnectAsync(Lab.Inet, "198.51.100.2/24", _nodeB, NodeBInetSideIp + "/24");
        await _nodeB.ExecCheckedAsync("ip", "route", "add", "203.0.113.0/24", "via", "198.51.100.2");
        _nodeBWireGuard = await WireGuardGo.StartAsync(_nodeB, NodeBInterface);
        var keys = await WireGuardKeys.GenerateAsync();
        _coreBKeyFile = keys.WritePrivateKeyFile(Path.Combine(NodeLab.WorkDirectory, "node-b.key"));
        _coreBSocket = Path.Combine(NodeLab.WorkDirectory, "core-b.sock");
        var node = await EntryClient.AdminAsync(HttpMethod.Post, "/v1/admin/nodes", new
        {
            Name = NodeBName,
            Region,
            CountryCode = "DE",
            CityCode = "fra",
            Pool = "default",
            PublicEndpoint = NodeBEndpoint,
            keys.PublicKey,
            CoreEndpoint = "unix:" + _coreBSocket,
            Capacity = 100,
        }, cancellationToken);
        await ExpectStatusAsync(node, HttpStatusCode.Created);
        NodeBId = Guid.Parse(node.Text("id"));
        Step($"node B registered: {NodeBId} in {_nodeB.Name}/{NodeBInterface}");
        await StartCoreBAsync(cancellationToken);
    }

    /// <summary>Starts node B's core and waits for its first healthy heartbeat.</summary>
    public async Task StartCoreBAsync(CancellationToken cancellationToken)
    {
        var since = DateTimeOffset.UtcNow;
        File.Delete(_coreBSocket);
        _coreB = StartCapped(NodeB, RepoLayout.CoreDll, CoreEnvironment(new Dictionary<string, string?>
        {
            ["CORE_GRPC_LISTEN"] = "unix:" + _coreBSocket,
            ["WG_INTERFACE"] = NodeBInterface,
            ["WG_PRIVATE_KEY_FILE"] = _coreBKeyFile,
            ["CORE_NODE_ID"] = NodeBId.ToString(),
        }));
        Step($"core B started (pid {_coreB.Id})");
        var last = "";
        await VpnLab.WaitUntilAsync(async () =>
        {
            if (_coreB.HasExited)
            {
                throw new InvalidOperationException($"core B exited during start:\n{Tail(_coreB.Output)}");
            }
            var (healthy, beat) = await NodeHealthAsync(NodeBId, cancellationToken);
            last = $"healthy={healthy} last_heartbeat_at={beat:O}";
            return healthy && beat >= since - TimeSpan.FromSeconds(1);
        }, TimeSpan.FromSeconds(60), () => $"core B never reported node B healthy ({last}):\n{Tail(_coreB.Output)}", cancellationToken);
        Step("core B synced and reported node B healthy");
    }

    /// <summary>SIGTERM to node B's core (as an orchestrator stops it), then waits until it has exited.</summary>
    public async Task TerminateCoreBAsync()
    {
        var process = _coreB ?? throw new InvalidOperationException("core B is not running");
        // `ip netns exec` execs coreutils `timeout`, which passes the signal on to core.
        (await ProcessRunner.RunAsync("kill", "-TERM", process.Id.ToString(CultureInfo.InvariantCulture))).EnsureSuccess("kill -TERM core B");
        await VpnLab.WaitUntilAsync(() => Task.FromResult(process.HasExited), TimeSpan.FromSeconds(30),
            () => $"core B did not exit after SIGTERM:\n{Tail(process.Output)}");
        Step("core B stopped by SIGTERM");
    }

    /// <summary>The node's row as entry stored it: healthy and when the last heartbeat arrived.</summary>
    public async Task<(bool Healthy, DateTimeOffset? LastHeartbeatAt)> NodeHealthAsync(Guid nodeId, CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(DatabaseConnectionString);
        await connection.OpenAsync(cancellationToken);
        await using var command = new NpgsqlCommand("select healthy, last_heartbeat_at from vpn_nodes where id = @n", connection);
        command.Parameters.AddWithValue("n", nodeId);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken)
            ? (reader.GetBoolean(0), reader.IsDBNull(1) ? null : reader.GetFieldValue<DateTimeOffset>(1))
            : (false, null);
    }

    /// <summary>Device keys of the live (provisioning or active) sessions the database has on the node.</summary>
    public async Task<IReadOnlySet<string>> DatabaseLiveKeysAsync(Guid nodeId, CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(DatabaseConnectionString);
        await connection.OpenAsync(cancellationToken);
        await using var command = new NpgsqlCommand(
            "select device_public_key from sessions where node_id = @n and state in ('provisioning', 'active')", connection);
        command.Parameters.AddWithValue("n", nodeId);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var keys = new HashSet<string>(StringComparer.Ordinal);
        while (await reader.ReadAsync(cancellationToken))
        {
            keys.Add(reader.GetString(0));
        }
        return keys;
    }

    /// <summary>Peers (public keys) of node A's or node B's wireguard-go device right now (<c>wg show IF peers</c>).</summary>
    public Task<IReadOnlyList<string>> NodeBWgShowPeersAsync() => LabCommands.WgShowPeersAsync(NodeB, NodeBInterface);

    public new async ValueTask DisposeAsync()
    {
        if (_coreB is not null)
        {
            await _coreB.DisposeAsync();
        }
        if (_nodeBWireGuard is not null)
        {
            await _nodeBWireGuard.DisposeAsync();
        }
        if (_nodeB is not null)
        {
            await _nodeB.DisposeAsync();
        }
        await base.DisposeAsync();
    }
}
