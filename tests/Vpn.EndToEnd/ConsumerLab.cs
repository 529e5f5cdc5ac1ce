namespace Vpn.EndToEnd;

/// <summary>
/// A consumer's view of a node, without any of our services: two real wg-quick clients whose home networks are
/// dual-stack and routed to the internet by the node (acting as their ISP router, so anything that went around the
/// tunnel WOULD reach the internet with the client's own address), an internet with a web server, an authoritative DNS
/// server and a "foreign" resolver, and the node's private neighbours a client must never reach.
/// <code>
///  client A ── 192.0.2.0/25, 2001:db8:a::/64 ──┐                         ┌─ internet (all on lo, routed via the uplink)
///  (wg-quick, resolv.conf = the session's DNS)   node ── 203.0.113.0/24 ──┤  198.51.100.80 / 2001:db8:100::80  web :8080 (echoes the source)
///  client B ── 192.0.2.128/25, 2001:db8:b::/64 ─┘  │   2001:db8:1::/64   │  198.51.100.10 / ::10  authority (unbound, logs queries)
///                                                  │   (v6 only with an   │  198.51.100.53 / ::53  foreign resolver (other answers)
///                      wireguard-go (core's device)│    IPv6 uplink)      └─ 169.254.169.254       metadata :80
///                      unbound on 10.64.0.1, fd64:6400::1 (resolver-config)
///                      gRPC stand-in :50051 on every node address
///                      core /metrics on 10.210.0.1:9464
///                                                  └── 10.210.0.0/24, fd10:210::/64 ── management (.2: admin API stand-in :8081)
/// </code>
/// The internet routes the clients' home networks back to the node, never the client pools: replies to tunnel traffic
/// come back only through the node's NAT. IPv6 next hops on the uplink are link-local (fe80::1, fe80::2), so the node
/// routes its clients' home IPv6 even when it has no IPv6 address of its own (<c>ipv6Uplink: false</c>).
/// Processes run under lifetime caps and are killed by PID on dispose (every PID left in our namespaces too), then the
/// namespaces and the clients' /etc/netns entries are deleted.
/// </summary>
public sealed partial class ConsumerLab : NodeLabBase, INodeLab
{
    public const string ClientPoolText = "10.64.0.0/24";
    public const string Gateway = "10.64.0.1";
    public const string Gateway6 = "fd64:6400::1";
    public const int NodeListenPort = 51820;

    public const string NodeUplinkIp = "203.0.113.1";
    public const string InternetUplinkIp = "203.0.113.2";
    public const string NodeUplinkIp6 = "2001:db8:1::1";
    public const string InternetUplinkIp6 = "2001:db8:1::2";

    public const string WebName = "web.example.net";
    public const string WebIp = "198.51.100.80";
    public const string WebIp6 = "2001:db8:100::80";
    public const int WebPort = 8080;
    public const string AuthorityIp = "198.51.100.10";
    public const string AuthorityIp6 = "2001:db8:100::10";
    public const string ForeignResolverIp = "198.51.100.53";
    public const string ForeignResolverIp6 = "2001:db8:100::53";
    /// <summary>What the foreign resolver answers for <see cref="WebName"/> (the authority answers <see cref="WebIp"/>).</summary>
    public const string ForeignAnswerIp = "198.51.100.66";
    public const string ForeignAnswerIp6 = "2001:db8:100::66";
    public const string MetadataIp = "169.254.169.254";

    public const string NodeManagementIp = "10.210.0.1";
    public const string NodeManagementIp6 = "fd10:210::1";
    public const string ManagementServiceIp = "10.210.0.2";
    public const string ManagementServiceIp6 = "fd10:210::2";
    public const int ManagementServicePort = 8081;
    public const int MetricsPort = 9464;
    public const int GrpcStandInPort = 50051;

    public static readonly string MetricsListen = $"{NodeManagementIp}:{MetricsPort}";

    private readonly List<(string Name, BackgroundProcess Process)> _processes = [];
    private readonly List<WgQuickClient> _clients = [];
    private BackgroundProcess? _internetServers;
    private BackgroundProcess? _authority;
    private BackgroundProcess? _foreignResolver;
    private BackgroundProcess? _nodeResolver;

    private ConsumerLab(string workDirectory, bool ipv6Uplink)
        : base(workDirectory, NetworkNamespace.UniqueName("wgn"))
    {
        Ipv6Uplink = ipv6Uplink;
    }

