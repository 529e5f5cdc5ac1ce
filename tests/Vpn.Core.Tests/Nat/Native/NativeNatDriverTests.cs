using System.Text.Json.Nodes;
using Vpn.Core.Nat.Native;

namespace Vpn.Core.Tests.Nat.Native;

/// <summary>The native driver against the real kernel, each test in its own network namespace; nft is the referee.</summary>
public class NativeNatDriverTests : NatDriverContractTests
{
    private static readonly FirewallTable Table = FirewallSamples.Table();

    [Theory]
    [MemberData(nameof(FirewallSamples.Variants), MemberType = typeof(FirewallSamples))]
    public async Task ApplyAsync_SameTableAsCliDriver_NftListsBothIdentically(string variant)
    {
        var table = FirewallSamples.Table(variant);
        await using var cli = await CreateNamespaceAsync();
        await using var native = await CreateNamespaceAsync();

        await new NftNatDriver(table, NullLogger<NftNatDriver>.Instance, NftCommand.InNamespace(cli.Name)).ApplyAsync(TestContext.Current.CancellationToken);
        await Driver(native, table).ApplyAsync(TestContext.Current.CancellationToken);

        var expected = await ListTableAsync(cli, table.Name);
        Assert.Contains("\"masquerade\"", expected, StringComparison.Ordinal);
        Assert.Equal(expected, await ListTableAsync(native, table.Name));
    }

    [Fact]
    public async Task ApplyAsync_Repeated1000Times_OneTableWithTheSameChainsAndRules()
    {
        await using var ns = await CreateNamespaceAsync();
        var driver = Driver(ns);
        await driver.ApplyAsync(TestContext.Current.CancellationToken);
        var first = await ListTableAsync(ns, Table.Name);

        for (var i = 0; i < 999; i++)
        {
            await driver.ApplyAsync(TestContext.Current.CancellationToken);
        }

        Assert.Equal(first, await ListTableAsync(ns, Table.Name));
        Assert.Equal("table inet vpn_core\n", await ns.ExecCheckedAsync("nft", "list", "tables"));
    }

    [Fact]
    public async Task ApplyAsync_OverAChangedTable_ReplacesEverything()
    {
        await using var ns = await CreateNamespaceAsync();
        (await ns.ExecAsync("nft", ["-f", "-"], "table inet vpn_core {\n counter stale {}\n chain stale { type filter hook output priority 0; policy accept; }\n}\n"))
            .EnsureSuccess("nft -f stale");

        await Driver(ns).ApplyAsync(TestContext.Current.CancellationToken);

        var listing = await ns.ExecCheckedAsync("nft", "list", "table", "inet", "vpn_core");
        Assert.DoesNotContain("stale", listing);
        Assert.Contains("chain tunnel_forward", listing);
    }

    [Fact]
    public async Task IsPresentAsync_BeforeApplyAfterApplyAfterRemove_FalseTrueFalse()
    {
        await using var ns = await CreateNamespaceAsync();
        var driver = Driver(ns);

        var before = await driver.IsPresentAsync(TestContext.Current.CancellationToken);
        await driver.ApplyAsync(TestContext.Current.CancellationToken);
        var applied = await driver.IsPresentAsync(TestContext.Current.CancellationToken);
        await driver.RemoveAsync(TestContext.Current.CancellationToken);
        var removed = await driver.IsPresentAsync(TestContext.Current.CancellationToken);

        Assert.Equal((false, true, false), (before, applied, removed));
        Assert.DoesNotContain("vpn_core", await ns.ExecCheckedAsync("nft", "list", "ruleset"));
    }

    [Fact]
    public async Task RemoveAsync_NothingAppliedAndTwice_Succeeds()
    {
        await using var ns = await CreateNamespaceAsync();
        var driver = Driver(ns);

        await driver.RemoveAsync(TestContext.Current.CancellationToken);
        await driver.ApplyAsync(TestContext.Current.CancellationToken);
        await driver.RemoveAsync(TestContext.Current.CancellationToken);
        await driver.RemoveAsync(TestContext.Current.CancellationToken);

        Assert.Equal("", await ns.ExecCheckedAsync("nft", "list", "ruleset"));
    }

