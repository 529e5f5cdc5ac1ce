using System.Net;
using Vpn.Core.Configuration;
using Vpn.Core.Nat;
using Vpn.TestSupport;

namespace Vpn.Core.Tests.Configuration;

/// <summary>The dual-stack pool, NAT driver and egress settings: defaults, what start-up refuses, all problems at once.</summary>
public sealed class CoreDataplaneOptionsTests
{
    private static (CoreOptions Options, IReadOnlyList<string> Errors) Load(params (string Key, string Value)[] settings) =>
        OptionsLoading.Load(CoreOptions.Load, settings);

    [Fact]
    public void Load_Defaults_DualStackCliDriverIpv6Egress()
    {
        var (options, errors) = Load();

        Assert.Empty(errors);
        Assert.Equal("fd64:6400::/64", options.ClientPool6.ToString());
        Assert.Equal(IPAddress.Parse("fd64:6400::1"), options.ClientPool6.Gateway);
        Assert.Equal("cli", options.NatDriver);
        Assert.True(options.Ipv6Egress);
        Assert.Null(options.UplinkInterface);
        Assert.Empty(options.EgressAllow);
        Assert.Empty(options.EgressDeny);
        Assert.False(options.RemoveNatOnShutdown);
    }

    [Theory]
    [InlineData("cli")]
    [InlineData("native")]
    [InlineData("NATIVE")]
    [InlineData("none")]
    public void Load_KnownNatDriver_Accepted(string driver)
    {
        var (options, errors) = Load(("WG_NAT_DRIVER", driver));

        Assert.Empty(errors);
        Assert.Equal(driver.ToLowerInvariant(), options.NatDriver);
    }

    [Fact]
    public void Load_NoneDriverInProduction_Refused()
    {
        var (_, errors) = Load(("APP_ENV", "production"), ("WG_NAT_DRIVER", "none"));

        Assert.Contains(errors, e => e.Contains("WG_NAT_DRIVER=none", StringComparison.Ordinal));
    }

    [Fact]
    public void Load_EverythingWrong_EveryProblemReported()
    {
        var (_, errors) = Load(
            ("WG_NAT_DRIVER", "iptables"),
            ("WG_CLIENT_POOL", "10.64.0.0/16"),
            ("WG_CLIENT_POOL_V6", "fd64:6400::/120"),
            ("WG_UPLINK_INTERFACE", "eth0\"; flush ruleset"),
            ("WG_EGRESS_ALLOW", "10.1.0.0/16, 10.2.0.1/16"),
            ("WG_EGRESS_DENY", "not-a-network"),
            ("WG_IPV6_EGRESS", "maybe"),
            ("WG_DNS_UPSTREAMS", "9.9.9.9, resolver.example, 1.1.1.1@99999"));

        Assert.Contains(errors, e => e.StartsWith("WG_NAT_DRIVER", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("WG_CLIENT_POOL_V6", StringComparison.Ordinal) && e.Contains("too small", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("WG_UPLINK_INTERFACE", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("WG_EGRESS_ALLOW", StringComparison.Ordinal) && e.Contains("10.2.0.1/16", StringComparison.Ordinal));
        Assert.DoesNotContain(errors, e => e.Contains("10.1.0.0/16", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("WG_EGRESS_DENY", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("WG_IPV6_EGRESS", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("resolver.example", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("1.1.1.1@99999", StringComparison.Ordinal));
        Assert.DoesNotContain(errors, e => e.Contains("'9.9.9.9'", StringComparison.Ordinal));
    }

    [Fact]
    public void Load_ProductionWithoutUplink_Refused()
    {
        var (_, without) = Load(("APP_ENV", "production"));
        var (_, with) = Load(("APP_ENV", "production"), ("WG_UPLINK_INTERFACE", "eth0"));

        Assert.Contains(without, e => e.StartsWith("WG_UPLINK_INTERFACE is required in production", StringComparison.Ordinal));
        Assert.DoesNotContain(with, e => e.Contains("WG_UPLINK_INTERFACE", StringComparison.Ordinal));
    }

    [Fact]
    public void Load_UplinkSameAsTunnel_Refused()
    {
        var (_, errors) = Load(("WG_INTERFACE", "wg0"), ("WG_UPLINK_INTERFACE", "wg0"));

        Assert.Contains(errors, e => e.Contains("cannot be WG_INTERFACE", StringComparison.Ordinal));
    }

    [Fact]
    public void FirewallOptionsFor_Settings_CarriedIntoTheTable()
    {
        var (options, errors) = Load(
            ("WG_INTERFACE", "wg7"),
            ("WG_CLIENT_POOL", "10.70.0.0/20"),
            ("WG_CLIENT_POOL_V6", "fd70::/64"),
            ("WG_UPLINK_INTERFACE", "eth1"),
            ("WG_EGRESS_ALLOW", "10.99.0.0/16"),
            ("WG_EGRESS_DENY", "203.0.113.0/24,2001:db8::/32"),
            ("WG_IPV6_EGRESS", "false"));
        Assert.Empty(errors);

        var script = NftRuleset.Render(NodeFirewall.Build(NatDrivers.FirewallOptionsFor(options)));

        Assert.Contains("iifname \"wg7\" meta nfproto ipv4 udp dport 53 dnat ip to 10.70.0.1", script);
        Assert.Contains("iifname \"wg7\" meta nfproto ipv6 tcp dport 53 dnat ip6 to fd70::1", script);
        Assert.Contains("ip saddr 10.70.0.0/20 oifname \"eth1\" masquerade", script);
        Assert.Contains("ip6 saddr fd70::/64 oifname \"eth1\" masquerade", script);
        Assert.Contains("oifname != \"eth1\" counter name \"tunnel_not_uplink\" drop", script);
        Assert.Contains("ip daddr 10.99.0.0/16 accept", script);
        Assert.Contains("ip daddr 203.0.113.0/24 counter name \"tunnel_to_private\" drop", script);
        Assert.Contains("ip6 daddr 2001:db8::/32 counter name \"tunnel_to_private\" drop", script);
        Assert.Contains("meta nfproto ipv6 counter name \"tunnel_ipv6_refused\" reject with icmpx admin-prohibited", script);
        // The operator's deny list outranks the allow list, which outranks the built-in block.
        Assert.True(script.IndexOf("203.0.113.0/24", StringComparison.Ordinal) < script.IndexOf("10.99.0.0/16 accept", StringComparison.Ordinal));
        Assert.True(script.IndexOf("10.99.0.0/16 accept", StringComparison.Ordinal) < script.IndexOf("ip daddr 10.0.0.0/8", StringComparison.Ordinal));
    }
}