    /// <summary>False: the node has no IPv6 address and no IPv6 path of its own (it still routes its clients' home IPv6).</summary>
    public bool Ipv6Uplink { get; }

    public NetworkNamespace Internet { get; private set; } = null!;
    public NetworkNamespace Management { get; private set; } = null!;
    public WgQuickClient A { get; private set; } = null!;
    public WgQuickClient B { get; private set; } = null!;

    /// <summary>The node's veth towards the internet (WG_UPLINK_INTERFACE).</summary>
    public string NodeUplink { get; private set; } = "";

    public string NodeEndpoint => $"{NodeUplinkIp}:{NodeListenPort}";

    public string ClientPool => ClientPoolText;

    /// <summary>WG_DNS_UPSTREAMS: the authority, over the families the node has.</summary>
    public string DnsUpstreams => Ipv6Uplink ? $"{AuthorityIp},{AuthorityIp6}" : AuthorityIp;

    /// <summary>The node's own addresses on the internet (what NAT sources from): IPv4, then IPv6 when it has an uplink.</summary>
    public IReadOnlyList<string> NodeInternetAddresses => Ipv6Uplink ? [NodeUplinkIp, NodeUplinkIp6] : [NodeUplinkIp];

    public static string WebUrl => $"http://{WebName}:{WebPort}/";

    public static Task<ConsumerLab> CreateAsync(bool ipv6Uplink) =>
        BuildOrDisposeAsync(new ConsumerLab(Directory.CreateTempSubdirectory("vpn-e2e-consumer-").FullName, ipv6Uplink), lab => lab.BuildAsync());

