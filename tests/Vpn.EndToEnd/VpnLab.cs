namespace Vpn.EndToEnd;

/// <summary>
/// The network part of the end-to-end topology, without any of our services:
/// <code>
///  client ──veth 10.201.0.0/24── node ──veth 203.0.113.0/24── inet
///  (.2, wireguard-go)            (.1 / .1, wireguard-go)      (.2, HTTP :8080 echoing the source IP)
/// </code>
/// inet has no route to the client pool (10.64.0.0/24), so a reply only comes back when the node NATs. inet's addresses
/// are public-looking (TEST-NET-3): the node's filter drops tunnel traffic to private destinations.
/// Everything is created with unique names and removed on dispose (processes killed by PID, namespaces by name).
/// </summary>
public sealed class VpnLab : NodeLabBase, INodeLab
{
    public const string NodeClientSideIp = "10.201.0.1";
    public const string ClientIp = "10.201.0.2";
    public const string NodeInetSideIp = "203.0.113.1";
    public const string InetIp = "203.0.113.2";
    public const int InetPort = 8080;
    public const int NodeListenPort = 51820;
    public const string ClientPool = "10.64.0.0/24";
    public const string PoolGateway = "10.64.0.1/24";

    public static readonly string InetUrl = $"http://{InetIp}:{InetPort}/";
    public static readonly string NodeEndpoint = $"{NodeClientSideIp}:{NodeListenPort}";

    /// <summary>Hard cap on every helper process, so nothing outlives a crashed test host for long.</summary>
    public static readonly TimeSpan ProcessLifetimeCap = TimeSpan.FromMinutes(15);

    // An HTTP server answering each GET with the client's source address; exits by itself after the cap.
    private const string EchoServerScript = LabCommands.EchoHandlerPython + """
        threading.Timer(float(sys.argv[3]), lambda: os._exit(0)).start()
        http.server.ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), H).serve_forever()
        """;

    private BackgroundProcess? _inetServer;
    private readonly Func<NetworkNamespace, string, Task<WireGuardGo>> _startNodeDevice;

    private VpnLab(string workDirectory, Func<NetworkNamespace, string, Task<WireGuardGo>>? startNodeDevice)
        : base(workDirectory, NetworkNamespace.UniqueName("wgn"))
    {
        ClientInterface = NetworkNamespace.UniqueName("wgc");
        _startNodeDevice = startNodeDevice ?? WireGuardGo.StartAsync;
    }

    public NetworkNamespace Client { get; private set; } = null!;
    public NetworkNamespace Inet { get; private set; } = null!;

    /// <summary>The node's veth towards inet (where NAT sources from).</summary>
    public string NodeUplink { get; private set; } = "";

    public string ClientInterface { get; }

    string INodeLab.NodeEndpoint => NodeEndpoint;

    string INodeLab.ClientPool => ClientPool;
    public WireGuardGo? ClientWireGuard { get; private set; }

    /// <param name="startNodeDevice">Starts the node's wireguard-go (namespace, interface); a wireguard-go process by
    /// default (ContainerStackFixture: the wireguard-go image).</param>
    public static Task<VpnLab> CreateAsync(Func<NetworkNamespace, string, Task<WireGuardGo>>? startNodeDevice = null) =>
        BuildOrDisposeAsync(new VpnLab(Directory.CreateTempSubdirectory("vpn-e2e-").FullName, startNodeDevice), lab => lab.BuildAsync());

    private async Task BuildAsync()
    {
        Node = await AddNamespaceAsync("en");
        Client = await AddNamespaceAsync("ec");
        Inet = await AddNamespaceAsync("ei");
        await NetworkNamespace.ConnectAsync(Client, ClientIp + "/24", Node, NodeClientSideIp + "/24");
        (_, NodeUplink) = await NetworkNamespace.ConnectAsync(Inet, InetIp + "/24", Node, NodeInetSideIp + "/24");
        // Deliberately no route from inet to 10.64.0.0/24: only NAT on the node can bring replies back.

        _inetServer = Inet.Start("python3", ["-c", EchoServerScript, InetIp, InetPort.ToString(), ProcessLifetimeCap.TotalSeconds.ToString()]);
        await WaitUntilAsync(async () => (await Inet.ExecAsync("curl", "-sS", "--max-time", "1", InetUrl)).StandardOutput.Trim() == InetIp,
            TimeSpan.FromSeconds(15), () => $"echo server on {InetUrl} in {Inet.Name} did not answer: {_inetServer.Output}");

        NodeWireGuard = await _startNodeDevice(Node, NodeInterface);
        ClientWireGuard = await WireGuardGo.StartAsync(Client, ClientInterface);
    }

    public override string ToString() => $"client={Client?.Name}/{ClientInterface} inet={Inet?.Name}";

    /// <summary>One HTTP GET from the client namespace to the inet echo server.</summary>
    public Task<ProcessResult> ClientCurlAsync(TimeSpan maxTime) =>
        Client.ExecAsync("curl", ["-sS", "--max-time", ((int)Math.Ceiling(maxTime.TotalSeconds)).ToString(), InetUrl], null,
            maxTime + TimeSpan.FromSeconds(10));

