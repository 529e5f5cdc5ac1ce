namespace Vpn.EndToEnd;

/// <summary>
/// The whole stack on the <see cref="ConsumerLab"/> topology: entry and PostgreSQL as for every end-to-end test, core in
/// the node namespace with the linux dataplane, its filter table programmed by <see cref="NatDriver"/>, egress only via
/// the uplink, /metrics on the node's management address; the node's resolver (unbound) configured by
/// <c>Vpn.Core resolver-config</c> with core's own environment; and clients A and B each with an active session, up
/// with wg-quick from that session's file. Set up once per test class.
/// </summary>
public abstract class ConsumerStackFixture : VpnStackFixture
{
    /// <summary>WG_NAT_DRIVER: "cli" or "native".</summary>
    public abstract string NatDriver { get; }

    /// <summary>False: the IPv4-only node (no IPv6 uplink, WG_IPV6_EGRESS=false).</summary>
    public virtual bool NodeHasIpv6 => true;

    public ConsumerLab Consumer => (ConsumerLab)NodeLab;

    /// <summary>Connections the internet's servers had accepted when setup ended (the underlay proof's among them).</summary>
    public int WebConnectionsAtSetup { get; private set; }

    /// <summary>The session answers' wg-quick files, by client label (with the placeholder, never a key).</summary>
    public IReadOnlyDictionary<string, string> SessionConfigs => _configs;

    private readonly Dictionary<string, string> _configs = [];

    /// <summary>The clients brought up with a session of their own at setup (both by default; the others stay down for a test to use).</summary>
    protected virtual IReadOnlyList<WgQuickClient> ClientsUpAtSetup => [Consumer.A, Consumer.B];

    protected override IEnumerable<string> RequiredTools => [.. base.RequiredTools, "unbound", "dig", "wg-quick", "ping"];

    protected override async Task<INodeLab> CreateLabAsync() => await ConsumerLab.CreateAsync(NodeHasIpv6);

    protected override void AddCoreEnvironment(IDictionary<string, string?> environment)
    {
        ArgumentNullException.ThrowIfNull(environment);
        environment["WG_NAT_DRIVER"] = NatDriver;
        environment["WG_CLIENT_POOL_V6"] = "fd64:6400::/64";
        environment["WG_UPLINK_INTERFACE"] = Consumer.NodeUplink;
        environment["WG_IPV6_EGRESS"] = NodeHasIpv6 ? "true" : "false";
        environment["WG_DNS_UPSTREAMS"] = Consumer.DnsUpstreams;
        // The test authority's zone is unsigned and not delegated from the root: nothing to validate against.
        environment["WG_DNS_DNSSEC"] = "false";
        environment["CORE_METRICS_LISTEN"] = ConsumerLab.MetricsListen;
        environment["CORE_RESOLVER_CHECK"] = "true";
        environment["CORE_RESOLVER_CHECK_SECS"] = "1";
    }