    private async Task BuildAsync()
    {
        Node = await AddNamespaceAsync("cn");
        Internet = await AddNamespaceAsync("ci");
        Management = await AddNamespaceAsync("cm");

        // Uplink: IPv4 always; IPv6 global addresses only with an IPv6 uplink; link-local next hops always (nodad: no
        // duplicate address detection delay, the addresses are ours alone).
        (NodeUplink, var internetUplink) = await NetworkNamespace.ConnectAsync(Node, Internet);
        await Node.ExecCheckedAsync("ip", "addr", "add", NodeUplinkIp + "/24", "dev", NodeUplink);
        await Internet.ExecCheckedAsync("ip", "addr", "add", InternetUplinkIp + "/24", "dev", internetUplink);
        await AddIpv6Async(Node, "fe80::1/64", NodeUplink);
        await AddIpv6Async(Internet, "fe80::2/64", internetUplink);
        if (Ipv6Uplink)
        {
            await AddIpv6Async(Node, NodeUplinkIp6 + "/64", NodeUplink);
            await AddIpv6Async(Internet, InternetUplinkIp6 + "/64", internetUplink);
        }
        await Node.ExecCheckedAsync("ip", "route", "add", "default", "via", InternetUplinkIp);
        await Node.ExecCheckedAsync("ip", "-6", "route", "add", "default", "via", "fe80::2", "dev", NodeUplink);
        // Cloud metadata sits behind the uplink, as on a cloud VM's primary interface.
        await Node.ExecCheckedAsync("ip", "route", "add", MetadataIp + "/32", "via", InternetUplinkIp);

        foreach (var address in new[] { WebIp, AuthorityIp, ForeignResolverIp, MetadataIp })
        {
            await Internet.ExecCheckedAsync("ip", "addr", "add", address + "/32", "dev", "lo");
        }
        foreach (var address in new[] { WebIp6, AuthorityIp6, ForeignResolverIp6 })
        {
            await AddIpv6Async(Internet, address + "/128", "lo");
        }
        // The ISP's routes: the clients' home networks via the node. Deliberately none to the client pools.
        await Internet.ExecCheckedAsync("ip", "route", "add", "192.0.2.0/24", "via", NodeUplinkIp);
        await Internet.ExecCheckedAsync("ip", "-6", "route", "add", "2001:db8:a::/64", "via", "fe80::1", "dev", internetUplink);
        await Internet.ExecCheckedAsync("ip", "-6", "route", "add", "2001:db8:b::/64", "via", "fe80::1", "dev", internetUplink);

        var (nodeManagement, management) = await NetworkNamespace.ConnectAsync(Node, Management);
        await Node.ExecCheckedAsync("ip", "addr", "add", NodeManagementIp + "/24", "dev", nodeManagement);
        await AddIpv6Async(Node, NodeManagementIp6 + "/64", nodeManagement);
        await Management.ExecCheckedAsync("ip", "addr", "add", ManagementServiceIp + "/24", "dev", management);
        await AddIpv6Async(Management, ManagementServiceIp6 + "/64", management);

        // The node routes for its clients' home networks (the ISP part); core enables forwarding for the tunnel too.
        await Node.ExecCheckedAsync("sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1");

        var wrapper = WriteUserspaceWrapper();
        A = await AddClientAsync("A", "ca", "192.0.2.1", "192.0.2.2", 25, "2001:db8:a::1", "2001:db8:a::2", wrapper);
        B = await AddClientAsync("B", "cb", "192.0.2.129", "192.0.2.130", 25, "2001:db8:b::1", "2001:db8:b::2", wrapper);

        var cap = ((int)VpnLab.ProcessLifetimeCap.TotalSeconds).ToString(CultureInfo.InvariantCulture);
        _internetServers = StartServers(Internet, "internet servers", cap,
            $"web,{WebIp},{WebPort}", $"web,{WebIp6},{WebPort}", $"metadata,{MetadataIp},80");
        StartServers(Management, "management service", cap,
            $"admin,{ManagementServiceIp},{ManagementServicePort}", $"admin,{ManagementServiceIp6},{ManagementServicePort}");
        StartServers(Node, "gRPC stand-in", cap, $"grpc,0.0.0.0,{GrpcStandInPort}", $"grpc,::,{GrpcStandInPort}");
        _authority = StartUnbound(Internet, "authority", [AuthorityIp, AuthorityIp6], WebIp, WebIp6);
        _foreignResolver = StartUnbound(Internet, "foreign resolver", [ForeignResolverIp, ForeignResolverIp6], ForeignAnswerIp, ForeignAnswerIp6);

        foreach (var (name, process) in _processes)
        {
            if (name is "internet servers" or "management service" or "gRPC stand-in")
            {
                await VpnLab.WaitUntilAsync(() => Task.FromResult(process.Output.Contains("ready", StringComparison.Ordinal) || process.HasExited),
                    TimeSpan.FromSeconds(15), () => $"{name} did not start: {process.Output}");
                if (process.HasExited)
                {
                    throw new InvalidOperationException($"{name} exited: {process.Output}");
                }
            }
        }
        // Readiness asks for localhost (answered by unbound itself), so every query for WebName in the logs is a test's.
        await WaitForDnsAsync(Internet, AuthorityIp, "localhost", "127.0.0.1", "authority");
        await WaitForDnsAsync(Internet, ForeignResolverIp, "localhost", "127.0.0.1", "foreign resolver");

        NodeWireGuard = await WireGuardGo.StartAsync(Node, NodeInterface);
    }

    private static async Task AddIpv6Async(NetworkNamespace ns, string prefix, string device) =>
        await ns.ExecCheckedAsync("ip", "-6", "addr", "add", prefix, "dev", device, "nodad");

    private async Task<WgQuickClient> AddClientAsync(string label, string prefix, string nodeHome, string home, int length, string nodeHome6,
        string home6, string wrapper)
    {
        var ns = await AddNamespaceAsync(prefix);
        var (nodeSide, clientSide) = await NetworkNamespace.ConnectAsync(Node, ns);
        await Node.ExecCheckedAsync("ip", "addr", "add", $"{nodeHome}/{length}", "dev", nodeSide);
        await AddIpv6Async(Node, nodeHome6 + "/64", nodeSide);
        await ns.ExecCheckedAsync("ip", "addr", "add", $"{home}/{length}", "dev", clientSide);
        await AddIpv6Async(ns, home6 + "/64", clientSide);
        await ns.ExecCheckedAsync("ip", "route", "add", "default", "via", nodeHome);
        await ns.ExecCheckedAsync("ip", "-6", "route", "add", "default", "via", nodeHome6);
        var client = new WgQuickClient(label, ns, NetworkNamespace.UniqueName("wq"), home, home6, WorkDirectory, wrapper);
        _clients.Add(client);
        return client;
    }