    [Fact]
    public async Task ReadCountersAsync_AfterApply_EveryNamedCounterAtZeroAsNftReports()
    {
        await using var ns = await CreateNamespaceAsync();
        var driver = Driver(ns);
        await driver.ApplyAsync(TestContext.Current.CancellationToken);

        var counters = await driver.ReadCountersAsync(TestContext.Current.CancellationToken);

        Assert.Equal(NodeFirewall.Counters.All.Order(), counters.Select(c => c.Name).Order());
        Assert.All(counters, c => Assert.Equal((0ul, 0ul), (c.Packets, c.Bytes)));
        var nft = NftNatDriver.ParseCounters(await ns.ExecCheckedAsync("nft", "-j", "list", "counters", "table", "inet", "vpn_core"), "vpn_core");
        Assert.Equal(nft.OrderBy(c => c.Name), counters.OrderBy(c => c.Name));
    }

    [Fact]
    public async Task ReadCountersAsync_SpoofedPacketDropped_ItsCounterCountsIt()
    {
        await using var ns = await CreateNamespaceAsync();
        await using var outside = await CreateNamespaceAsync();
        // A neighbour on a veth link (neither the tunnel nor lo) sending from a client pool address: the anti-spoofing
        // chain drops it as outside_spoofed_pool before routing.
        await NetworkNamespace.ConnectAsync(outside, "10.64.9.2/24", ns, "10.64.9.1/24");
        var driver = Driver(ns);
        await driver.ApplyAsync(TestContext.Current.CancellationToken);

        NetworkNamespaceThread.Run(PathOf(outside), () =>
        {
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            socket.SendTo(new byte[12], new IPEndPoint(IPAddress.Parse("10.64.9.1"), 9));
        });

        // The datagram waits for ARP, so it arrives a moment after the send returns.
        var counters = new Dictionary<string, FirewallCounter>();
        for (var deadline = DateTime.UtcNow.AddSeconds(5); DateTime.UtcNow < deadline; await Task.Delay(20, TestContext.Current.CancellationToken))
        {
            counters = (await driver.ReadCountersAsync(TestContext.Current.CancellationToken)).ToDictionary(c => c.Name);
            if (counters[NodeFirewall.Counters.OutsideSpoofedPool].Packets > 0)
            {
                break;
            }
        }
        Assert.Equal(1ul, counters[NodeFirewall.Counters.OutsideSpoofedPool].Packets);
        Assert.Equal(20ul + 8 + 12, counters[NodeFirewall.Counters.OutsideSpoofedPool].Bytes);
        Assert.All(counters.Values.Where(c => c.Name != NodeFirewall.Counters.OutsideSpoofedPool), c => Assert.Equal(0ul, c.Packets));
        var nft = NftNatDriver.ParseCounters(await ns.ExecCheckedAsync("nft", "-j", "list", "counters", "table", "inet", "vpn_core"), "vpn_core");
        Assert.Equal(nft.OrderBy(c => c.Name), counters.Values.OrderBy(c => c.Name));
    }

    [Fact]
    public async Task ReadCountersAsync_NoTable_Empty()
    {
        await using var ns = await CreateNamespaceAsync();

        Assert.Empty(await Driver(ns).ReadCountersAsync(TestContext.Current.CancellationToken));
    }

    [Theory]
    [InlineData("jump", "add rule to chain forward: iifname \"wg0\" jump no_such_chain")]
    [InlineData("counter", "add rule to chain forward: counter name \"no_such_counter\" drop")]
    public async Task ApplyAsync_KernelRejectsBatch_NatExceptionAndPreviousTableIntact(string broken, string meaning)
    {
        await using var ns = await CreateNamespaceAsync();
        await Driver(ns).ApplyAsync(TestContext.Current.CancellationToken);
        var before = await ListTableAsync(ns, Table.Name, keepCounterValues: true);
        var bad = broken == "jump"
            ? new FirewallRule([new InterfaceMatch(true, "wg0")], null, new JumpAction("no_such_chain"))
            : new FirewallRule([], "no_such_counter", new DropAction());
        var table = Table with
        {
            Chains = Table.Chains.Select(c => c.Name == "forward" ? c with { Rules = [.. c.Rules, bad] } : c).ToList(),
        };

        var error = await Assert.ThrowsAsync<NatException>(() => Driver(ns, table).ApplyAsync(TestContext.Current.CancellationToken));

        Assert.Contains($"'{meaning}'", error.Message);
        Assert.Contains("(errno 2)", error.Message);
        Assert.Equal(2, Assert.IsType<NetlinkException>(error.InnerException).Errno);
        Assert.Equal(before, await ListTableAsync(ns, Table.Name, keepCounterValues: true));
    }

