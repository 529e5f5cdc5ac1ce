using Vpn.Core.Nat;

namespace Vpn.Core.Tests.Nat;

public class NftRulesetTests
{
    [Fact]
    public void Render_KnownInput_ExactText()
    {
        var script = NftRuleset.Render(new NatOptions { ClientPool = "10.64.0.0/16", InterfaceName = "wg0" });

        Assert.Equal("""
            table ip vpn_core {}
            delete table ip vpn_core
            table ip vpn_core {
                chain postrouting {
                    type nat hook postrouting priority srcnat; policy accept;
                    ip saddr 10.64.0.0/16 oifname != "wg0" masquerade
                }
            }

            """, script);
    }

    [Fact]
    public void Render_CustomTableName_UsesItEverywhere()
    {
        var script = NftRuleset.Render(new NatOptions { ClientPool = "100.96.0.0/12", InterfaceName = "wg-vpn.1", TableName = "edge_nat" });

        Assert.StartsWith("table ip edge_nat {}\ndelete table ip edge_nat\ntable ip edge_nat {\n", script);
        Assert.Contains("ip saddr 100.96.0.0/12 oifname != \"wg-vpn.1\" masquerade\n", script);
        Assert.DoesNotContain("vpn_core", script);
    }

    [Fact]
    public void RenderDelete_KnownInput_ExactText()
    {
        var script = NftRuleset.RenderDelete(new NatOptions { ClientPool = "10.64.0.0/16", InterfaceName = "wg0" });

        Assert.Equal("table ip vpn_core {}\ndelete table ip vpn_core\n", script);
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
    public void Render_MaliciousInterfaceName_ThrowsArgumentException(string interfaceName)
    {
        var options = new NatOptions { ClientPool = "10.64.0.0/16", InterfaceName = interfaceName };

        var error = Assert.Throws<ArgumentException>(() => NftRuleset.Render(options));
        Assert.Contains("Interface name", error.Message);
    }

    [Theory]
    [InlineData("10.64.0.0/16; flush ruleset")]
    [InlineData("10.64.0.0/16 }")]
    [InlineData("10.64.0.0/16\n")]
    [InlineData("10.64.0.1/16")]
    [InlineData("10.64.0.0/33")]
    [InlineData("10.64.0.0")]
    [InlineData("fd00::/64")]
    [InlineData("")]
    public void Render_MaliciousPool_ThrowsArgumentException(string pool)
    {
        var options = new NatOptions { ClientPool = pool, InterfaceName = "wg0" };

        var error = Assert.Throws<ArgumentException>(() => NftRuleset.Render(options));
        Assert.Contains("Client pool", error.Message);
    }

    [Theory]
    [InlineData("vpn_core {}; flush ruleset")]
    [InlineData("1table")]
    [InlineData("vpn-core")]
    [InlineData("")]
    public void Render_MaliciousTableName_ThrowsArgumentException(string table)
    {
        var options = new NatOptions { ClientPool = "10.64.0.0/16", InterfaceName = "wg0", TableName = table };

        Assert.Throws<ArgumentException>(() => NftRuleset.Render(options));
        Assert.Throws<ArgumentException>(() => NftRuleset.RenderDelete(options));
    }

    [Fact]
    public void Validate_EverythingWrong_ReportsEveryProblem()
    {
        var errors = new NatOptions { ClientPool = "nope", InterfaceName = "", TableName = "" }.Validate();

        Assert.Equal(3, errors.Count);
    }
}
