using System.Text.RegularExpressions;

namespace Vpn.EndToEnd;

// The lab's servers (the internet's web and metadata servers, the management service, the gRPC stand-in, the DNS
// authority and the foreign resolver, the node's own resolver) and what they saw.
public sealed partial class ConsumerLab
{
    // One HTTP server per "label,address,port" argument, answering each GET with the client's source address and printing
    // "label source" for every accepted connection (so a connection that never sent a request is seen too). No reverse
    // lookups (HTTPServer.server_bind would resolve its own name). Exits by itself after the cap.
    private const string EchoServerScript = LabCommands.EchoHandlerPython + """
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
}

/// <summary>One query as the authority or the foreign resolver logged it.</summary>
public sealed record DnsQuery(string Source, string Name, string Type)
{
    public override string ToString() => $"{Source} asked {Name} {Type}";
}
