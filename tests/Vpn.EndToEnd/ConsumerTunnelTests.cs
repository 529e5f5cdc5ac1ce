namespace Vpn.EndToEnd;

/// <summary>
/// Invariant 8 with real clients (<see cref="ConsumerLab"/>): a customer's device, brought up by wg-quick from its
/// session's file, reaches the internet only through the tunnel (NATed to the node's addresses, names resolved by the
/// node's resolver even when the device asks another one) and nothing else — no other customer, no service of the node,
/// no management network, no cloud metadata — while the drops are counted. Each driver (WG_NAT_DRIVER) runs the same
/// tests on its own stack.
/// </summary>
public abstract class ConsumerTunnelTests<TFixture>(TFixture stack) : IClassFixture<TFixture>
    where TFixture : ConsumerStackFixture
{
    protected TFixture Stack { get; } = stack;

    protected ConsumerLab Lab => Stack.Consumer;

    protected static readonly TimeSpan ProbeTime = TimeSpan.FromSeconds(2);

    protected static void Out(string line) => TestContext.Current.TestOutputHelper?.WriteLine($"[{DateTime.UtcNow:HH:mm:ss.fff}] {line}");

    [Fact(Timeout = 90_000)]
    public async Task Web_fetched_by_name_over_ipv4_sees_only_the_node_and_the_authority_only_the_node_resolver()
    {
        Stack.EnsureReady();
        var ct = TestContext.Current.CancellationToken;
        var a = Lab.A;
        foreach (var (label, text) in Stack.SessionConfigs)
        {
            var config = WgQuickConfig.Parse(text);
            await Stack.CheckAsync(config.Interface.Addresses.Count == 2 && config.Interface.Addresses[0].EndsWith("/32", StringComparison.Ordinal)
                && config.Interface.Addresses[1].StartsWith("fd64:6400::", StringComparison.Ordinal) && config.Interface.Addresses[1].EndsWith("/128", StringComparison.Ordinal),
                $"client {label}'s session must have an IPv4 /32 and an IPv6 /128 (IPv4 first):\n{text}");
            await Stack.CheckAsync(config.Interface.Dns.SequenceEqual([ConsumerLab.Gateway, ConsumerLab.Gateway6]),
                $"client {label}'s DNS must be the node's gateways {ConsumerLab.Gateway}, {ConsumerLab.Gateway6}:\n{text}");
            await Stack.CheckAsync(config.Peers.Count == 1 && config.Peers[0].AllowedIps.Contains("0.0.0.0/0") && config.Peers[0].AllowedIps.Contains("::/0"),
                $"client {label}'s AllowedIPs must route both families into the tunnel:\n{text}");
        }

        var resolved = await a.ExecAsync(TimeSpan.FromSeconds(15), "dig", "+short", "+time=2", "+tries=2", ConsumerLab.WebName, "A");
        Out($"A resolves {ConsumerLab.WebName} A (resolv.conf = the session's DNS): {resolved.StandardOutput.Trim()}");
        await Stack.CheckAsync(resolved.ExitCode == 0 && resolved.StandardOutput.Trim() == ConsumerLab.WebIp,
            $"A: {ConsumerLab.WebName} A resolved to '{resolved.StandardOutput.Trim()}' (exit {resolved.ExitCode} {resolved.StandardError.Trim()}), expected the authority's {ConsumerLab.WebIp}");

        foreach (var client in new[] { a, Lab.B })
        {
            var (ok, body, attempts) = await CurlUntilSuccessAsync(client, 4, TimeSpan.FromSeconds(15), ct);
            Out($"{client.Label}: curl -4 {ConsumerLab.WebUrl} → web saw {body}");
            await Stack.CheckAsync(ok, $"{client}: curl -4 {ConsumerLab.WebUrl} failed:\n{attempts}");
            await Stack.CheckAsync(ConsumerStackFixture.SameAddress(body, ConsumerLab.NodeUplinkIp),
                $"{client}: the web server saw '{body}', expected the node's uplink address {ConsumerLab.NodeUplinkIp} (NAT44)");
        }

        await ExpectWebSawOnlyTheNodeAsync();
        await ExpectAuthorityAskedOnlyByTheNodeAsync();
    }

    [Fact(Timeout = 90_000)]
    public async Task Query_to_a_hard_coded_foreign_resolver_is_answered_by_the_node_resolver()
    {
        Stack.EnsureReady();
        var ct = TestContext.Current.CancellationToken;
        var a = Lab.A;
        var foreignBefore = ForeignQueriesForWeb();
        var queries = new (string Server, string Type, string Transport, string Expected, string Foreign)[]
        {
            (ConsumerLab.ForeignResolverIp, "A", "+notcp", ConsumerLab.WebIp, ConsumerLab.ForeignAnswerIp),
            (ConsumerLab.ForeignResolverIp, "A", "+tcp", ConsumerLab.WebIp, ConsumerLab.ForeignAnswerIp),
            (ConsumerLab.ForeignResolverIp6, "AAAA", "+notcp", ConsumerLab.WebIp6, ConsumerLab.ForeignAnswerIp6),
            (ConsumerLab.ForeignResolverIp6, "AAAA", "+tcp", ConsumerLab.WebIp6, ConsumerLab.ForeignAnswerIp6),
        };
        foreach (var (server, type, transport, expected, foreign) in queries)
        {
            ct.ThrowIfCancellationRequested();
            var r = await a.ExecAsync(TimeSpan.FromSeconds(15), "dig", "+short", "+time=2", "+tries=2", transport, $"@{server}", ConsumerLab.WebName, type);
            var answer = r.StandardOutput.Trim();
            Out($"A: dig {transport} @{server} {ConsumerLab.WebName} {type} → '{answer}'");
            await Stack.CheckAsync(r.ExitCode == 0 && ConsumerStackFixture.SameAddress(answer, expected),
                $"A: dig {transport} @{server} {ConsumerLab.WebName} {type} answered '{answer}' (exit {r.ExitCode} {r.StandardError.Trim()}); expected the " +
                $"authority's {expected} through the node's resolver{(ConsumerStackFixture.SameAddress(answer, foreign) ? " — the foreign resolver answered: the query left the node unredirected" : "")}");
        }
        var foreignAfter = ForeignQueriesForWeb();
        await Stack.CheckAsync(foreignAfter.Count == foreignBefore.Count,
            $"the foreign resolver was asked while A queried it through the tunnel: {string.Join("; ", foreignAfter.Skip(foreignBefore.Count))}");

        // The foreign resolver is alive and answers differently: the node itself (its traffic is not redirected) asks it.
        var direct = await Lab.Node.ExecAsync("dig", "+short", "+time=2", "+tries=2", $"@{ConsumerLab.ForeignResolverIp}", ConsumerLab.WebName, "A");
        Out($"node: dig @{ConsumerLab.ForeignResolverIp} {ConsumerLab.WebName} A → '{direct.StandardOutput.Trim()}'");
        await Stack.CheckAsync(direct.ExitCode == 0 && direct.StandardOutput.Trim() == ConsumerLab.ForeignAnswerIp,
            $"the foreign resolver did not answer the node directly with {ConsumerLab.ForeignAnswerIp}: '{direct.StandardOutput.Trim()}' {direct.StandardError.Trim()}");
        await Stack.CheckAsync(ForeignQueriesForWeb().Count > foreignAfter.Count, "the foreign resolver's log did not show the node's direct query");
        await ExpectAuthorityAskedOnlyByTheNodeAsync();
    }

    [Fact(Timeout = 90_000)]
    public async Task Filter_table_flushed_by_another_program_is_back_within_seconds_and_isolates_again()
    {
        Stack.EnsureReady();
        var a = Lab.A;
        var b = Lab.B;
        await Stack.CheckAsync(b.TunnelIp is not null, $"{b} has no tunnel address");

        // What a host's nftables.service restart does (Debian's /etc/nftables.conf starts with "flush ruleset").
        await Lab.Node.ExecCheckedAsync("nft", "flush", "ruleset");
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var back = false;
        while (!back && watch.Elapsed < TimeSpan.FromSeconds(40))
        {
            await Task.Delay(500, TestContext.Current.CancellationToken);
            back = (await Lab.Node.ExecAsync("nft", "list", "table", "inet", "vpn_core")).ExitCode == 0;
        }
        Out($"table back after {watch.Elapsed.TotalSeconds:0.0}s");
        await Stack.CheckAsync(back, "core did not apply its table again within 40 s of a flush");

        var ping = await a.ExecAsync(TimeSpan.FromSeconds(15), "ping", "-c", "2", "-W", "1", b.TunnelIp!);
        await Stack.CheckAsync(ping.ExitCode != 0, $"after the table came back A still reaches B's tunnel address: {ping.StandardOutput}");
        var (ok, body, attempts) = await CurlUntilSuccessAsync(a, 4, TimeSpan.FromSeconds(15), TestContext.Current.CancellationToken);
        await Stack.CheckAsync(ok && ConsumerStackFixture.SameAddress(body, ConsumerLab.NodeUplinkIp), $"A cannot fetch through NAT after the table came back (body '{body}'):\n{attempts}");
    }

    [Fact(Timeout = 90_000)]
    public async Task Client_reaches_no_other_client_node_service_management_network_or_metadata_and_drops_are_counted()
    {
        Stack.EnsureReady();
        var ct = TestContext.Current.CancellationToken;
        var a = Lab.A;
        var b = Lab.B;
        await Stack.CheckAsync(b.TunnelIp is not null && b.TunnelIp6 is not null, $"{b} has no tunnel addresses");

        // B is really up, and its tunnel addresses answer the node.
        var (bOk, bBody, bAttempts) = await CurlUntilSuccessAsync(b, 4, TimeSpan.FromSeconds(15), ct);
        await Stack.CheckAsync(bOk && ConsumerStackFixture.SameAddress(bBody, ConsumerLab.NodeUplinkIp), $"{b} cannot fetch the web (body '{bBody}'):\n{bAttempts}");
        foreach (var address in new[] { b.TunnelIp!, b.TunnelIp6! })
        {
            var ping = await Lab.Node.ExecAsync("ping", "-c", "1", "-W", "2", address);
            await Stack.CheckAsync(ping.ExitCode == 0, $"the node cannot ping {b}'s tunnel address {address}: {ping.StandardOutput}{ping.StandardError}");
        }

        var gateway6 = $"[{ConsumerLab.Gateway6}]";
        var probes = new List<Probe>
        {
            new("B's tunnel IPv4 address", ["ping", "-c", "2", "-W", "1", b.TunnelIp!], null, Counters.TunnelToTunnel),
            new("B's tunnel IPv6 address", ["ping", "-6", "-c", "2", "-W", "1", b.TunnelIp6!], null, Counters.TunnelToTunnel),
            new("core's /metrics on the management address", null, $"http://{ConsumerLab.MetricsListen}/metrics", Counters.TunnelToNode),
            new("gRPC stand-in on the management address", null, $"http://{ConsumerLab.NodeManagementIp}:{ConsumerLab.GrpcStandInPort}/", Counters.TunnelToNode),
            // One wildcard listener behind every node address, shown alive on the management address: whether the node can
            // talk to its own gateway addresses is what core's resolver check depends on, and Core_reports_its_resolver_… tests it.
            new("gRPC stand-in on the IPv4 gateway", null, $"http://{ConsumerLab.Gateway}:{ConsumerLab.GrpcStandInPort}/", Counters.TunnelToNode,
                $"http://{ConsumerLab.NodeManagementIp}:{ConsumerLab.GrpcStandInPort}/"),
            new("gRPC stand-in on the IPv6 gateway", null, $"http://{gateway6}:{ConsumerLab.GrpcStandInPort}/", Counters.TunnelToNode,
                $"http://[{ConsumerLab.NodeManagementIp6}]:{ConsumerLab.GrpcStandInPort}/"),
            new("gRPC stand-in on the node's public address", null, $"http://{ConsumerLab.NodeUplinkIp}:{ConsumerLab.GrpcStandInPort}/", Counters.TunnelToNode),
            new("admin API stand-in on the management network", null, $"http://{ConsumerLab.ManagementServiceIp}:{ConsumerLab.ManagementServicePort}/", Counters.TunnelNotUplink),
            new("admin API stand-in on the management network (IPv6)", null, $"http://[{ConsumerLab.ManagementServiceIp6}]:{ConsumerLab.ManagementServicePort}/", Counters.TunnelNotUplink),
            new("cloud metadata", null, $"http://{ConsumerLab.MetadataIp}/", Counters.TunnelToPrivate),
        };

        var before = await Stack.FilterDropsAsync(ct);
        var watch = Stopwatch.StartNew();
        var outcomes = await Task.WhenAll(probes.Select(p => RunAsync(a, p)));
        var report = new StringBuilder();
        foreach (var (probe, result) in probes.Zip(outcomes))
        {
            report.AppendLine($"  A → {probe.What}: exit {result.ExitCode} {Squash(result.StandardOutput)} {Squash(result.StandardError)}");
        }
        Out($"A's probes ({watch.Elapsed.TotalSeconds:0.0}s, concurrently):\n{report}");
        var through = probes.Zip(outcomes).Where(x => x.Second.ExitCode == 0).Select(x => x.First.What).ToList();
        await Stack.CheckAsync(through.Count == 0, $"A reached what it must not: {string.Join(", ", through)}\n{report}");

        var after = await Stack.FilterDropsAsync(ct);
        Out($"filter_drops before: {ConsumerStackFixture.Describe(before)}\nfilter_drops after:  {ConsumerStackFixture.Describe(after)}");
        var missing = new StringBuilder();
        foreach (var group in probes.GroupBy(p => p.Counter))
        {
            var delta = after.GetValueOrDefault(group.Key) - before.GetValueOrDefault(group.Key);
            if (delta < (ulong)group.Count())
            {
                missing.AppendLine($"  {group.Key}: +{delta}, expected at least +{group.Count()} ({string.Join(", ", group.Select(p => p.What))})");
            }
        }
        await Stack.CheckAsync(missing.Length == 0,
            $"core's filter_drops did not count A's probes:\n{missing}before: {ConsumerStackFixture.Describe(before)}\nafter: {ConsumerStackFixture.Describe(after)}\n" +
            $"nft: {await Stack.NftCountersAsync()}");

        // Every target is alive: the node itself reaches each of them.
        foreach (var probe in probes.Where(p => p.Url is not null))
        {
            var url = probe.AliveUrl ?? probe.Url!;
            var r = await Lab.Node.ExecAsync("curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5", url], null, TimeSpan.FromSeconds(15));
            await Stack.CheckAsync(r.ExitCode == 0 && r.StandardOutput.Trim() == "200",
                $"{probe.What} ({url}) is not alive from the node itself (exit {r.ExitCode}, {r.StandardOutput.Trim()} {r.StandardError.Trim()}): the probe proved nothing");
        }
        // core exports the same counters on /metrics (read every few seconds, so only their presence is checked here).
        var metrics = await Lab.Node.ExecAsync("curl", ["-sS", "--max-time", "5", $"http://{ConsumerLab.MetricsListen}/metrics"], null, TimeSpan.FromSeconds(15));
        var exported = probes.Select(p => p.Counter).Distinct().Where(c => !metrics.StandardOutput.Contains($"reason=\"{c}\"", StringComparison.Ordinal)).ToList();
        await Stack.CheckAsync(metrics.ExitCode == 0 && exported.Count == 0,
            $"core's /metrics lacks the filter's drop series for [{string.Join(", ", exported)}] (exit {metrics.ExitCode}):\n" +
            string.Join('\n', metrics.StandardOutput.Split('\n').Where(l => l.Contains("filter", StringComparison.Ordinal))));
        foreach (var label in new[] { "admin", "grpc", "metadata" })
        {
            var fromTunnel = Lab.Connections(label).Where(c => IsTunnelOrHomeAddress(c.Source)).ToList();
            await Stack.CheckAsync(fromTunnel.Count == 0, $"the {label} server accepted connections from a client: {string.Join(", ", fromTunnel)}");
        }
    }

    [Fact(Timeout = 60_000)]
    public async Task Core_reports_its_resolver_answering_on_both_gateways_and_the_node_healthy()
    {
        Stack.EnsureReady();
        var ct = TestContext.Current.CancellationToken;
        NodeStatus? status = null;
        var watch = Stopwatch.StartNew();
        while (status?.Resolver is not { Checked: true, Healthy: true } && watch.Elapsed < TimeSpan.FromSeconds(20))
        {
            status = await Stack.GetNodeStatusAsync(ct);
            await Task.Delay(250, ct);
        }
        var resolver = status?.Resolver;
        var about = $"resolver: checked={resolver?.Checked} healthy={resolver?.Healthy} addresses=[{string.Join(", ", resolver?.Addresses ?? [])}] " +
            $"detail='{resolver?.Detail}'; node healthy={status?.Healthy}; filter_drops: " +
            (status is null ? "?" : ConsumerStackFixture.Describe(status.FilterDrops.ToDictionary(c => c.Name, c => c.Packets))) +
            " (core asks from inside the node: its queries and the answers reach the gateway addresses over lo)";
        Out(about);
        await Stack.CheckAsync(resolver is { Checked: true, Healthy: true } && status!.Healthy,
            $"core does not report its resolver (unbound, answering clients fine) healthy within 20 s: {about}");
        await Stack.CheckAsync(resolver!.Addresses.SequenceEqual([ConsumerLab.Gateway, ConsumerLab.Gateway6]), $"resolver addresses: {about}");
    }

    // ---------------------------------------------------------------- helpers

    protected async Task<(bool Ok, string Body, string Attempts)> CurlUntilSuccessAsync(WgQuickClient client, int family, TimeSpan budget,
        CancellationToken cancellationToken)
    {
        var log = new StringBuilder();
        var watch = Stopwatch.StartNew();
        while (true)
        {
            var r = await client.CurlAsync(family, ConsumerLab.WebUrl, TimeSpan.FromSeconds(5));
            if (r.ExitCode == 0)
            {
                return (true, r.StandardOutput.Trim(), log.ToString());
            }
            log.AppendLine($"[{watch.Elapsed.TotalSeconds:0.0}s] curl -{family} exit {r.ExitCode}: {r.StandardError.Trim()}");
            if (watch.Elapsed > budget)
            {
                return (false, "", log.ToString());
            }
            await Task.Delay(300, cancellationToken);
        }
    }

    /// <summary>Every connection the web server accepted since setup came from the node's internet addresses.</summary>
    protected async Task ExpectWebSawOnlyTheNodeAsync()
    {
        var seen = Lab.Connections("web").Skip(Stack.WebConnectionsAtSetup).ToList();
        Out($"web server connections since setup: {string.Join(", ", seen.Select(c => c.Source))}");
        var foreign = seen.Where(c => !Lab.NodeInternetAddresses.Any(n => ConsumerStackFixture.SameAddress(n, c.Source))).ToList();
        await Stack.CheckAsync(seen.Count > 0 && foreign.Count == 0,
            $"the web server must see only the node's addresses [{string.Join(", ", Lab.NodeInternetAddresses)}] (never a home address " +
            $"[{Lab.A.HomeIp}, {Lab.A.HomeIp6}, {Lab.B.HomeIp}, {Lab.B.HomeIp6}]); it saw: {string.Join(", ", seen.Select(c => c.Source))}");
    }

    /// <summary>The authority was asked for the web name, only ever by the node (never from a home or tunnel address).</summary>
    protected async Task ExpectAuthorityAskedOnlyByTheNodeAsync()
    {
        var asked = Lab.AuthorityQueries.Where(q => q.Name == ConsumerLab.WebName).ToList();
        Out($"authority queries for {ConsumerLab.WebName}: {string.Join("; ", asked)}");
        var notNode = asked.Where(q => !Lab.NodeInternetAddresses.Any(n => ConsumerStackFixture.SameAddress(n, q.Source))).ToList();
        await Stack.CheckAsync(asked.Count > 0 && notNode.Count == 0,
            $"the authority must be asked for {ConsumerLab.WebName} by the node's resolver only (from {string.Join(" or ", Lab.NodeInternetAddresses)}); " +
            $"it logged: {string.Join("; ", asked)}");
    }

    private List<DnsQuery> ForeignQueriesForWeb() => [.. Lab.ForeignResolverQueries.Where(q => q.Name == ConsumerLab.WebName)];

    protected bool IsTunnelOrHomeAddress(string address) =>
        ConsumerStackFixture.IsHomeAddress(Lab, address)
        || address.StartsWith("10.64.0.", StringComparison.Ordinal) || address.StartsWith("fd64:6400:", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// A connection attempt from a client: a command (ping) or a URL (curl, family from the URL), the counter that must
    /// count it, and where the node itself shows the target alive when not at <paramref name="Url"/>.
    /// </summary>
    protected sealed record Probe(string What, string[]? Command, string? Url, string Counter, string? AliveUrl = null);

    protected static Task<ProcessResult> RunAsync(WgQuickClient client, Probe probe)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(probe);
        if (probe.Command is { } command)
        {
            return client.ExecAsync(TimeSpan.FromSeconds(15), command[0], command[1..]);
        }
        var family = probe.Url!.Contains('[', StringComparison.Ordinal) ? 6 : 4;
        return client.CurlAsync(family, probe.Url, ProbeTime, connectTimeout: TimeSpan.FromSeconds(1.5));
    }

    protected static string Squash(string text) => text.ReplaceLineEndings(" ").Trim();
}

