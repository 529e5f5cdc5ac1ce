using System.Globalization;
using Vpn.Domain.Addressing;

namespace Vpn.Core.Dns;

/// <summary>
/// Renders unbound.conf for this node's resolver (the unbound sidecar), from core's own settings: what
/// <c>Vpn.Core resolver-config</c> writes. Pure: the same options give the same text.
/// </summary>
/// <remarks>
/// Privacy: verbosity 0 logs errors only, and no query, reply, SERVFAIL or local-action lines. Unbound 1.17 still prints
/// a client's address in a few rare error lines at that level (a TCP read or write to the client failing with an
/// unusual errno, <c>util/netevent.c</c> log_err_addr); clients reach the resolver only through the tunnel, so that is a
/// tunnel address, never the client's public one.
/// </remarks>
public static class ResolverConfig
{
    public const int Port = 53;

    /// <summary>
    /// Never in an answer for a public name (DNS rebinding: a page must not be able to point a client's browser at a
    /// private network, the client's own LAN or localhost). RFC 1918, CGNAT, loopback, link-local, "this network", ULA and
    /// IPv4-mapped IPv6, and :: with ::1. The client pools are added when they lie outside these.
    /// </summary>
    public static readonly IReadOnlyList<IPNetwork> PrivateAddresses =
    [
        IPNetwork.Parse("0.0.0.0/8"),
        IPNetwork.Parse("10.0.0.0/8"),
        IPNetwork.Parse("100.64.0.0/10"),
        IPNetwork.Parse("127.0.0.0/8"),
        IPNetwork.Parse("169.254.0.0/16"),
        IPNetwork.Parse("172.16.0.0/12"),
        IPNetwork.Parse("192.168.0.0/16"),
        IPNetwork.Parse("::/127"), // :: reaches the client device's own localhost, as 0.0.0.0 does
        IPNetwork.Parse("::ffff:0:0/96"),
        IPNetwork.Parse("fc00::/7"),
        IPNetwork.Parse("fe80::/10"),
    ];

    /// <summary>The addresses the resolver listens on and clients are told to use: the gateways of both pools, IPv4 first.</summary>
    public static IReadOnlyList<IPAddress> GatewayAddresses(CoreOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return [Ipv4Network.ToAddress(options.ClientPool.Base + 1), options.ClientPool6.Gateway];
    }

    public static string Render(CoreOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var pool4 = IPNetwork.Parse(options.ClientPool.ToString());
        var pool6 = options.ClientPool6.Network;
        var text = new StringBuilder();
        void Line(string line) => text.Append(line).Append('\n');
        void Server(string line) => Line("    " + line);

        Line("# unbound.conf of this node's resolver, rendered by `Vpn.Core resolver-config` from core's settings.");
        Line("# Do not edit: it is rendered again on every start.");
        Line("server:");
        // Only the gateways: nothing else on the node (its public address included) answers DNS. ip-freebind: the
        // resolver may start before core has put these addresses on the tunnel interface.
        foreach (var gateway in GatewayAddresses(options))
        {
            Server($"interface: {gateway}");
        }
        Server(string.Create(CultureInfo.InvariantCulture, $"port: {Port}"));
        Server("ip-freebind: yes");
        Server("do-ip4: yes");
        Server("do-ip6: yes");
        Server("do-udp: yes");
        Server("do-tcp: yes");
        if (!options.Ipv6Egress)
        {
            // No IPv6 path from this node: queries go out over IPv4 only (no IPv6 outgoing interface).
            Server("outgoing-interface: 0.0.0.0");
        }
        // Most specific wins; the explicit localhost lines replace unbound's built-in allow for them.
        Server("access-control: 0.0.0.0/0 refuse");
        Server("access-control: ::/0 refuse");
        Server("access-control: 127.0.0.0/8 refuse");
        Server("access-control: ::1 refuse");
        Server("access-control: ::ffff:127.0.0.1 refuse");
        Server($"access-control: {pool4} allow");
        Server($"access-control: {pool6} allow");
        // The container runs unbound as its unprivileged user (NET_BIND_SERVICE for port 53): no chroot, no user switch.
        Server("chroot: \"\"");
        Server("username: \"\"");
        Server("pidfile: \"\"");
        Server("use-syslog: no");
        Server("logfile: \"\"");
        Server("log-time-ascii: yes");
        Server("verbosity: 0");
        Server("log-queries: no");
        Server("log-replies: no");
        Server("log-servfail: no");
        Server("log-local-actions: no");
        Server("val-log-level: 0");
        Server("statistics-interval: 0");
        Server("statistics-cumulative: no");
        Server("extended-statistics: no");
        Server("hide-identity: yes");
        Server("hide-version: yes");
        Server("hide-trustanchor: yes");
        Server("qname-minimisation: yes");
        Server("minimal-responses: yes");
        foreach (var network in PrivateAddresses)
        {
            Server($"private-address: {network}");
        }
        foreach (var pool in new[] { pool4, pool6 })
        {
            if (!PrivateAddresses.Any(p => Covers(p, pool)))
            {
                Server($"private-address: {pool}");
            }
        }
        var loopbackUpstream = options.DnsUpstreams.Any(u => IPAddress.IsLoopback(CoreOptions.UpstreamAddress(u)));
        if (loopbackUpstream)
        {
            Server("do-not-query-localhost: no");
        }
        if (options.DnsSec)
        {
            Server("module-config: \"validator iterator\"");
            Server($"trust-anchor-file: \"{options.DnsTrustAnchorFile}\"");
        }
        else
        {
            Server("module-config: \"iterator\"");
        }
        Line("remote-control:");
        Line("    control-enable: no");
        if (options.DnsUpstreams.Count > 0)
        {
            Line("forward-zone:");
            Line("    name: \".\"");
            foreach (var upstream in options.DnsUpstreams)
            {
                Line($"    forward-addr: {upstream}");
            }
        }
        return text.ToString();
    }

    private static bool Covers(IPNetwork outer, IPNetwork inner) =>
        outer.BaseAddress.AddressFamily == inner.BaseAddress.AddressFamily && outer.PrefixLength <= inner.PrefixLength
        && outer.Contains(inner.BaseAddress);
}
