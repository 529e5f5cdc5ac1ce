namespace Vpn.Core.Nat;

/// <summary>
/// The node's one nftables table, as pure data (<see cref="FirewallTable"/>): what a packet from a tunnel client may
/// reach, how it is translated, and what is counted when it is dropped.
/// <list type="bullet">
/// <item>DNS: plain DNS (UDP and TCP 53) from the tunnel to any address is redirected to the node's resolver on the
/// gateway address of its family, so a client with a hard-coded resolver does not leak queries either.</item>
/// <item>The node itself: only DNS and ICMP echo to the gateway addresses (and replies of what was allowed).</item>
/// <item>Forwarding: never tunnel to tunnel (no customer reaches another); never to private, loopback, link-local
/// (incl. 169.254.169.254), CGNAT, multicast, reserved or ULA destinations, unless the operator allows them; only out
/// of the uplink when one is named; IPv6 refused with ICMPv6 when the node has no IPv6 egress.</item>
/// <item>Anti-spoofing: a tunnel packet must come from the client pools (WireGuard's allowed IPs already ensure a peer's
/// own addresses); a packet from the client pools arriving on any other interface is dropped before routing, so
/// nothing — reverse-path settings included — can let an outsider pose as a client.</item>
/// <item>Inbound: nothing new from outside reaches a client (only replies to its own connections).</item>
/// <item>NAT: both pools masqueraded (IPv4 NAT44, IPv6 NAT66) out of the uplink (any interface but the tunnel when
/// none is named).</item>
/// </list>
/// Drops are counted in named counters (<see cref="Counters"/>), never logged per packet.
/// </summary>
public static class NodeFirewall
{
    /// <summary>Named counters, one per reason a packet is dropped or refused.</summary>
    public static class Counters
    {
        public const string TunnelToTunnel = "tunnel_to_tunnel";
        public const string TunnelToNode = "tunnel_to_node";
        public const string TunnelToPrivate = "tunnel_to_private";
        public const string TunnelNotUplink = "tunnel_not_uplink";
        public const string TunnelIpv6Refused = "tunnel_ipv6_refused";
        public const string TunnelSpoofedSource = "tunnel_spoofed_source";
        public const string OutsideSpoofedPool = "outside_spoofed_pool";
        public const string InboundToTunnel = "inbound_to_tunnel";
        public const string Invalid = "invalid";

        public static IReadOnlyList<string> All { get; } =
            [TunnelToTunnel, TunnelToNode, TunnelToPrivate, TunnelNotUplink, TunnelIpv6Refused, TunnelSpoofedSource, OutsideSpoofedPool, InboundToTunnel, Invalid];
    }

    /// <summary>
    /// Destinations no client may reach unless allowed: IANA special-purpose ranges that are not the public internet
    /// (RFC 6890) — "this network", private (RFC 1918), CGNAT, loopback, link-local (cloud metadata lives at
    /// 169.254.169.254), IETF protocol assignments, benchmarking, multicast, reserved and broadcast.
    /// </summary>
    public static IReadOnlyList<IPNetwork> BlockedIpv4 { get; } =
    [
        IPNetwork.Parse("0.0.0.0/8"), IPNetwork.Parse("10.0.0.0/8"), IPNetwork.Parse("100.64.0.0/10"), IPNetwork.Parse("127.0.0.0/8"),
        IPNetwork.Parse("169.254.0.0/16"), IPNetwork.Parse("172.16.0.0/12"), IPNetwork.Parse("192.0.0.0/24"), IPNetwork.Parse("192.168.0.0/16"),
        IPNetwork.Parse("198.18.0.0/15"), IPNetwork.Parse("224.0.0.0/4"), IPNetwork.Parse("240.0.0.0/4"),
    ];

