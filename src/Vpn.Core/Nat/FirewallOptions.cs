using System.Text.RegularExpressions;

namespace Vpn.Core.Nat;

/// <summary>What the node's filter and NAT table protects and translates (see <see cref="NodeFirewall"/>).</summary>
public sealed partial class FirewallOptions
{
    /// <summary>Our nftables table in the <c>inet</c> family; only this table is ever replaced or deleted.</summary>
    public string TableName { get; init; } = "vpn_core";

    /// <summary>The WireGuard interface, e.g. wg0: everything arriving on it is a customer's.</summary>
    public string TunnelInterface { get; init; } = "";

    /// <summary>The IPv4 client pool, e.g. 10.64.0.0/16; masqueraded on the way out.</summary>
    public IPNetwork ClientPool4 { get; init; }

    /// <summary>The IPv6 client pool, e.g. fd64:6400::/64; masqueraded (NAT66) on the way out.</summary>
    public IPNetwork ClientPool6 { get; init; }

    /// <summary>The node's tunnel addresses: the only ones a client may reach on the node itself (DNS, echo).</summary>
    public IPAddress Gateway4 { get; init; } = IPAddress.None;

    public IPAddress Gateway6 { get; init; } = IPAddress.IPv6None;

    /// <summary>WG_UPLINK_INTERFACE: when set, client traffic may leave only through it (and is masqueraded only there).</summary>
    public string? UplinkInterface { get; init; }

    /// <summary>WG_EGRESS_ALLOW: destinations exempted from the built-in private/reserved block (never from <see cref="EgressDeny"/>).</summary>
    public IReadOnlyList<IPNetwork> EgressAllow { get; init; } = [];

    /// <summary>WG_EGRESS_DENY: further destinations no client may reach, e.g. the node's management network when it is public.</summary>
    public IReadOnlyList<IPNetwork> EgressDeny { get; init; } = [];

    /// <summary>WG_IPV6_EGRESS: false refuses clients' IPv6 traffic to the internet with ICMPv6 (nothing leaves; DNS still answers).</summary>
    public bool Ipv6Egress { get; init; } = true;

    /// <summary>Every problem at once, empty when valid. Anything accepted here is safe to place in an nft script.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        CheckInterface(TunnelInterface, "Tunnel interface", errors);
        if (UplinkInterface is not null)
        {
            CheckInterface(UplinkInterface, "Uplink interface", errors);
            if (UplinkInterface == TunnelInterface)
            {
                errors.Add("The uplink interface cannot be the tunnel interface.");
            }
        }
        if (!TableNamePattern().IsMatch(TableName))
        {
            errors.Add($"Table name '{TableName}' must be a letter followed by up to 31 letters, digits or underscores.");
        }
        CheckPool(ClientPool4, AddressFamily.InterNetwork, Gateway4, "IPv4", errors);
        CheckPool(ClientPool6, AddressFamily.InterNetworkV6, Gateway6, "IPv6", errors);
        return errors;
    }

    private static void CheckInterface(string name, string what, List<string> errors)
    {
        if (!Netlink.InterfaceNames.IsValid(name))
        {
            errors.Add($"{what} name '{name}' must be 1-15 characters of A-Z a-z 0-9 _ . -.");
        }
    }

    private static void CheckPool(IPNetwork pool, AddressFamily family, IPAddress gateway, string what, List<string> errors)
    {
        if (pool.BaseAddress is null || pool.BaseAddress.AddressFamily != family || pool.PrefixLength == 0)
        {
            errors.Add($"The {what} client pool is not an {what} network.");
        }
        else if (gateway.AddressFamily != family || !pool.Contains(gateway))
        {
            errors.Add($"The {what} gateway {gateway} is not inside the client pool {pool}.");
        }
    }

    // \z rather than $: $ also matches before a trailing newline.
    [GeneratedRegex(@"^[A-Za-z][A-Za-z0-9_]{0,31}\z")]
    private static partial Regex TableNamePattern();
}