    protected override async Task CompleteSetUpAsync(CancellationToken cancellationToken)
    {
        var lab = Consumer;

        // A leak would be visible: outside the tunnel, each client's home network reaches the web server, which sees the
        // client's own addresses. (Before any tunnel is up; the tests look only at connections after setup.)
        foreach (var client in new[] { lab.A, lab.B })
        {
            foreach (var (family, url, expected) in new[] { (4, $"http://{ConsumerLab.WebIp}:{ConsumerLab.WebPort}/", client.HomeIp),
                (6, $"http://[{ConsumerLab.WebIp6}]:{ConsumerLab.WebPort}/", client.HomeIp6) })
            {
                var direct = await client.CurlAsync(family, url, TimeSpan.FromSeconds(5));
                if (direct.ExitCode != 0 || direct.StandardOutput.Trim() != expected)
                {
                    throw new InvalidOperationException($"client {client.Label}'s home network does not reach {url} directly " +
                        $"(exit {direct.ExitCode}, body '{direct.StandardOutput.Trim()}', {direct.StandardError.Trim()}): the leak tests would prove nothing");
                }
            }
        }
        Step("both home networks reach the web server directly (a leak would show)");

        var resolverConfig = Path.Combine(lab.WorkDirectory, "node-unbound.conf");
        var environment = CoreEnvironment().Where(e => e.Value is not null).ToDictionary(e => e.Key, e => e.Value!);
        var render = await ProcessRunner.RunAsync("dotnet", [RepoLayout.CoreDll, "resolver-config", "--out", resolverConfig], null,
            TimeSpan.FromSeconds(60), environment);
        Step($"resolver-config exit {render.ExitCode}: {render.StandardOutput.Trim()} {render.StandardError.Trim()}");
        render.EnsureSuccess("Vpn.Core.dll resolver-config");
        await lab.StartNodeResolverAsync(resolverConfig);
        Step("node resolver answers on both gateway addresses");

        foreach (var client in ClientsUpAtSetup)
        {
            var keys = await WireGuardKeys.GenerateAsync();
            var device = await CreateCustomerWithDeviceAsync(keys, cancellationToken);
            var (session, _) = await StartSessionUntilCreatedAsync(device, TimeSpan.FromSeconds(60), cancellationToken);
            var text = session.Text("wireguard_config");
            _configs[client.Label] = text;
            await client.UpAsync(text, keys.PrivateKey);
            Step($"{client} up with wg-quick from session {session.Text("session_id")}");
        }
        foreach (var client in ClientsUpAtSetup)
        {
            var last = "";
            await VpnLab.WaitUntilAsync(async () =>
            {
                var ping = await client.ExecAsync(TimeSpan.FromSeconds(10), "ping", "-c", "1", "-W", "1", ConsumerLab.Gateway);
                last = ping.StandardOutput + ping.StandardError;
                return ping.ExitCode == 0;
            }, TimeSpan.FromSeconds(20), () => $"{client} cannot ping the gateway {ConsumerLab.Gateway} through the tunnel: {last}", cancellationToken);
        }
        WebConnectionsAtSetup = lab.Connections("web").Count;
        Step($"{ClientsUpAtSetup.Count} tunnel(s) carry traffic (gateway answers ping)");
    }

    /// <summary>GetNodeStatus.filter_drops as name → packets.</summary>
    public async Task<IReadOnlyDictionary<string, ulong>> FilterDropsAsync(CancellationToken cancellationToken = default)
    {
        var status = await GetNodeStatusAsync(cancellationToken);
        return status.FilterDrops.ToDictionary(c => c.Name, c => c.Packets);
    }

    /// <summary>The table's counters as nft lists them in the node namespace (diagnostics, and a cross-check of core's).</summary>
    public async Task<string> NftCountersAsync()
    {
        var r = await Consumer.Node.ExecAsync("nft", "list", "counters", "table", "inet", "vpn_core");
        return $"exit {r.ExitCode}\n{r.StandardOutput}{r.StandardError}";
    }

    public static string Describe(IReadOnlyDictionary<string, ulong> counters) =>
        string.Join(", ", counters.OrderBy(c => c.Key, StringComparer.Ordinal).Select(c => $"{c.Key}={c.Value}"));

    public static bool IsHomeAddress(ConsumerLab lab, string address)
    {
        ArgumentNullException.ThrowIfNull(lab);
        return new[] { lab.A.HomeIp, lab.A.HomeIp6, lab.B.HomeIp, lab.B.HomeIp6 }.Any(home => SameAddress(home, address));
    }

    public static bool SameAddress(string a, string b) =>
        IPAddress.TryParse(a, out var x) && IPAddress.TryParse(b, out var y) && x.Equals(y);
}

public sealed class CliConsumerStackFixture : ConsumerStackFixture
{
    public override string NatDriver => "cli";
}

public sealed class NativeConsumerStackFixture : ConsumerStackFixture
{
    public override string NatDriver => "native";
}

/// <summary>A node without IPv6: no IPv6 uplink address or upstream, WG_IPV6_EGRESS=false.</summary>
public sealed class CliIpv4OnlyConsumerStackFixture : ConsumerStackFixture
{
    public override string NatDriver => "cli";

    public override bool NodeHasIpv6 => false;
}

public sealed class NativeIpv4OnlyConsumerStackFixture : ConsumerStackFixture
{
    public override string NatDriver => "native";

    public override bool NodeHasIpv6 => false;
}