    /// <summary>Retries the GET (the first handshake takes a moment) until it succeeds or the budget is spent.</summary>
    public async Task<(bool Ok, string Body, string Attempts)> ClientCurlUntilSuccessAsync(TimeSpan budget, CancellationToken cancellationToken = default)
    {
        var log = new StringBuilder();
        var deadline = DateTime.UtcNow + budget;
        while (true)
        {
            var remaining = deadline - DateTime.UtcNow;
            var maxTime = remaining < TimeSpan.FromSeconds(5) ? TimeSpan.FromSeconds(Math.Max(1, remaining.TotalSeconds)) : TimeSpan.FromSeconds(5);
            var result = await ClientCurlAsync(maxTime);
            if (result.ExitCode == 0)
            {
                return (true, result.StandardOutput.Trim(), log.ToString());
            }
            log.AppendLine($"curl exit {result.ExitCode}: {result.StandardError.Trim()}");
            if (DateTime.UtcNow >= deadline)
            {
                return (false, "", log.ToString());
            }
            await Task.Delay(300, cancellationToken);
        }
    }

    /// <summary>
    /// Configures the client's WireGuard device from a wg-quick config (private key already substituted):
    /// <c>wg set</c> (key from a file, peers), the address, link up, default route into the tunnel.
    /// Previous peers/addresses are removed first, so a new session's config can be applied again.
    /// </summary>
    public async Task ConfigureClientAsync(WgQuickConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (config.Interface.PrivateKey is null || config.HasPrivateKeyPlaceholder)
        {
            throw new ArgumentException("Substitute the device private key first.", nameof(config));
        }
        var keyFile = Path.Combine(WorkDirectory, $"{ClientInterface}.key");
        new WireGuardKeys(config.Interface.PrivateKey, "").WritePrivateKeyFile(keyFile);

        foreach (var old in (await Client.ExecCheckedAsync("wg", "show", ClientInterface, "peers")).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            await Client.ExecCheckedAsync("wg", "set", ClientInterface, "peer", old, "remove");
        }
        var args = new List<string> { "set", ClientInterface, "private-key", keyFile };
        foreach (var peer in config.Peers)
        {
            args.AddRange(["peer", peer.PublicKey]);
            if (peer.Endpoint is not null)
            {
                args.AddRange(["endpoint", peer.Endpoint]);
            }
            args.AddRange(["allowed-ips", string.Join(',', peer.AllowedIps)]);
            if (peer.PersistentKeepalive is { } keepalive)
            {
                args.AddRange(["persistent-keepalive", keepalive.ToString()]);
            }
        }
        await Client.ExecCheckedAsync("wg", [.. args]);
        await Client.ExecCheckedAsync("ip", "addr", "flush", "dev", ClientInterface);
        foreach (var address in config.Interface.Addresses)
        {
            await Client.ExecCheckedAsync("ip", "addr", "add", address, "dev", ClientInterface);
        }
        await Client.ExecCheckedAsync("ip", "link", "set", ClientInterface, "up");
        // The connected 10.201.0.0/24 route is more specific, so the endpoint stays reachable outside the tunnel.
        await Client.ExecCheckedAsync("ip", "route", "replace", "default", "dev", ClientInterface);
    }

    /// <summary>Non-secret state for failure messages (<c>wg show</c> prints "(hidden)" for private keys).</summary>
    public async Task<string> DescribeAsync()
    {
        var sb = new StringBuilder();
        Task Add(NetworkNamespace? ns, params string[] command) => LabCommands.AppendAsync(sb, ns, command);
        await AppendNodeStateAsync(sb, dualStack: false);
        await Add(Client, "wg", "show", ClientInterface);
        await Add(Client, "ip", "-br", "addr");
        await Add(Client, "ip", "route");
        sb.AppendLine("--- node wireguard-go output:").AppendLine(NodeWireGuard?.Output);
        sb.AppendLine("--- client wireguard-go output:").AppendLine(ClientWireGuard?.Output);
        sb.AppendLine("--- inet echo server output:").AppendLine(_inetServer?.Output);
        return sb.ToString();
    }

    public override async ValueTask DisposeAsync()
    {
        if (ClientWireGuard is not null)
        {
            await ClientWireGuard.DisposeAsync();
        }
        if (NodeWireGuard is not null)
        {
            await NodeWireGuard.DisposeAsync();
        }
        if (_inetServer is not null)
        {
            await _inetServer.DisposeAsync();
        }
        await RemoveNamespacesAndWorkDirectoryAsync();
    }

    public static async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan timeout, Func<string> describeFailure,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(condition);
        ArgumentNullException.ThrowIfNull(describeFailure);
        var deadline = DateTime.UtcNow + timeout;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Timed out after {timeout.TotalSeconds:0}s: {describeFailure()}");
            }
            await Task.Delay(100, cancellationToken);
        }
    }
}
