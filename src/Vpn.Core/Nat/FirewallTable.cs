namespace Vpn.Core.Nat;

/// <summary>
/// The node's nftables table as data: one description that both drivers program (<c>cli</c> renders it as an nft
/// script, <c>native</c> encodes it as one nf_tables netlink batch), so the two cannot drift apart. The table is of the
/// <c>inet</c> family (IPv4 and IPv6 in one table); base chains always have policy accept, so the table only ever acts
/// on traffic its rules name (the node's other traffic is left to the host's own firewall).
/// </summary>
/// <param name="Name">The table's name; only this table is ever created, replaced or deleted.</param>
/// <param name="Counters">Named counter objects, referenced by <see cref="FirewallRule.Counter"/>.</param>
/// <param name="Chains">In creation order: a chain that is jumped to must come before the rule that jumps (nft resolves
/// names within one transaction either way; netlink needs the chain to exist when the rule arrives).</param>
public sealed record FirewallTable(string Name, IReadOnlyList<string> Counters, IReadOnlyList<FirewallChain> Chains)
{
    public int RuleCount => Chains.Sum(c => c.Rules.Count);
}

public enum ChainType
{
    Filter,
    Nat,
}

public enum ChainHook
{
    Prerouting,
    Input,
    Forward,
    Output,
    Postrouting,
}

/// <summary>A base chain's hook. <see cref="Priority"/> is nft's number (raw -300, dstnat -100, filter 0, srcnat 100).</summary>
public sealed record BaseChain(ChainType Type, ChainHook Hook, int Priority);

/// <param name="Base">Null for a regular chain (reached only by jump).</param>
public sealed record FirewallChain(string Name, BaseChain? Base, IReadOnlyList<FirewallRule> Rules);

/// <summary>
/// Every match must hold (in order), then the optional named counter counts the packet, then <see cref="Action"/> runs.
/// </summary>
public sealed record FirewallRule(IReadOnlyList<FirewallMatch> Matches, string? Counter, FirewallAction Action);

public enum IpFamily
{
    Ipv4,
    Ipv6,
}

public enum TransportProtocol
{
    Tcp,
    Udp,
}

public abstract record FirewallMatch;

/// <summary><c>iifname "wg0"</c> / <c>oifname != "eth0"</c>.</summary>
public sealed record InterfaceMatch(bool Incoming, string Name, bool Negated = false) : FirewallMatch;

/// <summary><c>meta nfproto ipv4|ipv6</c>.</summary>
public sealed record FamilyMatch(IpFamily Family) : FirewallMatch;

/// <summary><c>ip saddr 10.64.0.0/16</c>, <c>ip6 daddr != fd00::/8</c>; the family follows the network's. A /32 or /128 is a single address.</summary>
public sealed record AddressMatch(bool Source, IPNetwork Network, bool Negated = false) : FirewallMatch;

/// <summary><c>udp dport 53</c> / <c>tcp dport 53</c>.</summary>
public sealed record DestinationPortMatch(TransportProtocol Protocol, ushort Port) : FirewallMatch;

/// <summary><c>icmp type echo-request</c> (IPv4) / <c>icmpv6 type echo-request</c> (IPv6).</summary>
public sealed record EchoRequestMatch(IpFamily Family) : FirewallMatch;

/// <summary><c>ct state established,related</c>.</summary>
public sealed record EstablishedOrRelatedMatch : FirewallMatch;

/// <summary><c>ct state invalid</c>: conntrack could not place the packet in any connection (so NAT would not touch it).</summary>
public sealed record InvalidStateMatch : FirewallMatch;

public abstract record FirewallAction;

public sealed record AcceptAction : FirewallAction;

public sealed record DropAction : FirewallAction;

/// <summary><c>reject with icmpx admin-prohibited</c>: ICMP(v6) "administratively prohibited" back to the sender.</summary>
public sealed record RejectAction : FirewallAction;

public sealed record JumpAction(string Chain) : FirewallAction;

public sealed record MasqueradeAction : FirewallAction;

/// <summary><c>dnat ip to A</c> / <c>dnat ip6 to A</c> (the family follows the address).</summary>
public sealed record DestinationNatAction(IPAddress Address) : FirewallAction;
