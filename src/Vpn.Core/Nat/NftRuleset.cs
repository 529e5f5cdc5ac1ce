using System.Globalization;

namespace Vpn.Core.Nat;

/// <summary>Pure renderer of a <see cref="FirewallTable"/> as the nft script the <c>cli</c> driver feeds to <c>nft -f -</c>.</summary>
public static class NftRuleset
{
    /// <summary>
    /// One nft transaction that replaces our table and nothing else: declaring the table first makes the delete succeed
    /// when it does not exist yet, and nft applies the whole file atomically.
    /// </summary>
    public static string Render(FirewallTable table)
    {
        ArgumentNullException.ThrowIfNull(table);
        var script = new StringBuilder();
        script.Append(RenderDelete(table.Name));
        script.Append(CultureInfo.InvariantCulture, $"table inet {table.Name} {{\n");
        foreach (var counter in table.Counters)
        {
            script.Append(CultureInfo.InvariantCulture, $"    counter {counter} {{}}\n");
        }
        foreach (var chain in table.Chains)
        {
            script.Append(CultureInfo.InvariantCulture, $"    chain {chain.Name} {{\n");
            if (chain.Base is { } hook)
            {
                script.Append(CultureInfo.InvariantCulture,
                    $"        type {Type(hook.Type)} hook {Hook(hook.Hook)} priority {hook.Priority}; policy accept;\n");
            }
            foreach (var rule in chain.Rules)
            {
                script.Append("        ").Append(RenderRule(rule)).Append('\n');
            }
            script.Append("    }\n");
        }
        script.Append("}\n");
        return script.ToString();
    }

    /// <summary>Deletes our table; succeeds whether or not it exists.</summary>
    public static string RenderDelete(string tableName) => $"table inet {tableName} {{}}\ndelete table inet {tableName}\n";

    /// <summary>One rule in nft's syntax, e.g. <c>iifname "wg0" ip daddr 10.0.0.0/8 counter name "tunnel_to_private" drop</c>.</summary>
    public static string RenderRule(FirewallRule rule)
    {
        ArgumentNullException.ThrowIfNull(rule);
        var parts = rule.Matches.Select(RenderMatch).ToList();
        if (rule.Counter is { } counter)
        {
            parts.Add($"counter name \"{counter}\"");
        }
        parts.Add(rule.Action switch
        {
            AcceptAction => "accept",
            DropAction => "drop",
            RejectAction => "reject with icmpx admin-prohibited",
            JumpAction jump => $"jump {jump.Chain}",
            MasqueradeAction => "masquerade",
            DestinationNatAction dnat => $"dnat {Family(dnat.Address)} to {dnat.Address}",
            _ => throw new ArgumentException($"Unknown action {rule.Action}.", nameof(rule)),
        });
        return string.Join(' ', parts);
    }

    private static string RenderMatch(FirewallMatch match) => match switch
    {
        InterfaceMatch m => $"{(m.Incoming ? "iifname" : "oifname")} {(m.Negated ? "!= " : "")}\"{m.Name}\"",
        FamilyMatch m => $"meta nfproto {(m.Family == IpFamily.Ipv4 ? "ipv4" : "ipv6")}",
        AddressMatch m => $"{Family(m.Network.BaseAddress)} {(m.Source ? "saddr" : "daddr")} {(m.Negated ? "!= " : "")}{Network(m.Network)}",
        DestinationPortMatch m => $"{(m.Protocol == TransportProtocol.Udp ? "udp" : "tcp")} dport {m.Port}",
        EchoRequestMatch m => m.Family == IpFamily.Ipv4 ? "icmp type echo-request" : "icmpv6 type echo-request",
        EstablishedOrRelatedMatch => "ct state established,related",
        InvalidStateMatch => "ct state invalid",
        _ => throw new ArgumentException($"Unknown match {match}.", nameof(match)),
    };

    private static string Family(IPAddress address) => address.AddressFamily == AddressFamily.InterNetwork ? "ip" : "ip6";

    // A single address prints without its prefix, as nft lists it.
    private static string Network(IPNetwork network) =>
        network.PrefixLength == (network.BaseAddress.AddressFamily == AddressFamily.InterNetwork ? 32 : 128)
            ? network.BaseAddress.ToString()
            : network.ToString();

    private static string Type(ChainType type) => type == ChainType.Nat ? "nat" : "filter";

    private static string Hook(ChainHook hook) => hook switch
    {
        ChainHook.Prerouting => "prerouting",
        ChainHook.Input => "input",
        ChainHook.Forward => "forward",
        ChainHook.Output => "output",
        _ => "postrouting",
    };
}
