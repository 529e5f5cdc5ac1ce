using System.Text;
using Vpn.Domain.Addressing;

namespace Vpn.Core.Nat;

/// <summary>Pure generator of the nft scripts the NAT driver feeds to <c>nft -f -</c>.</summary>
public static class NftRuleset
{
    /// <summary>
    /// One nft transaction that replaces our table and nothing else: declaring the table first makes
    /// the delete succeed when it does not exist yet, and nft applies the whole file atomically.
    /// </summary>
    /// <exception cref="ArgumentException">The options are invalid; the message lists every problem.</exception>
    public static string Render(NatOptions options)
    {
        var (table, pool, interfaceName) = Validated(options);
        var script = new StringBuilder();
        script.Append(RenderDelete(table));
        script.Append($"table ip {table} {{\n");
        script.Append("    chain postrouting {\n");
        script.Append("        type nat hook postrouting priority srcnat; policy accept;\n");
        script.Append($"        ip saddr {pool} oifname != \"{interfaceName}\" masquerade\n");
        script.Append("    }\n");
        script.Append("}\n");
        return script.ToString();
    }

    /// <summary>Deletes our table; succeeds whether or not it exists.</summary>
    public static string RenderDelete(NatOptions options) => RenderDelete(Validated(options).Table);

    private static string RenderDelete(string table) => $"table ip {table} {{}}\ndelete table ip {table}\n";

    private static (string Table, Ipv4Network Pool, string InterfaceName) Validated(NatOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var errors = options.Validate();
        if (errors.Count > 0)
        {
            throw new ArgumentException(string.Join(" ", errors), nameof(options));
        }
        // The pool is printed from the parsed value, never from the operator's text.
        return (options.TableName, Ipv4Network.Parse(options.ClientPool), options.InterfaceName);
    }
}
