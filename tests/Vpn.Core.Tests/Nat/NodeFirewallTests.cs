namespace Vpn.Core.Tests.Nat;

public class NodeFirewallTests
{
    /// <summary>The whole table for a known input, as the cli driver feeds it to nft (the native driver encodes the same).</summary>
    [Fact]
    public void Build_DefaultOptions_RendersExactScript()
    {
        var script = NftRuleset.Render(FirewallSamples.Table());

        Assert.Equal(ExpectedDefaultScript, script);
    }

    [Fact]
    public void Build_DefaultOptions_EveryBlockedRangeDroppedAndCounted()
    {
        var forward = Chain(FirewallSamples.Table(), NodeFirewall.TunnelForwardChain);

        var rendered = forward.Rules.Select(NftRuleset.RenderRule).ToList();
        foreach (var network in NodeFirewall.BlockedIpv4.Concat(NodeFirewall.BlockedIpv6))
        {
            var family = network.BaseAddress.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? "ip" : "ip6";
            Assert.Single(rendered, r => r == $"{family} daddr {network} counter name \"tunnel_to_private\" drop");
        }
        Assert.Equal(11, NodeFirewall.BlockedIpv4.Count);
        Assert.Contains(NodeFirewall.BlockedIpv4, n => n.Contains(IPAddress.Parse("169.254.169.254")));
        Assert.Contains(NodeFirewall.BlockedIpv6, n => n.Contains(IPAddress.Parse("fd00:ec2::254")));
        Assert.Equal("accept", rendered[^1]);
    }

    [Fact]
    public void Build_DefaultOptions_EveryCounterDeclaredAndUsed()
    {
        var table = FirewallSamples.Table();

        var used = table.Chains.SelectMany(c => c.Rules).Select(r => r.Counter).OfType<string>().ToHashSet();

        Assert.Equal(NodeFirewall.Counters.All, table.Counters);
        // tunnel_not_uplink and tunnel_ipv6_refused exist in every table so GetNodeStatus always reports the same set.
        Assert.Equal(NodeFirewall.Counters.All.Except([NodeFirewall.Counters.TunnelNotUplink, NodeFirewall.Counters.TunnelIpv6Refused]).Order(), used.Order());
    }

    [Fact]
    public void Build_WithUplink_OnlyUplinkEgressAndMasquerade()
    {
        var table = NodeFirewall.Build(FirewallSamples.Options(uplink: "eth0"));

        var forward = Chain(table, NodeFirewall.TunnelForwardChain).Rules.Select(NftRuleset.RenderRule).ToList();
        Assert.Equal("oifname != \"eth0\" counter name \"tunnel_not_uplink\" drop", forward[2]);
        Assert.Equal(
            ["ip saddr 10.64.0.0/16 oifname \"eth0\" masquerade", "ip6 saddr fd64:6400::/64 oifname \"eth0\" masquerade"],
            Chain(table, "postrouting").Rules.Select(NftRuleset.RenderRule));
    }

    [Fact]
    public void Build_WithoutUplink_MasqueradeAnythingButTheTunnel()
    {
        var table = FirewallSamples.Table();

        Assert.DoesNotContain(table.Chains.SelectMany(c => c.Rules), r => r.Counter == NodeFirewall.Counters.TunnelNotUplink);
        Assert.Equal(
            ["ip saddr 10.64.0.0/16 oifname != \"wg0\" masquerade", "ip6 saddr fd64:6400::/64 oifname != \"wg0\" masquerade"],
            Chain(table, "postrouting").Rules.Select(NftRuleset.RenderRule));
    }

    [Fact]
    public void Build_EgressLists_DenyThenAllowThenBuiltInBlock()
    {
        var table = NodeFirewall.Build(FirewallSamples.Options(allow: ["10.1.2.0/24", "fd00:1::/48"], deny: ["203.0.113.0/25", "2001:db8::/32"]));

        var forward = Chain(table, NodeFirewall.TunnelForwardChain).Rules.Select(NftRuleset.RenderRule).ToList();

        Assert.Equal(
        [
            "ct state invalid counter name \"invalid\" drop",
            "oifname \"wg0\" counter name \"tunnel_to_tunnel\" drop",
            "ip daddr 203.0.113.0/25 counter name \"tunnel_to_private\" drop",
            "ip6 daddr 2001:db8::/32 counter name \"tunnel_to_private\" drop",
            "ip daddr 10.1.2.0/24 accept",
            "ip6 daddr fd00:1::/48 accept",
            "ip daddr 0.0.0.0/8 counter name \"tunnel_to_private\" drop",
        ], forward.Take(7));
    }

