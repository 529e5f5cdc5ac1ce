using Vpn.ServiceDefaults;
using System.Security.Cryptography.X509Certificates;
using Vpn.Domain.Addressing;

namespace Vpn.Core.Configuration;

/// <summary>
/// Core's settings from the operator-facing environment (CORE_*, WG_*, ADMIN_API_TOKEN, APP_ENV), secrets also as
/// NAME_FILE. Validated at start with every problem reported at once.
/// </summary>
public sealed partial class CoreOptions
{
    /// <summary>CORE_GRPC_LISTEN: "host:port" (HTTP/2 cleartext) or "unix:/path.sock". Default 127.0.0.1:50051.</summary>
    public string GrpcListen { get; init; } = "127.0.0.1:50051";

    /// <summary>WG_DATAPLANE: "noop" (no root, nothing programmed) or "linux" (wireguard-go, netlink, nftables).</summary>
    public string Dataplane { get; init; } = "noop";

    /// <summary>WG_INTERFACE: the wireguard-go interface this core drives.</summary>
    public string InterfaceName { get; init; } = "wg0";

    /// <summary>WG_PRIVATE_KEY / WG_PRIVATE_KEY_FILE: the node's WireGuard private key (base64). Required for linux.</summary>
    public WireGuardKey? PrivateKey { get; init; }

    public int ListenPort { get; init; } = 51820;

    /// <summary>WG_CLIENT_POOL: client tunnel network; its first host is the node's own tunnel address.</summary>
    public Ipv4Network ClientPool { get; init; } = Ipv4Network.Parse("10.64.0.0/16");

    /// <summary>
    /// WG_CLIENT_POOL_V6: the IPv6 client network (default fd64:6400::/64, a ULA); each client's IPv6 address mirrors its
    /// IPv4 address's offset in WG_CLIENT_POOL (see <see cref="Ipv6ClientNetwork"/>).
    /// </summary>
    public Ipv6ClientNetwork ClientPool6 { get; init; } = DefaultPool6(Ipv4Network.Parse("10.64.0.0/16"));

    /// <summary>
    /// WG_NAT_DRIVER: how the filter and NAT table is programmed: "cli" (nft -f of a generated ruleset), "native"
    /// (one nf_tables netlink batch from core itself, no nft binary) or "none" (nothing: no NAT, no isolation).
    /// </summary>
    public string NatDriver { get; init; } = "cli";

    /// <summary>WG_NAT_REMOVE_ON_SHUTDOWN: delete the table when core stops (default false: clients keep their isolation and NAT across a core restart).</summary>
    public bool RemoveNatOnShutdown { get; init; }

    /// <summary>WG_UPLINK_INTERFACE: the only interface client traffic may leave by; unset = any but the tunnel.</summary>
    public string? UplinkInterface { get; init; }

    /// <summary>WG_EGRESS_ALLOW: comma-separated CIDRs exempted from the private/reserved destination block.</summary>
    public IReadOnlyList<System.Net.IPNetwork> EgressAllow { get; init; } = [];

    /// <summary>WG_EGRESS_DENY: comma-separated CIDRs clients may never reach (e.g. a public management network).</summary>
    public IReadOnlyList<System.Net.IPNetwork> EgressDeny { get; init; } = [];

    /// <summary>WG_IPV6_EGRESS: false when the node has no IPv6 path to the internet: clients' IPv6 is refused in the tunnel (ICMPv6), never leaked.</summary>
    public bool Ipv6Egress { get; init; } = true;

    /// <summary>
    /// WG_DNS_UPSTREAMS: comma-separated resolvers the node's resolver forwards to (ip or ip@port); unset = full
    /// recursion from the root. Used by <c>resolver-config</c>.
    /// </summary>
    public IReadOnlyList<string> DnsUpstreams { get; init; } = [];

    /// <summary>WG_DNS_DNSSEC: the node's resolver validates DNSSEC (default true).</summary>
    public bool DnsSec { get; init; } = true;

    /// <summary>CORE_RESOLVER_CHECK: core asks the resolver on the gateway addresses a question and reports whether it answers (default true with the linux dataplane).</summary>
    public bool ResolverCheck { get; init; }