    /// <summary>
    /// The same for IPv6: IPv4-compatible (incl. unspecified and loopback), IPv4-mapped, NAT64 (well-known and local-use:
    /// a NAT64 gateway on the node's network would hand out private IPv4 and 169.254.169.254 under it), 6to4 (IPv4
    /// embedded likewise), discard-only, unique local (fc00::/7, where clouds put metadata such as fd00:ec2::254),
    /// link-local, site-local and multicast. WG_EGRESS_ALLOW can reopen any of them.
    /// </summary>
    public static IReadOnlyList<IPNetwork> BlockedIpv6 { get; } =
    [
        IPNetwork.Parse("::/96"), IPNetwork.Parse("::ffff:0:0/96"), IPNetwork.Parse("64:ff9b::/96"), IPNetwork.Parse("64:ff9b:1::/48"),
        IPNetwork.Parse("100::/64"), IPNetwork.Parse("2002::/16"),
        IPNetwork.Parse("fc00::/7"), IPNetwork.Parse("fe80::/10"), IPNetwork.Parse("fec0::/10"), IPNetwork.Parse("ff00::/8"),
    ];

    public const string TunnelInputChain = "tunnel_input";
    public const string TunnelForwardChain = "tunnel_forward";

    /// <exception cref="ArgumentException">The options are invalid; the message lists every problem.</exception>
    public static FirewallTable Build(FirewallOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = options.Validate();
        if (errors.Count > 0)
        {
            throw new ArgumentException(string.Join(" ", errors), nameof(options));
        }
        var tunnel = options.TunnelInterface;
        InterfaceMatch FromTunnel() => new(Incoming: true, tunnel);
        InterfaceMatch ToTunnel() => new(Incoming: false, tunnel);
        var gateway4 = Host(options.Gateway4);
        var gateway6 = Host(options.Gateway6);
        // Networks are printed from parsed values (canonical base address), never from the operator's text.
        var pool4 = Canonical(options.ClientPool4);
        var pool6 = Canonical(options.ClientPool6);

        List<FirewallRule> tunnelInput =
        [
            Rule([new EstablishedOrRelatedMatch()], new AcceptAction()),
            Rule([new AddressMatch(false, gateway4), new DestinationPortMatch(TransportProtocol.Udp, 53)], new AcceptAction()),
            Rule([new AddressMatch(false, gateway4), new DestinationPortMatch(TransportProtocol.Tcp, 53)], new AcceptAction()),
            Rule([new AddressMatch(false, gateway6), new DestinationPortMatch(TransportProtocol.Udp, 53)], new AcceptAction()),
            Rule([new AddressMatch(false, gateway6), new DestinationPortMatch(TransportProtocol.Tcp, 53)], new AcceptAction()),
            Rule([new AddressMatch(false, gateway4), new EchoRequestMatch(IpFamily.Ipv4)], new AcceptAction()),
            Rule([new AddressMatch(false, gateway6), new EchoRequestMatch(IpFamily.Ipv6)], new AcceptAction()),
            Rule([], new DropAction(), Counters.TunnelToNode),
        ];

        // Conntrack could not place an invalid packet (e.g. SYN+FIN), so masquerade would let it out with its pool source.
        List<FirewallRule> tunnelForward =
        [
            Rule([new InvalidStateMatch()], new DropAction(), Counters.Invalid),
            Rule([ToTunnel()], new DropAction(), Counters.TunnelToTunnel),
        ];
        if (options.UplinkInterface is { } uplink)
        {
            tunnelForward.Add(Rule([new InterfaceMatch(Incoming: false, uplink, Negated: true)], new DropAction(), Counters.TunnelNotUplink));
        }
        if (!options.Ipv6Egress)
        {
            tunnelForward.Add(Rule([new FamilyMatch(IpFamily.Ipv6)], new RejectAction(), Counters.TunnelIpv6Refused));
        }
        tunnelForward.AddRange(options.EgressDeny.Select(n => Rule([new AddressMatch(false, Canonical(n))], new DropAction(), Counters.TunnelToPrivate)));
        tunnelForward.AddRange(options.EgressAllow.Select(n => Rule([new AddressMatch(false, Canonical(n))], new AcceptAction())));
        tunnelForward.AddRange(BlockedIpv4.Concat(BlockedIpv6).Select(n => Rule([new AddressMatch(false, n)], new DropAction(), Counters.TunnelToPrivate)));
        tunnelForward.Add(Rule([], new AcceptAction()));

        List<FirewallRule> antiSpoof =
        [
            // The node's own traffic to its gateway addresses (e.g. core asking its resolver) comes back over lo with a pool source.
            Rule([new InterfaceMatch(Incoming: true, tunnel, Negated: true), new InterfaceMatch(Incoming: true, "lo", Negated: true),
                new AddressMatch(true, pool4)], new DropAction(), Counters.OutsideSpoofedPool),
            Rule([new InterfaceMatch(Incoming: true, tunnel, Negated: true), new InterfaceMatch(Incoming: true, "lo", Negated: true),
                new AddressMatch(true, pool6)], new DropAction(), Counters.OutsideSpoofedPool),
            // An address match implies its family (nft adds the nfproto check), so an IPv6 packet never fails the IPv4 test.
            Rule([FromTunnel(), new AddressMatch(true, pool4, Negated: true)], new DropAction(), Counters.TunnelSpoofedSource),
            Rule([FromTunnel(), new AddressMatch(true, pool6, Negated: true)], new DropAction(), Counters.TunnelSpoofedSource),
        ];

        List<FirewallRule> dnsRedirect =
        [
            Rule([FromTunnel(), new FamilyMatch(IpFamily.Ipv4), new DestinationPortMatch(TransportProtocol.Udp, 53)], new DestinationNatAction(options.Gateway4)),
            Rule([FromTunnel(), new FamilyMatch(IpFamily.Ipv4), new DestinationPortMatch(TransportProtocol.Tcp, 53)], new DestinationNatAction(options.Gateway4)),
            Rule([FromTunnel(), new FamilyMatch(IpFamily.Ipv6), new DestinationPortMatch(TransportProtocol.Udp, 53)], new DestinationNatAction(options.Gateway6)),
            Rule([FromTunnel(), new FamilyMatch(IpFamily.Ipv6), new DestinationPortMatch(TransportProtocol.Tcp, 53)], new DestinationNatAction(options.Gateway6)),
        ];

        var egress = options.UplinkInterface is { } named
            ? new InterfaceMatch(Incoming: false, named)
            : new InterfaceMatch(Incoming: false, tunnel, Negated: true);
        List<FirewallRule> masquerade =
        [
            Rule([new AddressMatch(true, pool4), egress], new MasqueradeAction()),
            Rule([new AddressMatch(true, pool6), egress], new MasqueradeAction()),
        ];

        return new FirewallTable(options.TableName, Counters.All,
        [
            new FirewallChain(TunnelInputChain, null, tunnelInput),
            new FirewallChain(TunnelForwardChain, null, tunnelForward),
            new FirewallChain("anti_spoof", new BaseChain(ChainType.Filter, ChainHook.Prerouting, -300), antiSpoof),
            new FirewallChain("dns_redirect", new BaseChain(ChainType.Nat, ChainHook.Prerouting, -100), dnsRedirect),
            new FirewallChain("input", new BaseChain(ChainType.Filter, ChainHook.Input, 0),
                [Rule([FromTunnel()], new JumpAction(TunnelInputChain))]),
            new FirewallChain("forward", new BaseChain(ChainType.Filter, ChainHook.Forward, 0),
            [
                Rule([FromTunnel()], new JumpAction(TunnelForwardChain)),
                Rule([ToTunnel(), new InvalidStateMatch()], new DropAction(), Counters.Invalid),
                Rule([ToTunnel(), new EstablishedOrRelatedMatch()], new AcceptAction()),
                Rule([ToTunnel()], new DropAction(), Counters.InboundToTunnel),
            ]),
            new FirewallChain("postrouting", new BaseChain(ChainType.Nat, ChainHook.Postrouting, 100), masquerade),
        ]);
    }

    private static FirewallRule Rule(IReadOnlyList<FirewallMatch> matches, FirewallAction action, string? counter = null) =>
        new(matches, counter, action);

    private static IPNetwork Host(IPAddress address) =>
        new(address, address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128);

    private static IPNetwork Canonical(IPNetwork network) => IPNetwork.Parse($"{network.BaseAddress}/{network.PrefixLength}");
}