    [Fact]
    public void Build_Ipv6EgressOff_RefusesIpv6BeforeAnyAllow()
    {
        var table = NodeFirewall.Build(FirewallSamples.Options(allow: ["fd00:1::/48"], ipv6Egress: false));

        var forward = Chain(table, NodeFirewall.TunnelForwardChain).Rules.Select(NftRuleset.RenderRule).ToList();

        var refuse = forward.IndexOf("meta nfproto ipv6 counter name \"tunnel_ipv6_refused\" reject with icmpx admin-prohibited");
        Assert.Equal(2, refuse); // after the invalid and tunnel-to-tunnel drops
        Assert.True(refuse < forward.IndexOf("ip6 daddr fd00:1::/48 accept"));
    }

    [Fact]
    public void Build_InvalidPackets_DroppedBeforeAnythingIsAcceptedOrTranslated()
    {
        var table = FirewallSamples.Table();

        Assert.Equal("ct state invalid counter name \"invalid\" drop", NftRuleset.RenderRule(Chain(table, NodeFirewall.TunnelForwardChain).Rules[0]));
        var forward = Chain(table, "forward").Rules.Select(NftRuleset.RenderRule).ToList();
        Assert.True(forward.IndexOf("oifname \"wg0\" ct state invalid counter name \"invalid\" drop")
            < forward.IndexOf("oifname \"wg0\" ct state established,related accept"));
    }

    [Theory]
    [InlineData("64:ff9b::/96")] // NAT64: would reach private IPv4 and 169.254.169.254 through a NAT64 gateway
    [InlineData("2002::/16")] // 6to4 embeds IPv4 too
    [InlineData("::/96")] // IPv4-compatible, incl. :: and ::1
    public void Build_Ipv6PrefixesEmbeddingIpv4_Blocked(string prefix)
    {
        Assert.Contains(Chain(FirewallSamples.Table(), NodeFirewall.TunnelForwardChain).Rules.Select(NftRuleset.RenderRule),
            r => r == $"ip6 daddr {prefix} counter name \"tunnel_to_private\" drop");
    }

    [Fact]
    public void Build_Ipv6EgressOn_NoRefusal()
    {
        Assert.DoesNotContain(FirewallSamples.Table().Chains.SelectMany(c => c.Rules), r => r.Action is RejectAction);
    }

    [Fact]
    public void Build_Chains_BaseChainsHookWhereTheRulesNeedThem()
    {
        var chains = FirewallSamples.Table().Chains;

        Assert.Equal(
        [
            ("tunnel_input", null),
            ("tunnel_forward", null),
            ("anti_spoof", new BaseChain(ChainType.Filter, ChainHook.Prerouting, -300)),
            ("dns_redirect", new BaseChain(ChainType.Nat, ChainHook.Prerouting, -100)),
            ("input", new BaseChain(ChainType.Filter, ChainHook.Input, 0)),
            ("forward", new BaseChain(ChainType.Filter, ChainHook.Forward, 0)),
            ("postrouting", new BaseChain(ChainType.Nat, ChainHook.Postrouting, 100)),
        ], chains.Select(c => (c.Name, c.Base)));
    }

    [Theory]
    [InlineData("wg0\"; flush ruleset")]
    [InlineData("wg0\" accept")]
    [InlineData("wg0\n")]
    [InlineData("wg 0")]
    [InlineData("wg0}")]
    [InlineData("")]
    [InlineData(".")]
    [InlineData("..")]
    [InlineData("sixteen-chars-xx")]
    [InlineData("wg\u00e9")]
    public void Build_MaliciousTunnelName_ThrowsArgumentException(string name)
    {
        var error = Assert.Throws<ArgumentException>(() => NodeFirewall.Build(FirewallSamples.Options(tunnel: name)));

        Assert.Contains("Tunnel interface name", error.Message);
    }

    [Theory]
    [InlineData("eth0\"; flush ruleset")]
    [InlineData("eth0\n")]
    [InlineData("wg0")]
    public void Build_BadUplinkName_ThrowsArgumentException(string name)
    {
        var error = Assert.Throws<ArgumentException>(() => NodeFirewall.Build(FirewallSamples.Options(uplink: name)));

        Assert.Contains("plink interface", error.Message);
    }

    [Theory]
    [InlineData("vpn_core {}; flush ruleset")]
    [InlineData("1table")]
    [InlineData("vpn-core")]
    [InlineData("")]
    public void Build_MaliciousTableName_ThrowsArgumentException(string table)
    {
        var error = Assert.Throws<ArgumentException>(() => NodeFirewall.Build(FirewallSamples.Options(table: table)));

        Assert.Contains("Table name", error.Message);
    }

    [Fact]
    public void Build_GatewayOutsidePool_ThrowsArgumentException()
    {
        var error = Assert.Throws<ArgumentException>(() => NodeFirewall.Build(FirewallSamples.Options(gateway4: "10.65.0.1")));

        Assert.Contains("not inside the client pool", error.Message);
    }

    [Fact]
    public void Build_EverythingWrong_ReportsEveryProblem()
    {
        var options = new FirewallOptions { TunnelInterface = "", TableName = "", UplinkInterface = "bad name" };

        Assert.Equal(5, options.Validate().Count);
        Assert.Throws<ArgumentException>(() => NodeFirewall.Build(options));
    }

