namespace Vpn.Core.Tests.Nat;

/// <summary>Firewall options the NAT tests share: one node's pools and the variants the operator can configure.</summary>
internal static class FirewallSamples
{
    /// <summary>Names of <see cref="Variant"/>s, for theories.</summary>
    public static TheoryData<string> Variants => ["default", "uplink", "egress-lists", "no-ipv6-egress", "everything"];

    public static FirewallOptions Options(string tunnel = "wg0", string table = "vpn_core", string? uplink = null,
        IReadOnlyList<string>? allow = null, IReadOnlyList<string>? deny = null, bool ipv6Egress = true,
        string pool4 = "10.64.0.0/16", string gateway4 = "10.64.0.1") => new()
        {
            TableName = table,
            TunnelInterface = tunnel,
            ClientPool4 = IPNetwork.Parse(pool4),
            ClientPool6 = IPNetwork.Parse("fd64:6400::/64"),
            Gateway4 = IPAddress.Parse(gateway4),
            Gateway6 = IPAddress.Parse("fd64:6400::1"),
            UplinkInterface = uplink,
            EgressAllow = (allow ?? []).Select(IPNetwork.Parse).ToList(),
            EgressDeny = (deny ?? []).Select(IPNetwork.Parse).ToList(),
            Ipv6Egress = ipv6Egress,
        };

    // Lists with byte-aligned, unaligned and single-address entries of both families: each encodes differently.
    private static readonly string[] Allow = ["10.1.2.0/24", "192.168.7.7/32", "172.20.0.0/14", "fd00:1::/48", "fd00:2::5/128", "fc00:8000::/17"];
    private static readonly string[] Deny = ["203.0.113.0/25", "198.51.100.7/32", "2001:db8::/32", "2001:db8:ff00::/40", "2001:db8:1::/61"];

    public static FirewallOptions Variant(string name) => name switch
    {
        "default" => Options(),
        "uplink" => Options(uplink: "eth0"),
        "egress-lists" => Options(allow: Allow, deny: Deny),
        "no-ipv6-egress" => Options(ipv6Egress: false),
        "everything" => Options(tunnel: "wg-vpn.1", table: "edge_fw", uplink: "ens3", allow: Allow, deny: Deny, ipv6Egress: false),
        _ => throw new ArgumentOutOfRangeException(nameof(name), name, null),
    };

    public static FirewallTable Table(string variant = "default") => NodeFirewall.Build(Variant(variant));
}