    /// <summary>
    /// wg-quick's userspace implementation (WG_QUICK_USERSPACE_IMPLEMENTATION): wireguard-go in the foreground under the
    /// lifetime cap, in the background of this script, which returns once the device answers UAPI — what wireguard-go
    /// does when it daemonizes itself, except that this one dies by itself if the test host is killed.
    /// </summary>
    private string WriteUserspaceWrapper()
    {
        var path = Path.Combine(WorkDirectory, "wireguard-go-capped");
        File.WriteAllText(path, $$"""
            #!/bin/sh
            timeout -k 5 {{(int)VpnLab.ProcessLifetimeCap.TotalSeconds}} wireguard-go -f "$1" </dev/null >"{{WorkDirectory}}/$1.wireguard-go.log" 2>&1 &
            i=0
            while [ "$i" -lt 200 ]; do
              if wg show "$1" >/dev/null 2>&1; then exit 0; fi
              i=$((i+1))
              sleep 0.05
            done
            echo "wireguard-go $1 did not answer UAPI" >&2
            exit 1

            """);
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return path;
    }

    // ---------------------------------------------------------------- INodeLab

    public override string ToString() =>
        $"internet={Internet?.Name} management={Management?.Name} A={A?.Namespace.Name}/{A?.Interface} B={B?.Namespace.Name}/{B?.Interface} ipv6-uplink={Ipv6Uplink}";

    public async Task<string> DescribeAsync()
    {
        var sb = new StringBuilder();
        Task Add(NetworkNamespace? ns, params string[] command) => LabCommands.AppendAsync(sb, ns, command);
        await AppendNodeStateAsync(sb, dualStack: true);
        foreach (var client in _clients)
        {
            await Add(client.Namespace, "wg", "show", client.Interface);
            await Add(client.Namespace, "ip", "-br", "addr");
            await Add(client.Namespace, "ip", "rule");
            await Add(client.Namespace, "ip", "-6", "rule");
            await Add(client.Namespace, "ip", "route", "show", "table", "all");
            await Add(client.Namespace, "ip", "-6", "route", "show", "table", "all");
            await Add(client.Namespace, "cat", "/etc/resolv.conf");
            sb.AppendLine($"--- client {client.Label} wg-quick output:").AppendLine(client.WgQuickOutput);
            sb.AppendLine($"--- client {client.Label} wireguard-go log:").AppendLine(client.ReadWireGuardLog());
        }
        await Add(Internet, "ip", "-br", "addr");
        await Add(Internet, "ip", "route");
        await Add(Internet, "ip", "-6", "route");
        sb.AppendLine("--- node wireguard-go output:").AppendLine(NodeWireGuard?.Output);
        sb.AppendLine("--- node resolver (unbound) output:").AppendLine(_nodeResolver?.Output ?? "(not started)");
        foreach (var (name, process) in _processes.Where(p => p.Process != _nodeResolver))
        {
            sb.AppendLine($"--- {name} output{(process.HasExited ? " (exited)" : "")}:").AppendLine(process.Output);
        }
        return sb.ToString();
    }

    public override async ValueTask DisposeAsync()
    {
        foreach (var (_, process) in _processes)
        {
            await process.DisposeAsync();
        }
        if (NodeWireGuard is not null)
        {
            await NodeWireGuard.DisposeAsync();
        }
        // Whatever still runs in our namespaces (the clients' wireguard-go under their wrapper, anything a failed step left):
        // by PID, TERM first so wireguard-go removes its UAPI socket.
        var leftovers = new List<int>();
        foreach (var ns in Namespaces)
        {
            var pids = await ProcessRunner.RunAsync("ip", "netns", "pids", ns.Name);
            leftovers.AddRange(pids.StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(p => int.Parse(p, CultureInfo.InvariantCulture)));
        }
        await KillAsync(leftovers);
        foreach (var client in _clients)
        {
            client.RemoveFiles();
        }
        await RemoveNamespacesAndWorkDirectoryAsync();
    }

    private static async Task KillAsync(List<int> pids)
    {
        if (pids.Count == 0)
        {
            return;
        }
        foreach (var pid in pids)
        {
            await ProcessRunner.RunAsync("kill", "-TERM", pid.ToString(CultureInfo.InvariantCulture));
        }
        var deadline = DateTime.UtcNow.AddSeconds(3);
        while (pids.Any(p => Directory.Exists($"/proc/{p}")) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
        }
        foreach (var pid in pids.Where(p => Directory.Exists($"/proc/{p}")))
        {
            await ProcessRunner.RunAsync("kill", "-KILL", pid.ToString(CultureInfo.InvariantCulture));
        }
    }
}
