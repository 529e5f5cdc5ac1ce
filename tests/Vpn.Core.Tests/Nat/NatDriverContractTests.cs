namespace Vpn.Core.Tests.Nat;

/// <summary>What every NAT driver owes the node's ruleset, run for each driver in a namespace of its own.</summary>
public abstract class NatDriverContractTests
{
    /// <summary>The driver under test, programming <paramref name="ns"/>.</summary>
    private protected abstract INatDriver DriverIn(NetworkNamespace ns);

    private protected abstract Task<NetworkNamespace> CreateLabAsync();

    [Fact]
    public async Task ApplyAndRemove_OtherTablesPresent_LeavesThemUntouched()
    {
        await using var ns = await CreateLabAsync();
        var other = "table inet other {\n chain input {\n type filter hook input priority 0;\n tcp dport 22 accept\n }\n}\ntable ip vpn_core {\n chain c {\n }\n}\n";
        (await ns.ExecAsync("nft", ["-f", "-"], other)).EnsureSuccess("nft -f other");
        var before = await ns.ExecCheckedAsync("nft", "list", "ruleset");
        var driver = DriverIn(ns);

        await driver.ApplyAsync(TestContext.Current.CancellationToken);
        await driver.RemoveAsync(TestContext.Current.CancellationToken);

        // The same name in another family (ip vpn_core) is another table and stays too.
        Assert.Equal(before, await ns.ExecCheckedAsync("nft", "list", "ruleset"));
    }
}