    /// <summary>CORE_RESOLVER_CHECK_SECS: time between resolver checks (default 10 s, 1-3600).</summary>
    public TimeSpan ResolverCheckInterval { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// WG_DNS_TRUST_ANCHOR_FILE: the DNSSEC root trust anchor the resolver reads (absolute path, in the resolver's
    /// image, not core's). Default /usr/share/dns/root.key from Debian's dns-root-data. Used with WG_DNS_DNSSEC.
    /// </summary>
    public string DnsTrustAnchorFile { get; init; } = "/usr/share/dns/root.key";

    /// <summary>WG_UAPI_SOCKET_DIR: where wireguard-go puts its UAPI sockets.</summary>
    public string UapiSocketDirectory { get; init; } = "/var/run/wireguard";

    /// <summary>
    /// CORE_ENTRY_URL: entry's base address, <c>http(s)://host:port</c> or <c>unix:/path/entry.sock</c> (HTTP over a unix
    /// socket, for a core inside a network namespace on entry's host). With CORE_NODE_ID it enables heartbeats and
    /// reconciliation; both unset disables them.
    /// </summary>
    public Uri? EntryUrl { get; init; }

    public Guid? NodeId { get; init; }

    public string? AdminToken { get; init; }

    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>CORE_RECONCILE_SECS: time between reconciliation passes (a failed pass is retried sooner). Default 30 s.</summary>
    public TimeSpan ReconcileInterval { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// CORE_RECONCILE_GRACE_SECS: how long a peer added by Connect survives reconciliation while the database does not
    /// (yet) list its session as active, and how long a session removed by Disconnect is not re-added from a desired
    /// set that still lists it. Covers entry's commit after Connect. Default 120 s.
    /// </summary>
    public TimeSpan ReconcileGrace { get; init; } = TimeSpan.FromSeconds(120);

    /// <summary>
    /// CORE_ADDRESS_QUARANTINE_SECS: how long a released client address rests before it is handed out again. Default 180 s,
    /// the lifetime of WireGuard session keys; production refuses less.
    /// </summary>
    public TimeSpan AddressQuarantine { get; init; } = TimeSpan.FromSeconds(180);

    /// <summary>
    /// CORE_PEER_IDLE_WIPE_SECS: a peer whose last handshake is this old loses its endpoint (the client's source address),
    /// so an idle customer's address is not in the node's memory; zero turns it off. Default 180 s, WireGuard's
    /// REJECT_AFTER_TIME: while data flows a handshake is never older; production refuses a shorter window.
    /// </summary>
    public TimeSpan PeerIdleWipe { get; init; } = TimeSpan.FromSeconds(180);

    /// <summary>
    /// Not an environment setting: the named network namespace (<c>/var/run/netns/NAME</c>) that holds the interface,
    /// for a core that drives a device from outside it (tests). Null: core's own namespace.
    /// </summary>
    internal string? NetworkNamespace { get; init; }

    /// <summary>
    /// CORE_METRICS_LISTEN: "host:port" of an HTTP/1.1 endpoint serving /metrics (Prometheus text) and the kubelet's probes
    /// /healthz and /readyz; unset = none.
    /// </summary>
    public string? MetricsListen { get; init; }

    /// <summary>
    /// CORE_TLS_CERT_FILE and CORE_TLS_KEY_FILE (PEM): the gRPC endpoint's certificate; with them a TCP endpoint speaks
    /// only TLS (HTTP/2 by ALPN). A unix socket endpoint stays cleartext: it is reachable on this host only.
    /// </summary>
    public X509Certificate2? TlsCertificate { get; init; }

    /// <summary>
    /// CORE_TLS_CLIENT_CA_FILE (PEM): clients must present a certificate issued by one of these (mTLS), for client
    /// authentication. gRPC callers carry no other credential, so this is what keeps anyone who reaches the port from
    /// adding or removing peers.
    /// </summary>
    public X509Certificate2Collection? TlsClientAuthorities { get; init; }

    /// <summary>CORE_REQUIRE_TLS: refuse to start a TCP gRPC endpoint without TLS and mTLS (default and required in production).</summary>
    public bool RequireTls { get; init; }

    public bool IsLinux => Dataplane == "linux";

    /// <summary>Reconciliation (and the heartbeat) run only with a place to pull the truth from.</summary>
    public bool ReconcileEnabled => EntryUrl is not null && NodeId is not null;

    public static CoreOptions Load(IConfiguration configuration, out IReadOnlyList<string> errors)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var problems = new List<string>();
        var production = string.Equals(configuration["APP_ENV"], "production", StringComparison.OrdinalIgnoreCase);
        var dataplane = (configuration["WG_DATAPLANE"] ?? "noop").ToLowerInvariant();
        if (dataplane is not ("noop" or "linux"))
        {
            problems.Add("WG_DATAPLANE must be 'noop' or 'linux'.");
        }
        if (production && dataplane == "noop")
        {
            problems.Add("WG_DATAPLANE=noop is refused in production.");
        }
        var natDriver = (configuration["WG_NAT_DRIVER"] ?? "cli").ToLowerInvariant();
        if (natDriver is not ("cli" or "native" or "none"))
        {
            problems.Add("WG_NAT_DRIVER must be 'cli', 'native' or 'none'.");
        }
        if (production && natDriver == "none")
        {
            problems.Add("WG_NAT_DRIVER=none is refused in production: clients would be neither isolated nor translated.");
        }
        WireGuardKey? privateKey = null;
        var keyText = Settings.Secret(configuration, "WG_PRIVATE_KEY", problems);
        if (keyText is not null)
        {
            if (WireGuardKey.TryParseBase64(keyText, out var key) && !key.IsZero)
            {
                privateKey = key;
            }
            else
            {
                problems.Add("WG_PRIVATE_KEY is not a base64 WireGuard key.");
            }
        }
        else if (dataplane == "linux")
        {
            problems.Add("WG_PRIVATE_KEY or WG_PRIVATE_KEY_FILE is required with WG_DATAPLANE=linux.");
        }
        var iface = configuration["WG_INTERFACE"] ?? "wg0";
        if (!Netlink.InterfaceNames.IsValid(iface))
        {
            problems.Add("WG_INTERFACE must be 1-15 letters, digits, '_', '-' or '.'.");
        }
        var poolText = configuration["WG_CLIENT_POOL"] ?? "10.64.0.0/16";
        if (!Ipv4Network.TryParse(poolText, out var pool) || pool.PrefixLength is < 8 or > 29)
        {
            problems.Add("WG_CLIENT_POOL must be an IPv4 network between /8 and /29, e.g. 10.64.0.0/16.");
            pool = Ipv4Network.Parse("10.64.0.0/16");
        }
        var pool6Text = configuration["WG_CLIENT_POOL_V6"] ?? "fd64:6400::/64";
        if (!Ipv6ClientNetwork.TryCreate(pool6Text, pool, out var pool6, out var pool6Error))
        {
            problems.Add($"WG_CLIENT_POOL_V6: {pool6Error}");
            pool6 = DefaultPool6(pool);
        }
        var uplink = configuration["WG_UPLINK_INTERFACE"] is { Length: > 0 } uplinkText ? uplinkText : null;
        if (uplink is not null && !Netlink.InterfaceNames.IsValid(uplink))
        {
            problems.Add("WG_UPLINK_INTERFACE must be 1-15 letters, digits, '_', '-' or '.'.");
            uplink = null;
        }
        else if (uplink is not null && uplink == iface)
        {
            problems.Add("WG_UPLINK_INTERFACE cannot be WG_INTERFACE.");
            uplink = null;
        }
        if (production && uplink is null && natDriver != "none")
        {
            problems.Add("WG_UPLINK_INTERFACE is required in production: client traffic may leave only by the node's uplink.");
        }
        Uri? entryUrl = null;
        if (configuration["CORE_ENTRY_URL"] is { Length: > 0 } entryText && !TryParseEntryUrl(entryText, out entryUrl))
        {
            problems.Add("CORE_ENTRY_URL must be http(s)://host[:port] or unix:/absolute/path.sock.");
        }
        Guid? nodeId = null;
        if (configuration["CORE_NODE_ID"] is { Length: > 0 } nodeText)
        {
            nodeId = Guid.TryParse(nodeText, out var id) ? id : null;
            if (nodeId is null)
            {
                problems.Add("CORE_NODE_ID must be a UUID.");
            }
        }
        var adminToken = Settings.Secret(configuration, "ADMIN_API_TOKEN", problems);
        if (entryUrl is not null && (nodeId is null || string.IsNullOrEmpty(adminToken)))
        {
            problems.Add("CORE_ENTRY_URL needs CORE_NODE_ID and ADMIN_API_TOKEN for heartbeats and reconciliation.");
        }
        var quarantineSeconds = Settings.Number(configuration, "CORE_ADDRESS_QUARANTINE_SECS", 180, 0, 86_400, problems);
        if (production && quarantineSeconds < 180)
        {
            problems.Add("CORE_ADDRESS_QUARANTINE_SECS below 180 (the lifetime of WireGuard session keys) is refused in production.");
        }
        var idleWipeSeconds = Settings.Number(configuration, "CORE_PEER_IDLE_WIPE_SECS", 180, 0, 86_400, problems);
        if (production && idleWipeSeconds is > 0 and < 180)
        {
            problems.Add("CORE_PEER_IDLE_WIPE_SECS between 1 and 179 is refused in production: a tunnel carrying data can have a handshake up to 180 s old.");
        }
        var grpcListen = configuration["CORE_GRPC_LISTEN"] ?? "127.0.0.1:50051";
        var (tlsCertificate, clientAuthorities, requireTls) = LoadTls(configuration, production, grpcListen, problems);
        var options = new CoreOptions
        {
            TlsCertificate = tlsCertificate,
            TlsClientAuthorities = clientAuthorities,
            RequireTls = requireTls,
            GrpcListen = grpcListen,
            MetricsListen = MetricsEndpoint(configuration["CORE_METRICS_LISTEN"], problems),
            Dataplane = dataplane,
            InterfaceName = iface,
            PrivateKey = privateKey,
            ListenPort = Settings.Number(configuration, "WG_LISTEN_PORT", 51820, 1, 65535, problems),
            ClientPool = pool,
            NatDriver = natDriver,
            ClientPool6 = pool6,
            RemoveNatOnShutdown = Settings.Flag(configuration, "WG_NAT_REMOVE_ON_SHUTDOWN", false, problems),
            UplinkInterface = uplink,
            EgressAllow = Networks(configuration, "WG_EGRESS_ALLOW", problems),
            EgressDeny = Networks(configuration, "WG_EGRESS_DENY", problems),
            Ipv6Egress = Settings.Flag(configuration, "WG_IPV6_EGRESS", true, problems),
            DnsUpstreams = Upstreams(configuration["WG_DNS_UPSTREAMS"], problems),
            DnsSec = Settings.Flag(configuration, "WG_DNS_DNSSEC", true, problems),
            ResolverCheck = Settings.Flag(configuration, "CORE_RESOLVER_CHECK", dataplane == "linux", problems),
            ResolverCheckInterval = TimeSpan.FromSeconds(Settings.Number(configuration, "CORE_RESOLVER_CHECK_SECS", 10, 1, 3600, problems)),
            DnsTrustAnchorFile = TrustAnchorFile(configuration["WG_DNS_TRUST_ANCHOR_FILE"], problems),
            UapiSocketDirectory = configuration["WG_UAPI_SOCKET_DIR"] ?? "/var/run/wireguard",
            EntryUrl = entryUrl,
            NodeId = nodeId,
            AdminToken = adminToken,
            HeartbeatInterval = TimeSpan.FromSeconds(Settings.Number(configuration, "CORE_HEARTBEAT_SECS", 15, 1, 3600, problems)),
            ReconcileInterval = TimeSpan.FromSeconds(Settings.Number(configuration, "CORE_RECONCILE_SECS", 30, 1, 3600, problems)),
            ReconcileGrace = TimeSpan.FromSeconds(Settings.Number(configuration, "CORE_RECONCILE_GRACE_SECS", 120, 1, 3600, problems)),
            AddressQuarantine = TimeSpan.FromSeconds(quarantineSeconds),
            PeerIdleWipe = TimeSpan.FromSeconds(idleWipeSeconds),
        };
        // The resolver sends its queries over IPv4 only on such a node (ResolverConfig), so an IPv6 upstream would never answer.
        if (!options.Ipv6Egress && options.DnsUpstreams.Any(u => UpstreamAddress(u) is { AddressFamily: System.Net.Sockets.AddressFamily.InterNetworkV6 } a && !System.Net.IPAddress.IsLoopback(a)))
        {
            problems.Add("WG_DNS_UPSTREAMS lists an IPv6 resolver, but WG_IPV6_EGRESS=false says the node has no IPv6 path to the internet.");
        }
        errors = problems;
        return options;
    }
}
