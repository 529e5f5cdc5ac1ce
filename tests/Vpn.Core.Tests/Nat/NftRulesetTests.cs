namespace Vpn.Core.Tests.Nat;

/// <summary>The renderer alone, on small hand-built tables; the node's real table is in <see cref="NodeFirewallTests"/>.</summary>
public class NftRulesetTests
{
    [Fact]
    public void Render_SmallTable_ExactText()
    {
        var table = new FirewallTable("vpn_core", ["dropped"],
        [
            new FirewallChain("jumped", null, [new FirewallRule([], "dropped", new DropAction())]),
            new FirewallChain("postrouting", new BaseChain(ChainType.Nat, ChainHook.Postrouting, 100),
            [
                new FirewallRule([new InterfaceMatch(true, "wg0")], null, new JumpAction("jumped")),
                new FirewallRule([new AddressMatch(true, IPNetwork.Parse("10.64.0.0/16")), new InterfaceMatch(false, "wg0", Negated: true)], null, new MasqueradeAction()),
            ]),
        ]);

        Assert.Equal("""
            table inet vpn_core {}
            delete table inet vpn_core
            table inet vpn_core {
                counter dropped {}
                chain jumped {
                    counter name "dropped" drop
                }
                chain postrouting {
                    type nat hook postrouting priority 100; policy accept;
                    iifname "wg0" jump jumped
                    ip saddr 10.64.0.0/16 oifname != "wg0" masquerade
                }
            }

            """, NftRuleset.Render(table));
    }

    [Fact]
    public void RenderDelete_KnownName_ExactText()
    {
        Assert.Equal("table inet vpn_core {}\ndelete table inet vpn_core\n", NftRuleset.RenderDelete("vpn_core"));
    }

    public static TheoryData<FirewallRule, string> Rules => new()
    {
        { new FirewallRule([new EstablishedOrRelatedMatch()], null, new AcceptAction()), "ct state established,related accept" },
        { new FirewallRule([new InterfaceMatch(false, "eth0", Negated: true)], "x", new DropAction()), "oifname != \"eth0\" counter name \"x\" drop" },
        { new FirewallRule([new FamilyMatch(IpFamily.Ipv6)], null, new RejectAction()), "meta nfproto ipv6 reject with icmpx admin-prohibited" },
        { new FirewallRule([new AddressMatch(false, IPNetwork.Parse("10.64.0.1/32")), new DestinationPortMatch(TransportProtocol.Udp, 53)], null, new AcceptAction()), "ip daddr 10.64.0.1 udp dport 53 accept" },
        { new FirewallRule([new AddressMatch(false, IPNetwork.Parse("fd64:6400::1/128")), new DestinationPortMatch(TransportProtocol.Tcp, 53)], null, new AcceptAction()), "ip6 daddr fd64:6400::1 tcp dport 53 accept" },
        { new FirewallRule([new AddressMatch(true, IPNetwork.Parse("fd64:6400::/64"), Negated: true)], null, new DropAction()), "ip6 saddr != fd64:6400::/64 drop" },
        { new FirewallRule([new EchoRequestMatch(IpFamily.Ipv4)], null, new AcceptAction()), "icmp type echo-request accept" },
        { new FirewallRule([new EchoRequestMatch(IpFamily.Ipv6)], null, new AcceptAction()), "icmpv6 type echo-request accept" },
        { new FirewallRule([], null, new DestinationNatAction(IPAddress.Parse("10.64.0.1"))), "dnat ip to 10.64.0.1" },
        { new FirewallRule([], null, new DestinationNatAction(IPAddress.Parse("fd64:6400::1"))), "dnat ip6 to fd64:6400::1" },
    };

    [Theory]
    [MemberData(nameof(Rules))]
    public void RenderRule_EachMatchAndAction_NftSyntax(FirewallRule rule, string expected)
    {
        Assert.Equal(expected, NftRuleset.RenderRule(rule));
    }
}