/// <summary>Counter names of core's filter table (NodeFirewall.Counters), as GetNodeStatus.filter_drops reports them.</summary>
internal static class Counters
{
    public const string TunnelToTunnel = "tunnel_to_tunnel";
    public const string TunnelToNode = "tunnel_to_node";
    public const string TunnelToPrivate = "tunnel_to_private";
    public const string TunnelNotUplink = "tunnel_not_uplink";
    public const string TunnelIpv6Refused = "tunnel_ipv6_refused";
}

/// <summary>The dual-stack node: IPv6 goes out NATed (NAT66) to the node's IPv6 uplink address.</summary>
public abstract class DualStackTunnelTests<TFixture>(TFixture stack) : ConsumerTunnelTests<TFixture>(stack)
    where TFixture : ConsumerStackFixture
{
    [Fact(Timeout = 90_000)]
    public async Task Web_fetched_by_name_over_ipv6_sees_only_the_node_ipv6_address()
    {
        Stack.EnsureReady();
        var ct = TestContext.Current.CancellationToken;
        var resolved = await Lab.A.ExecAsync(TimeSpan.FromSeconds(15), "dig", "+short", "+time=2", "+tries=2", ConsumerLab.WebName, "AAAA");
        await Stack.CheckAsync(resolved.ExitCode == 0 && ConsumerStackFixture.SameAddress(resolved.StandardOutput.Trim(), ConsumerLab.WebIp6),
            $"A: {ConsumerLab.WebName} AAAA resolved to '{resolved.StandardOutput.Trim()}' ({resolved.StandardError.Trim()}), expected {ConsumerLab.WebIp6}");
        var (ok, body, attempts) = await CurlUntilSuccessAsync(Lab.A, 6, TimeSpan.FromSeconds(15), ct);
        Out($"A: curl -6 {ConsumerLab.WebUrl} → web saw {body}");
        await Stack.CheckAsync(ok, $"A: curl -6 {ConsumerLab.WebUrl} failed:\n{attempts}");
        await Stack.CheckAsync(ConsumerStackFixture.SameAddress(body, ConsumerLab.NodeUplinkIp6),
            $"A: the web server saw '{body}' over IPv6, expected the node's uplink address {ConsumerLab.NodeUplinkIp6} (NAT66)");
        await ExpectWebSawOnlyTheNodeAsync();
        await ExpectAuthorityAskedOnlyByTheNodeAsync();
    }
}