    private static FirewallChain Chain(FirewallTable table, string name) => table.Chains.Single(c => c.Name == name);

    private const string ExpectedDefaultScript = """
        table inet vpn_core {}
        delete table inet vpn_core
        table inet vpn_core {
            counter tunnel_to_tunnel {}
            counter tunnel_to_node {}
            counter tunnel_to_private {}
            counter tunnel_not_uplink {}
            counter tunnel_ipv6_refused {}
            counter tunnel_spoofed_source {}
            counter outside_spoofed_pool {}
            counter inbound_to_tunnel {}
            counter invalid {}
            chain tunnel_input {
                ct state established,related accept
                ip daddr 10.64.0.1 udp dport 53 accept
                ip daddr 10.64.0.1 tcp dport 53 accept
                ip6 daddr fd64:6400::1 udp dport 53 accept
                ip6 daddr fd64:6400::1 tcp dport 53 accept
                ip daddr 10.64.0.1 icmp type echo-request accept
                ip6 daddr fd64:6400::1 icmpv6 type echo-request accept
                counter name "tunnel_to_node" drop
            }
            chain tunnel_forward {
                ct state invalid counter name "invalid" drop
                oifname "wg0" counter name "tunnel_to_tunnel" drop
                ip daddr 0.0.0.0/8 counter name "tunnel_to_private" drop
                ip daddr 10.0.0.0/8 counter name "tunnel_to_private" drop
                ip daddr 100.64.0.0/10 counter name "tunnel_to_private" drop
                ip daddr 127.0.0.0/8 counter name "tunnel_to_private" drop
                ip daddr 169.254.0.0/16 counter name "tunnel_to_private" drop
                ip daddr 172.16.0.0/12 counter name "tunnel_to_private" drop
                ip daddr 192.0.0.0/24 counter name "tunnel_to_private" drop
                ip daddr 192.168.0.0/16 counter name "tunnel_to_private" drop
                ip daddr 198.18.0.0/15 counter name "tunnel_to_private" drop
                ip daddr 224.0.0.0/4 counter name "tunnel_to_private" drop
                ip daddr 240.0.0.0/4 counter name "tunnel_to_private" drop
                ip6 daddr ::/96 counter name "tunnel_to_private" drop
                ip6 daddr ::ffff:0:0/96 counter name "tunnel_to_private" drop
                ip6 daddr 64:ff9b::/96 counter name "tunnel_to_private" drop
                ip6 daddr 64:ff9b:1::/48 counter name "tunnel_to_private" drop
                ip6 daddr 100::/64 counter name "tunnel_to_private" drop
                ip6 daddr 2002::/16 counter name "tunnel_to_private" drop
                ip6 daddr fc00::/7 counter name "tunnel_to_private" drop
                ip6 daddr fe80::/10 counter name "tunnel_to_private" drop
                ip6 daddr fec0::/10 counter name "tunnel_to_private" drop
                ip6 daddr ff00::/8 counter name "tunnel_to_private" drop
                accept
            }
            chain anti_spoof {
                type filter hook prerouting priority -300; policy accept;
                iifname != "wg0" iifname != "lo" ip saddr 10.64.0.0/16 counter name "outside_spoofed_pool" drop
                iifname != "wg0" iifname != "lo" ip6 saddr fd64:6400::/64 counter name "outside_spoofed_pool" drop
                iifname "wg0" ip saddr != 10.64.0.0/16 counter name "tunnel_spoofed_source" drop
                iifname "wg0" ip6 saddr != fd64:6400::/64 counter name "tunnel_spoofed_source" drop
            }
            chain dns_redirect {
                type nat hook prerouting priority -100; policy accept;
                iifname "wg0" meta nfproto ipv4 udp dport 53 dnat ip to 10.64.0.1
                iifname "wg0" meta nfproto ipv4 tcp dport 53 dnat ip to 10.64.0.1
                iifname "wg0" meta nfproto ipv6 udp dport 53 dnat ip6 to fd64:6400::1
                iifname "wg0" meta nfproto ipv6 tcp dport 53 dnat ip6 to fd64:6400::1
            }
            chain input {
                type filter hook input priority 0; policy accept;
                iifname "wg0" jump tunnel_input
            }
            chain forward {
                type filter hook forward priority 0; policy accept;
                iifname "wg0" jump tunnel_forward
                oifname "wg0" ct state invalid counter name "invalid" drop
                oifname "wg0" ct state established,related accept
                oifname "wg0" counter name "inbound_to_tunnel" drop
            }
            chain postrouting {
                type nat hook postrouting priority 100; policy accept;
                ip saddr 10.64.0.0/16 oifname != "wg0" masquerade
                ip6 saddr fd64:6400::/64 oifname != "wg0" masquerade
            }
        }

        """;
}
