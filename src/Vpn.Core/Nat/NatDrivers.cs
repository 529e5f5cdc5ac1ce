using Vpn.Core.Nat.Native;

namespace Vpn.Core.Nat;

/// <summary>Builds the node's table from core's settings and picks the driver WG_NAT_DRIVER names.</summary>
public static class NatDrivers
{
    public static FirewallOptions FirewallOptionsFor(CoreOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return new FirewallOptions
        {
            TunnelInterface = options.InterfaceName,
            ClientPool4 = System.Net.IPNetwork.Parse(options.ClientPool.ToString()),
            ClientPool6 = options.ClientPool6.Network,
            Gateway4 = Domain.Addressing.Ipv4Network.ToAddress(options.ClientPool.Base + 1),
            Gateway6 = options.ClientPool6.Gateway,
            UplinkInterface = options.UplinkInterface,
            EgressAllow = options.EgressAllow,
            EgressDeny = options.EgressDeny,
            Ipv6Egress = options.Ipv6Egress,
        };
    }

    /// <summary>The driver for WG_NAT_DRIVER; null for "none".</summary>
    public static INatDriver? Create(CoreOptions options, ILoggerFactory loggerFactory)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(loggerFactory);
        var table = NodeFirewall.Build(FirewallOptionsFor(options));
        return options.NatDriver switch
        {
            "cli" => new NftNatDriver(table, loggerFactory.CreateLogger<NftNatDriver>(),
                options.NetworkNamespace is { } ns ? NftCommand.InNamespace(ns) : null),
            "native" => new NativeNatDriver(table, loggerFactory.CreateLogger<NativeNatDriver>(),
                options.NetworkNamespace is { } name ? $"/var/run/netns/{name}" : null),
            _ => null,
        };
    }
}