public sealed class CliDualStackTunnelTests(CliConsumerStackFixture stack) : DualStackTunnelTests<CliConsumerStackFixture>(stack);

public sealed class NativeDualStackTunnelTests(NativeConsumerStackFixture stack) : DualStackTunnelTests<NativeConsumerStackFixture>(stack);

/// <summary>
/// A node without IPv6 (WG_IPV6_EGRESS=false, no IPv6 uplink address, upstream over IPv4): the session still routes
/// ::/0 into the tunnel, where the node refuses it at once (ICMPv6 administratively prohibited), so a dual-stack client
/// neither waits for a timeout nor sends anything around the tunnel over its home network's IPv6.
/// </summary>
public abstract class Ipv4OnlyNodeTunnelTests<TFixture>(TFixture stack) : ConsumerTunnelTests<TFixture>(stack)
    where TFixture : ConsumerStackFixture
{
    [Fact(Timeout = 90_000)]
    public async Task Ipv6_on_an_ipv4_only_node_is_refused_in_the_tunnel_at_once_and_never_goes_around_it()
    {
        Stack.EnsureReady();
        var ct = TestContext.Current.CancellationToken;
        var a = Lab.A;
        var before = await Stack.FilterDropsAsync(ct);

        var resolved = await a.ExecAsync(TimeSpan.FromSeconds(15), "dig", "+short", "+time=2", "+tries=2", ConsumerLab.WebName, "AAAA");
        await Stack.CheckAsync(resolved.ExitCode == 0 && ConsumerStackFixture.SameAddress(resolved.StandardOutput.Trim(), ConsumerLab.WebIp6),
            $"A: {ConsumerLab.WebName} AAAA should still resolve (the resolver answers on {ConsumerLab.Gateway6}): '{resolved.StandardOutput.Trim()}' {resolved.StandardError.Trim()}");

        var watch = Stopwatch.StartNew();
        var fetch = await a.CurlAsync(6, ConsumerLab.WebUrl, TimeSpan.FromSeconds(10));
        var took = watch.Elapsed;
        Out($"A: curl -6 {ConsumerLab.WebUrl} → exit {fetch.ExitCode} after {took.TotalSeconds:0.00}s: {fetch.StandardError.Trim()}");
        await Stack.CheckAsync(fetch.ExitCode == 7 && took < TimeSpan.FromSeconds(5),
            $"A: curl -6 must fail at once with 'Couldn't connect' (exit 7: refused in the tunnel), not time out or succeed; got exit {fetch.ExitCode} " +
            $"after {took.TotalSeconds:0.00}s, body '{fetch.StandardOutput.Trim()}', {fetch.StandardError.Trim()}");

        var ping = await a.ExecAsync(TimeSpan.FromSeconds(15), "ping", "-6", "-c", "1", "-W", "2", ConsumerLab.WebIp6);
        Out($"A: ping -6 {ConsumerLab.WebIp6}: {Squash(ping.StandardOutput)}");
        await Stack.CheckAsync(ping.StandardOutput.Contains("Administratively prohibited", StringComparison.OrdinalIgnoreCase),
            $"A: ping -6 {ConsumerLab.WebIp6} should be answered 'Administratively prohibited' by the node: exit {ping.ExitCode} {ping.StandardOutput}{ping.StandardError}");

        var after = await Stack.FilterDropsAsync(ct);
        Out($"filter_drops before: {ConsumerStackFixture.Describe(before)}\nfilter_drops after:  {ConsumerStackFixture.Describe(after)}");
        await Stack.CheckAsync(after.GetValueOrDefault(Counters.TunnelIpv6Refused) >= before.GetValueOrDefault(Counters.TunnelIpv6Refused) + 2,
            $"{Counters.TunnelIpv6Refused} did not count the refused curl and ping: before {ConsumerStackFixture.Describe(before)}, after {ConsumerStackFixture.Describe(after)}");

        var v6 = Lab.Connections("web").Skip(Stack.WebConnectionsAtSetup).Where(c => c.Source.Contains(':', StringComparison.Ordinal)).ToList();
        await Stack.CheckAsync(v6.Count == 0, $"the web server saw IPv6 connections from an IPv4-only node's client: {string.Join(", ", v6.Select(c => c.Source))}");

        var (ok, body, attempts) = await CurlUntilSuccessAsync(a, 4, TimeSpan.FromSeconds(15), ct);
        await Stack.CheckAsync(ok && ConsumerStackFixture.SameAddress(body, ConsumerLab.NodeUplinkIp), $"A: IPv4 by name must still work (body '{body}'):\n{attempts}");
        await ExpectWebSawOnlyTheNodeAsync();
        await ExpectAuthorityAskedOnlyByTheNodeAsync();
    }
}

public sealed class CliIpv4OnlyNodeTunnelTests(CliIpv4OnlyConsumerStackFixture stack) : Ipv4OnlyNodeTunnelTests<CliIpv4OnlyConsumerStackFixture>(stack);

public sealed class NativeIpv4OnlyNodeTunnelTests(NativeIpv4OnlyConsumerStackFixture stack) : Ipv4OnlyNodeTunnelTests<NativeIpv4OnlyConsumerStackFixture>(stack);
