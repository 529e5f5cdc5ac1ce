using System.Text.RegularExpressions;
using Vpn.Domain.Addressing;

namespace Vpn.Core.Nat;

/// <summary>What to masquerade: traffic from <see cref="ClientPool"/> leaving through any interface but <see cref="InterfaceName"/>.</summary>
public sealed partial class NatOptions
{
    /// <summary>The client address pool as an IPv4 CIDR, e.g. 10.64.0.0/16.</summary>
    public string ClientPool { get; set; } = "";

    /// <summary>The WireGuard interface, e.g. wg0.</summary>
    public string InterfaceName { get; set; } = "";

    /// <summary>Our nftables table in the <c>ip</c> family; only this table is ever replaced or deleted.</summary>
    public string TableName { get; set; } = "vpn_core";

    /// <summary>Every problem at once, empty when valid. Anything accepted here is safe to place in an nft script.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (!Ipv4Network.TryParse(ClientPool, out _))
        {
            errors.Add($"Client pool '{ClientPool}' is not an IPv4 CIDR network such as 10.64.0.0/16.");
        }
        // Linux also rejects "." and ".." as interface names.
        if (!InterfaceNamePattern().IsMatch(InterfaceName) || InterfaceName is "." or "..")
        {
            errors.Add($"Interface name '{InterfaceName}' must be 1-15 characters of A-Z a-z 0-9 _ . -.");
        }
        if (!TableNamePattern().IsMatch(TableName))
        {
            errors.Add($"Table name '{TableName}' must be a letter followed by up to 31 letters, digits or underscores.");
        }
        return errors;
    }

    // \z rather than $: $ also matches before a trailing newline.
    [GeneratedRegex(@"^[A-Za-z0-9_.-]{1,15}\z")]
    private static partial Regex InterfaceNamePattern();

    [GeneratedRegex(@"^[A-Za-z][A-Za-z0-9_]{0,31}\z")]
    private static partial Regex TableNamePattern();
}
