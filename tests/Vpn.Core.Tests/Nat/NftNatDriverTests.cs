using System.Diagnostics;

namespace Vpn.Core.Tests.Nat;

/// <summary>Real nft runs only inside a namespace created by the test; failure paths use stand-in commands.</summary>
public class NftNatDriverTests : NatDriverContractTests
{
    private static readonly FirewallTable Table = FirewallSamples.Table();

    [Fact]
    public async Task ApplyAsync_InNamespace_TableHasChainsAndMasqueradeRule()
    {
        await using var ns = await CreateNamespaceAsync();
        var driver = Driver(NftCommand.InNamespace(ns.Name));

        await driver.ApplyAsync(TestContext.Current.CancellationToken);

        var table = await ns.ExecCheckedAsync("nft", "list", "table", "inet", "vpn_core");
        Assert.Contains("type nat hook postrouting priority srcnat; policy accept;", table);
        Assert.Contains("type filter hook prerouting priority raw; policy accept;", table);
        Assert.Contains("ip saddr 10.64.0.0/16 oifname != \"wg0\" masquerade", table);
        Assert.Contains("ip6 saddr fd64:6400::/64 oifname != \"wg0\" masquerade", table);
        Assert.Contains("iifname \"wg0\" jump tunnel_forward", table);
        Assert.True(await driver.IsPresentAsync(TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task ApplyAsync_Twice_ExactlyOneCopyOfEachRule()
    {
        await using var ns = await CreateNamespaceAsync();
        var driver = Driver(NftCommand.InNamespace(ns.Name));

        await driver.ApplyAsync(TestContext.Current.CancellationToken);
        await driver.ApplyAsync(TestContext.Current.CancellationToken);

        var table = await ns.ExecCheckedAsync("nft", "list", "table", "inet", "vpn_core");
        Assert.Equal(2, table.Split('\n').Count(line => line.Contains("masquerade", StringComparison.Ordinal)));
        Assert.Single(table.Split('\n'), line => line.Contains("jump tunnel_forward", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ApplyAsync_ChangedPoolAndTunnel_ReplacesRules()
    {
        await using var ns = await CreateNamespaceAsync();
        await Driver(NftCommand.InNamespace(ns.Name)).ApplyAsync(TestContext.Current.CancellationToken);

        var changed = NodeFirewall.Build(FirewallSamples.Options(tunnel: "wg1", pool4: "10.65.0.0/16", gateway4: "10.65.0.1"));
        await new NftNatDriver(changed, NullLogger<NftNatDriver>.Instance, NftCommand.InNamespace(ns.Name))
            .ApplyAsync(TestContext.Current.CancellationToken);

        var table = await ns.ExecCheckedAsync("nft", "list", "table", "inet", "vpn_core");
        Assert.Contains("ip saddr 10.65.0.0/16 oifname != \"wg1\" masquerade", table);
        Assert.DoesNotContain("10.64.0.0/16", table);
        Assert.DoesNotContain("\"wg0\"", table);
    }

    [Fact]
    public async Task RemoveAsync_AfterApply_TableGone()
    {
        await using var ns = await CreateNamespaceAsync();
        var driver = Driver(NftCommand.InNamespace(ns.Name));
        await driver.ApplyAsync(TestContext.Current.CancellationToken);

        await driver.RemoveAsync(TestContext.Current.CancellationToken);

        Assert.False(await driver.IsPresentAsync(TestContext.Current.CancellationToken));
        Assert.DoesNotContain("vpn_core", await ns.ExecCheckedAsync("nft", "list", "ruleset"));
    }

    [Fact]
    public async Task RemoveAsync_NothingApplied_Succeeds()
    {
        await using var ns = await CreateNamespaceAsync();
        var driver = Driver(NftCommand.InNamespace(ns.Name));

        await driver.RemoveAsync(TestContext.Current.CancellationToken);
        await driver.RemoveAsync(TestContext.Current.CancellationToken);

        Assert.False(await driver.IsPresentAsync(TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task ReadCountersAsync_AfterApply_EveryNamedCounterAtZero()
    {
        await using var ns = await CreateNamespaceAsync();
        var driver = Driver(NftCommand.InNamespace(ns.Name));
        await driver.ApplyAsync(TestContext.Current.CancellationToken);

        var counters = await driver.ReadCountersAsync(TestContext.Current.CancellationToken);

        Assert.Equal(NodeFirewall.Counters.All.Order(), counters.Select(c => c.Name).Order());
        Assert.All(counters, c => Assert.Equal((0ul, 0ul), (c.Packets, c.Bytes)));
    }

    [Fact]
    public void ParseCounters_OtherTablesAndFamilies_OnlyOurs()
    {
        const string json = """
            {"nftables": [{"metainfo": {"version": "1.0.6"}},
              {"counter": {"family": "inet", "name": "a", "table": "vpn_core", "handle": 1, "packets": 3, "bytes": 180}},
              {"counter": {"family": "ip", "name": "b", "table": "vpn_core", "handle": 2, "packets": 1, "bytes": 1}},
              {"counter": {"family": "inet", "name": "c", "table": "other", "handle": 3, "packets": 1, "bytes": 1}}]}
            """;

        Assert.Equal([new FirewallCounter("a", 3, 180)], NftNatDriver.ParseCounters(json, "vpn_core"));
    }

    [Fact]
    public void ParseCounters_NotJson_ThrowsNatException()
    {
        Assert.Throws<NatException>(() => NftNatDriver.ParseCounters("Error: no such table", "vpn_core"));
    }

    [Fact]
    public async Task ApplyAsync_CommandFails_ThrowsNatExceptionWithStandardError()
    {
        // sh -c SCRIPT NAME: nft's own arguments (-f -) land in $0 and $1 and are ignored.
        var driver = Driver(new NftCommand("sh", ["-c", "cat >/dev/null; echo 'Error: Could not process rule' >&2; exit 1"]));

        var error = await Assert.ThrowsAsync<NatException>(() => driver.ApplyAsync(TestContext.Current.CancellationToken));

        Assert.Equal(1, error.ExitCode);
        Assert.Equal("Error: Could not process rule\n", error.StandardError);
        Assert.Contains("Could not process rule", error.Message);
    }

    [Fact]
    public async Task ApplyAsync_ScriptOnStandardInput_IsTheRenderedRuleset()
    {
        // A stand-in that fails with its input on stderr, so the exception carries what nft would have read.
        var driver = Driver(new NftCommand("sh", ["-c", "cat >&2; exit 3"]));

        var error = await Assert.ThrowsAsync<NatException>(() => driver.ApplyAsync(TestContext.Current.CancellationToken));

        Assert.Equal(NftRuleset.Render(Table), error.StandardError);
    }

    [Fact]
    public async Task RemoveAsync_ScriptOnStandardInput_DeletesOnlyOurTable()
    {
        var driver = Driver(new NftCommand("sh", ["-c", "cat >&2; exit 3"]));

        var error = await Assert.ThrowsAsync<NatException>(() => driver.RemoveAsync(TestContext.Current.CancellationToken));

        Assert.Equal("table inet vpn_core {}\ndelete table inet vpn_core\n", error.StandardError);
    }

    [Fact]
    public async Task ApplyAsync_NftMissing_ThrowsNatException()
    {
        var driver = Driver(new NftCommand("/nonexistent/vpn-core-test/nft", []));

        var error = await Assert.ThrowsAsync<NatException>(() => driver.ApplyAsync(TestContext.Current.CancellationToken));

        Assert.Null(error.ExitCode);
        Assert.Contains("could not start", error.Message);
    }

    [Fact]
    public async Task ApplyAsync_CommandHangs_ThrowsNatExceptionAtTimeout()
    {
        var driver = new NftNatDriver(Table, NullLogger<NftNatDriver>.Instance,
            new NftCommand("sh", ["-c", "sleep 30"]), TimeSpan.FromMilliseconds(300));
        var clock = Stopwatch.StartNew();

        var error = await Assert.ThrowsAsync<NatException>(() => driver.ApplyAsync(TestContext.Current.CancellationToken));

        Assert.Contains("did not finish", error.Message);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task ApplyAsync_CallerCancels_ThrowsOperationCanceled()
    {
        var driver = Driver(new NftCommand("sh", ["-c", "sleep 30"]));
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        cancel.CancelAfter(TimeSpan.FromMilliseconds(200));

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => driver.ApplyAsync(cancel.Token));
    }

    [Fact]
    public void NameAndFeatures_CliDriver_NoNativeFeatures()
    {
        var driver = Driver(NftCommand.Default);

        Assert.Equal("cli", driver.Name);
        Assert.Empty(driver.NativeFeatures);
    }

    private static NftNatDriver Driver(NftCommand command) => new(Table, NullLogger<NftNatDriver>.Instance, command);

    private protected override INatDriver DriverIn(NetworkNamespace ns) => Driver(NftCommand.InNamespace(ns.Name));

    private protected override Task<NetworkNamespace> CreateLabAsync() => CreateNamespaceAsync();

    private static Task<NetworkNamespace> CreateNamespaceAsync()
    {
        Prerequisites.RequireNetworkLab();
        return NetworkNamespace.CreateAsync("nat");
    }
}
