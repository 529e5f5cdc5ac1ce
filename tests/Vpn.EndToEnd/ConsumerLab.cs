using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Vpn.Harness;

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
public sealed partial class ConsumerLab : INodeLab
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

    // One HTTP server per "label,address,port" argument, answering each GET with the client's source address and printing
    // "label source" for every accepted connection (so a connection that never sent a request is seen too). No reverse
    // lookups (HTTPServer.server_bind would resolve its own name). Exits by itself after the cap.
    private const string EchoServerScript = """
        import http.server, os, socket, socketserver, sys, threading
        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = self.client_address[0].encode()
                self.send_response(200)
                self.send_header('Content-Type', 'text/plain')
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            def log_message(self, *args):
                pass
        def server(label, host, port):
            v6 = ':' in host
            class S(socketserver.ThreadingMixIn, socketserver.TCPServer):
                address_family = socket.AF_INET6 if v6 else socket.AF_INET
                allow_reuse_address = True
                daemon_threads = True
                def server_bind(self):
                    if v6:
                        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                    socketserver.TCPServer.server_bind(self)
                def verify_request(self, request, client_address):
                    print(label, client_address[0], flush=True)
                    return True
            return S((host, int(port)), H)
        threading.Timer(float(sys.argv[1]), lambda: os._exit(0)).start()
        servers = [server(*spec.split(',')) for spec in sys.argv[2:]]
        for s in servers:
            threading.Thread(target=s.serve_forever, daemon=True).start()
        print('ready', flush=True)
        threading.Event().wait()
        """;

    private readonly List<NetworkNamespace> _namespaces = [];
    private readonly List<(string Name, BackgroundProcess Process)> _processes = [];
    private readonly List<WgQuickClient> _clients = [];
    private BackgroundProcess? _internetServers;
    private BackgroundProcess? _authority;
    private BackgroundProcess? _foreignResolver;
    private BackgroundProcess? _nodeResolver;

    private ConsumerLab(string workDirectory, bool ipv6Uplink)
    {
        WorkDirectory = workDirectory;
        Ipv6Uplink = ipv6Uplink;
        NodeInterface = NetworkNamespace.UniqueName("wgn");
    }

    /// <summary>False: the node has no IPv6 address and no IPv6 path of its own (it still routes its clients' home IPv6).</summary>
    public bool Ipv6Uplink { get; }

    public NetworkNamespace Node { get; private set; } = null!;
    public NetworkNamespace Internet { get; private set; } = null!;
    public NetworkNamespace Management { get; private set; } = null!;
    public WgQuickClient A { get; private set; } = null!;
    public WgQuickClient B { get; private set; } = null!;

    public string WorkDirectory { get; }
    public string NodeInterface { get; }

    /// <summary>The node's veth towards the internet (WG_UPLINK_INTERFACE).</summary>
    public string NodeUplink { get; private set; } = "";

    public WireGuardGo? NodeWireGuard { get; private set; }

    public string NodeEndpoint => $"{NodeUplinkIp}:{NodeListenPort}";

    public string ClientPool => ClientPoolText;

    /// <summary>WG_DNS_UPSTREAMS: the authority, over the families the node has.</summary>
    public string DnsUpstreams => Ipv6Uplink ? $"{AuthorityIp},{AuthorityIp6}" : AuthorityIp;

    /// <summary>The node's own addresses on the internet (what NAT sources from): IPv4, then IPv6 when it has an uplink.</summary>
    public IReadOnlyList<string> NodeInternetAddresses => Ipv6Uplink ? [NodeUplinkIp, NodeUplinkIp6] : [NodeUplinkIp];

    public static string WebUrl => $"http://{WebName}:{WebPort}/";

    public static async Task<ConsumerLab> CreateAsync(bool ipv6Uplink)
    {
        var work = Directory.CreateTempSubdirectory("vpn-e2e-consumer-");
        var lab = new ConsumerLab(work.FullName, ipv6Uplink);
        try
        {
            await lab.BuildAsync();
            return lab;
        }
        catch
        {
            await lab.DisposeAsync();
            throw;
        }
    }

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

    private async Task<NetworkNamespace> AddNamespaceAsync(string prefix)
    {
        var ns = await NetworkNamespace.CreateAsync(prefix);
        _namespaces.Add(ns);
        return ns;
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

    private BackgroundProcess StartServers(NetworkNamespace ns, string name, string cap, params string[] specs)
    {
        var process = ns.Start("python3", ["-c", EchoServerScript, cap, .. specs]);
        _processes.Add((name, process));
        return process;
    }

    /// <summary>An unbound answering <see cref="WebName"/> from local data and logging every query with its source.</summary>
    private BackgroundProcess StartUnbound(NetworkNamespace ns, string name, IReadOnlyList<string> listen, string a, string aaaa)
    {
        var file = Path.Combine(WorkDirectory, name.Replace(' ', '-') + ".conf");
        var text = new StringBuilder("server:\n");
        foreach (var address in listen)
        {
            text.Append("    interface: ").Append(address).Append('\n');
        }
        text.Append($$"""
                port: 53
                do-ip6: yes
                access-control: 0.0.0.0/0 allow
                access-control: ::/0 allow
                username: ""
                chroot: ""
                directory: "{{WorkDirectory}}"
                pidfile: ""
                use-syslog: no
                logfile: ""
                log-queries: yes
                verbosity: 0
                num-threads: 1
                module-config: "iterator"
                local-zone: "example.net." static
                local-data: "{{WebName}}. 60 IN A {{a}}"
                local-data: "{{WebName}}. 60 IN AAAA {{aaaa}}"
            remote-control:
                control-enable: no

            """);
        File.WriteAllText(file, text.ToString());
        return StartUnboundProcess(ns, name, file);
    }

    private BackgroundProcess StartUnboundProcess(NetworkNamespace ns, string name, string configFile)
    {
        var process = ns.Start("timeout", ["-k", "5", ((int)VpnLab.ProcessLifetimeCap.TotalSeconds).ToString(CultureInfo.InvariantCulture),
            "unbound", "-d", "-p", "-c", configFile]);
        _processes.Add((name, process));
        return process;
    }

    private static async Task WaitForDnsAsync(NetworkNamespace ns, string server, string name, string expected, string what)
    {
        var last = "";
        await VpnLab.WaitUntilAsync(async () =>
        {
            var r = await ns.ExecAsync("dig", "+short", "+time=1", "+tries=1", $"@{server}", name, "A");
            last = $"exit {r.ExitCode}: {r.StandardOutput.Trim()} {r.StandardError.Trim()}";
            return r.ExitCode == 0 && r.StandardOutput.Trim() == expected;
        }, TimeSpan.FromSeconds(20), () => $"{what} on {server} in {ns.Name} did not answer {name} A with {expected} (last: {last})");
    }

    /// <summary>
    /// Starts the node's resolver as production's sidecar does (<c>unbound -d -p -c FILE</c>, FILE rendered by
    /// <c>Vpn.Core resolver-config</c>) and waits until it listens (UDP and TCP) on both gateway addresses. Readiness is
    /// read from the sockets rather than asked from the node itself: whether the node can talk to its own gateway
    /// addresses is the filter's business, and is tested (through core's resolver check), not assumed here.
    /// </summary>
    public async Task StartNodeResolverAsync(string configFile)
    {
        _nodeResolver = StartUnboundProcess(Node, "node resolver", configFile);
        var process = _nodeResolver;
        string[] wanted = [$"{Gateway}:53", $"[{Gateway6}]:53"];
        var last = "";
        await VpnLab.WaitUntilAsync(async () =>
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"the node's unbound exited: {process.Output}");
            }
            var udp = (await Node.ExecAsync("ss", "-Hlnu")).StandardOutput;
            var tcp = (await Node.ExecAsync("ss", "-Hlnt")).StandardOutput;
            last = $"udp:\n{udp}tcp:\n{tcp}";
            return wanted.All(w => udp.Contains(w, StringComparison.Ordinal) && tcp.Contains(w, StringComparison.Ordinal));
        }, TimeSpan.FromSeconds(20), () => $"the node's resolver does not listen on {string.Join(" and ", wanted)} (last:\n{last}); output: {process.Output}");
    }

    // ---------------------------------------------------------------- what the internet saw

    /// <summary>Every connection an internet or management server accepted, in order: (label, source address).</summary>
    public IReadOnlyList<(string Label, string Source)> Connections(string label) =>
        [.. ParseConnections(_internetServers?.Output ?? "").Concat(_processes.Where(p => p.Name is "management service" or "gRPC stand-in")
            .SelectMany(p => ParseConnections(p.Process.Output))).Where(c => c.Label == label)];

    private static IEnumerable<(string Label, string Source)> ParseConnections(string output) =>
        output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(line => line.Split(' '))
            .Where(parts => parts.Length == 2)
            .Select(parts => (parts[0], parts[1]));

    /// <summary>The queries the authority was asked, in order: (source address, name, type).</summary>
    public IReadOnlyList<DnsQuery> AuthorityQueries => ParseQueries(_authority?.Output ?? "");

    /// <summary>The queries the foreign resolver was asked, in order.</summary>
    public IReadOnlyList<DnsQuery> ForeignResolverQueries => ParseQueries(_foreignResolver?.Output ?? "");

    // unbound's log-queries line: "[1701530000] unbound[123:0] info: 203.0.113.1 web.example.net. A IN".
    [GeneratedRegex(@"info: (?<source>\S+) (?<name>\S+)\. (?<type>\S+) IN$", RegexOptions.Multiline)]
    private static partial Regex QueryLine();

    private static List<DnsQuery> ParseQueries(string output) =>
        [.. QueryLine().Matches(output.Replace("\r", "", StringComparison.Ordinal))
            .Select(m => new DnsQuery(m.Groups["source"].Value, m.Groups["name"].Value, m.Groups["type"].Value))];

    // ---------------------------------------------------------------- INodeLab

    public async Task RestartNodeWireGuardAsync()
    {
        var crashed = NodeWireGuard;
        NodeWireGuard = null; // disposed by the restart, so not again by DisposeAsync should the restart fail
        NodeWireGuard = await LabCommands.RestartWireGuardAsync(Node, NodeInterface, crashed);
    }

    public Task<IReadOnlyList<string>> NodeWgShowPeersAsync() => LabCommands.WgShowPeersAsync(Node, NodeInterface);

    public override string ToString() =>
        $"internet={Internet?.Name} management={Management?.Name} A={A?.Namespace.Name}/{A?.Interface} B={B?.Namespace.Name}/{B?.Interface} ipv6-uplink={Ipv6Uplink}";

    public async Task<string> DescribeAsync()
    {
        var sb = new StringBuilder();
        Task Add(NetworkNamespace? ns, params string[] command) => LabCommands.AppendAsync(sb, ns, command);
        await Add(Node, "wg", "show", NodeInterface);
        await Add(Node, "ip", "-br", "addr");
        await Add(Node, "ip", "route");
        await Add(Node, "ip", "-6", "route");
        await Add(Node, "sysctl", "net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding");
        await Add(Node, "nft", "list", "ruleset");
        await Add(Node, "ss", "-lntup");
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

    public async ValueTask DisposeAsync()
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
        foreach (var ns in _namespaces)
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
        for (var i = _namespaces.Count - 1; i >= 0; i--)
        {
            await _namespaces[i].DisposeAsync();
        }
        try
        {
            Directory.Delete(WorkDirectory, recursive: true);
        }
        catch (IOException)
        {
        }
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

/// <summary>One query as the authority or the foreign resolver logged it.</summary>
public sealed record DnsQuery(string Source, string Name, string Type)
{
    public override string ToString() => $"{Source} asked {Name} {Type}";
}