    /// <summary>
    /// Without a namespace path the driver keeps one socket, opened in the namespace of the thread that first uses it
    /// (the process's, in core). Here that first call runs on a thread inside the test's namespace; later calls come
    /// from ordinary threads and still reach that namespace, never the host's.
    /// </summary>
    [Fact]
    public async Task SharedSocket_FirstCallInsideNamespace_EveryLaterCallReachesIt()
    {
        await using var ns = await CreateNamespaceAsync();
        var table = NodeFirewall.Build(FirewallSamples.Options(table: NetworkNamespace.UniqueName("shared")));
        using var driver = new NativeNatDriver(table, NullLogger<NativeNatDriver>.Instance);
        NetworkNamespaceThread.Run(PathOf(ns), () => driver.ApplyAsync(TestContext.Current.CancellationToken).GetAwaiter().GetResult());
        var first = await ListTableAsync(ns, table.Name);

        for (var i = 0; i < 200; i++)
        {
            await driver.ApplyAsync(TestContext.Current.CancellationToken);
        }
        var again = await ListTableAsync(ns, table.Name);
        var present = await driver.IsPresentAsync(TestContext.Current.CancellationToken);
        var counters = await driver.ReadCountersAsync(TestContext.Current.CancellationToken);
        await driver.RemoveAsync(TestContext.Current.CancellationToken);
        var removed = await driver.IsPresentAsync(TestContext.Current.CancellationToken);

        Assert.Equal(first, again);
        Assert.Equal((true, false), (present, removed));
        Assert.Equal(NodeFirewall.Counters.All.Order(), counters.Select(c => c.Name).Order());
        Assert.Equal("", await ns.ExecCheckedAsync("nft", "list", "ruleset"));
        Assert.DoesNotContain(table.Name, (await ProcessRunner.RunAsync("nft", "list", "tables")).StandardOutput);
    }

    [Fact]
    public async Task SharedSocket_KernelRejectsBatchTwice_SameErrorBothTimesAndGoodDriverUnaffected()
    {
        await using var ns = await CreateNamespaceAsync();
        var bad = Table with
        {
            Chains = [.. Table.Chains, new FirewallChain("broken", null, [new FirewallRule([], null, new JumpAction("no_such_chain"))])],
        };

        var (messages, listing) = NetworkNamespaceThread.Run(PathOf(ns), () =>
        {
            using var good = new NativeNatDriver(Table, NullLogger<NativeNatDriver>.Instance);
            using var broken = new NativeNatDriver(bad, NullLogger<NativeNatDriver>.Instance);
            good.ApplyAsync(CancellationToken.None).GetAwaiter().GetResult();
            var errors = new[]
            {
                Assert.Throws<NatException>(() => broken.ApplyAsync(CancellationToken.None).GetAwaiter().GetResult()).Message,
                Assert.Throws<NatException>(() => broken.ApplyAsync(CancellationToken.None).GetAwaiter().GetResult()).Message,
            };
            good.ApplyAsync(CancellationToken.None).GetAwaiter().GetResult();
            return (errors, good.IsPresentAsync(CancellationToken.None).GetAwaiter().GetResult());
        });

        Assert.Equal(messages[0], messages[1]);
        Assert.Contains("'add rule to chain broken: jump no_such_chain'", messages[0]);
        Assert.True(listing);
        Assert.DoesNotContain("broken", await ns.ExecCheckedAsync("nft", "list", "ruleset"));
    }

    [Fact]
    public async Task Dispose_ThenApply_ThrowsObjectDisposed()
    {
        var driver = new NativeNatDriver(Table, NullLogger<NativeNatDriver>.Instance);

        driver.Dispose();

        await Assert.ThrowsAsync<ObjectDisposedException>(() => driver.ApplyAsync(TestContext.Current.CancellationToken));
    }

