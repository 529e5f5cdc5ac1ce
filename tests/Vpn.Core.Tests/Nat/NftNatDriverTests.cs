using System.Diagnostics;
using Microsoft.Extensions.Logging.Abstractions;
using Vpn.Core.Nat;
using Vpn.TestSupport;

namespace Vpn.Core.Tests.Nat;

/// <summary>Real nft runs only inside a namespace created by the test; failure paths use stand-in commands.</summary>
public class NftNatDriverTests
{
    private static readonly NatOptions Options = new() { ClientPool = "10.64.0.0/16", InterfaceName = "wg0" };

    [Fact]
    public async Task ApplyAsync_InNamespace_TableHasMasqueradeRule()
    {
        await using var ns = await CreateNamespaceAsync();
        var driver = Driver(NftCommand.InNamespace(ns.Name));

        await driver.ApplyAsync(TestContext.Current.CancellationToken);

        var table = await ns.ExecCheckedAsync("nft", "list", "table", "ip", "vpn_core");
        Assert.Contains("type nat hook postrouting priority srcnat; policy accept;", table);
        Assert.Contains("ip saddr 10.64.0.0/16 oifname != \"wg0\" masquerade", table);
        Assert.True(await driver.IsPresentAsync(TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task ApplyAsync_Twice_ExactlyOneMasqueradeRule()
    {
        await using var ns = await CreateNamespaceAsync();
        var driver = Driver(NftCommand.InNamespace(ns.Name));

        await driver.ApplyAsync(TestContext.Current.CancellationToken);
        await driver.ApplyAsync(TestContext.Current.CancellationToken);

        var table = await ns.ExecCheckedAsync("nft", "list", "table", "ip", "vpn_core");
        Assert.Single(table.Split('\n'), line => line.Contains("masquerade", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ApplyAsync_ChangedPool_ReplacesRule()
    {
        await using var ns = await CreateNamespaceAsync();
        await Driver(NftCommand.InNamespace(ns.Name)).ApplyAsync(TestContext.Current.CancellationToken);

        var changed = new NatOptions { ClientPool = "10.65.0.0/16", InterfaceName = "wg1" };
        await new NftNatDriver(changed, NullLogger<NftNatDriver>.Instance, NftCommand.InNamespace(ns.Name))
            .ApplyAsync(TestContext.Current.CancellationToken);

        var table = await ns.ExecCheckedAsync("nft", "list", "table", "ip", "vpn_core");
        Assert.Contains("ip saddr 10.65.0.0/16 oifname != \"wg1\" masquerade", table);
        Assert.DoesNotContain("10.64.0.0/16", table);
    }

    [Fact]
    public async Task ApplyAndRemove_OtherTablesPresent_LeavesThemUntouched()
    {
        await using var ns = await CreateNamespaceAsync();
        await ns.ExecAsync("nft", ["-f", "-"], "table inet other {\n chain input {\n type filter hook input priority 0;\n tcp dport 22 accept\n }\n}\n");
        var before = await ns.ExecCheckedAsync("nft", "list", "table", "inet", "other");
        var driver = Driver(NftCommand.InNamespace(ns.Name));

        await driver.ApplyAsync(TestContext.Current.CancellationToken);
        await driver.RemoveAsync(TestContext.Current.CancellationToken);

        Assert.Equal(before, await ns.ExecCheckedAsync("nft", "list", "table", "inet", "other"));
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

        Assert.False(await driver.IsPresentAsync(TestContext.Current.CancellationToken));
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

        Assert.Equal(NftRuleset.Render(Options), error.StandardError);
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
        var driver = new NftNatDriver(Options, NullLogger<NftNatDriver>.Instance,
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
    public void Constructor_InvalidOptions_ThrowsArgumentException()
    {
        var options = new NatOptions { ClientPool = "10.64.0.0/16", InterfaceName = "wg0\"; flush ruleset" };

        Assert.Throws<ArgumentException>(() => new NftNatDriver(options, NullLogger<NftNatDriver>.Instance));
    }

    private static NftNatDriver Driver(NftCommand command) => new(Options, NullLogger<NftNatDriver>.Instance, command);

    private static Task<NetworkNamespace> CreateNamespaceAsync()
    {
        Prerequisites.RequireNetworkLab();
        return NetworkNamespace.CreateAsync("nat");
    }
}