    [Fact]
    public async Task ApplyAsync_MissingNamespace_ThrowsNatException()
    {
        Prerequisites.RequireNetworkLab();
        var driver = new NativeNatDriver(Table, NullLogger<NativeNatDriver>.Instance, "/var/run/netns/vpn-core-test-missing");

        var error = await Assert.ThrowsAsync<NatException>(() => driver.ApplyAsync(TestContext.Current.CancellationToken));

        Assert.Contains("vpn-core-test-missing", error.Message);
    }

    [Fact]
    public void NameAndFeatures_NativeDriver_ReportsWhatItDoes()
    {
        var driver = new NativeNatDriver(Table, NullLogger<NativeNatDriver>.Instance);

        Assert.Equal("native", driver.Name);
        Assert.Equal(["nftables-netlink-batch", "atomic-replace", "counters", "read-back-verify"], driver.NativeFeatures);
    }

    [Fact]
    public void Differences_KernelMatchesTable_None()
    {
        var (chains, rules) = AsKernelHolds(Table);

        Assert.Empty(NativeNatDriver.Differences(Table, chains, rules));
    }

    [Fact]
    public void Differences_KernelDiffers_EveryDifferenceNamed()
    {
        var (chains, rules) = AsKernelHolds(Table);
        chains.Remove("input");
        chains["forward"] = chains["forward"] with { Priority = 10 };
        chains["tunnel_input"] = new NativeNatDriver.ChainState(1, 0, "filter");
        chains["extra"] = default;
        rules["postrouting"] = 1;

        Assert.Equal(
        [
            "chain tunnel_input is type filter hook 1 priority 0, expected a regular chain",
            "chain input is missing",
            "chain forward is type filter hook 2 priority 10, expected type filter hook 2 priority 0",
            "chain postrouting has 1 rules, expected 2",
            "unexpected chain extra",
        ], NativeNatDriver.Differences(Table, chains, rules));
    }

    private static (Dictionary<string, NativeNatDriver.ChainState> Chains, Dictionary<string, int> Rules) AsKernelHolds(FirewallTable table) => (
        table.Chains.ToDictionary(c => c.Name, c => c.Base is { } b
            ? new NativeNatDriver.ChainState(NfTables.HookNumberOf(b.Hook), b.Priority, NfTables.TypeName(b.Type))
            : default),
        table.Chains.Where(c => c.Rules.Count > 0).ToDictionary(c => c.Name, c => c.Rules.Count));

    private static NativeNatDriver Driver(NetworkNamespace ns, FirewallTable? table = null) =>
        new(table ?? Table, NullLogger<NativeNatDriver>.Instance, PathOf(ns));

    private static string PathOf(NetworkNamespace ns) => $"/var/run/netns/{ns.Name}";

    private protected override INatDriver DriverIn(NetworkNamespace ns) => Driver(ns);

    private protected override Task<NetworkNamespace> CreateLabAsync() => CreateNamespaceAsync();

    /// <summary>
    /// <c>nft -j list table</c> without what legitimately differs between two equal tables: handles (allocation
    /// order per namespace) and, unless asked, counter values.
    /// </summary>
    private static async Task<string> ListTableAsync(NetworkNamespace ns, string table, bool keepCounterValues = false)
    {
        var json = JsonNode.Parse(await ns.ExecCheckedAsync("nft", "-j", "list", "table", "inet", table))!;
        Normalize(json, keepCounterValues);
        return json.ToJsonString();
    }

    private static void Normalize(JsonNode? node, bool keepCounterValues)
    {
        switch (node)
        {
            case JsonObject obj:
                obj.Remove("handle");
                if (!keepCounterValues && obj["counter"] is JsonObject counter)
                {
                    counter.Remove("packets");
                    counter.Remove("bytes");
                }
                foreach (var (_, child) in obj.ToList())
                {
                    Normalize(child, keepCounterValues);
                }
                break;
            case JsonArray array:
                foreach (var child in array)
                {
                    Normalize(child, keepCounterValues);
                }
                break;
        }
    }

    private static Task<NetworkNamespace> CreateNamespaceAsync()
    {
        Prerequisites.RequireNetworkLab();
        return NetworkNamespace.CreateAsync("nnat");
    }
}
