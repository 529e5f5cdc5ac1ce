namespace Vpn.EndToEnd;

/// <summary>
/// One stack for every fault test class (<see cref="FaultStackCollection"/>): each test restores what it breaks and
/// starts from a converged node (<see cref="FaultStackFixture.PrepareAsync"/>), so classes and tests run in any order.
/// </summary>
[CollectionDefinition(Name)]
public sealed class FaultStackCollection : ICollectionFixture<FaultStackFixture>
{
    public const string Name = "fault stack";
}

/// <summary>What the fault tests share: the stack, the bounds of their waits, test output, and polls of the node.</summary>
public abstract class FaultTestBase(FaultStackFixture stack)
{
    protected FaultStackFixture Stack { get; } = stack;

    protected static readonly TimeSpan Converge = FaultStackFixture.ConvergenceTimeout;

    // A node that lost a peer's handshake state is only re-keyed by the client's timers (~15 s without an answer).
    protected static readonly TimeSpan TrafficAfterStateLoss = TimeSpan.FromSeconds(75);

    protected static void Out(string line) => TestContext.Current.TestOutputHelper?.WriteLine($"[{DateTime.UtcNow:HH:mm:ss.fff}] {line}");

    /// <summary>Re-registers the fixture's node (same name, so the same row) with another core endpoint.</summary>
    protected async Task SetCoreEndpointAsync(string coreEndpoint, CancellationToken ct)
    {
        var node = await Stack.EntryClient.AdminAsync(HttpMethod.Post, "/v1/admin/nodes", new
        {
            Name = VpnStackFixture.NodeName,
            Region = VpnStackFixture.Region,
            CountryCode = "DE",
            CityCode = "fra",
            Pool = "default",
            PublicEndpoint = Stack.NodeLab.NodeEndpoint,
            PublicKey = Stack.NodeKeys.PublicKey,
            CoreEndpoint = coreEndpoint,
            Capacity = 100,
        }, ct);
        await Stack.ExpectStatusAsync(node, HttpStatusCode.OK);
        Stack.Step($"node's core endpoint set to {coreEndpoint}");
    }

    /// <summary>
    /// The first steps of a test that needs sessions on the node: the stack prepared, at least <paramref name="count"/>
    /// sessions active, and the node converged to them (the peers and how long that took).
    /// </summary>
    protected async Task<(IReadOnlyDictionary<string, string> Peers, TimeSpan Took)> PrepareWithSessionsAsync(int count, string situation,
        CancellationToken ct)
    {
        await Stack.PrepareAsync(ct);
        await EnsureActiveSessionsAsync(count, ct);
        return await Stack.WaitForConvergenceAsync(situation, Converge, ct);
    }

    /// <summary>Starts sessions for new customers until at least <paramref name="count"/> are active on the node.</summary>
    protected async Task EnsureActiveSessionsAsync(int count, CancellationToken ct)
    {
        var missing = count - (await Stack.DatabaseActivePeersAsync(ct)).Count;
        if (missing <= 0)
        {
            return;
        }
        foreach (var device in await Stack.CreateCustomersWithDevicesAsync(missing, ct))
        {
            await Stack.StartSessionUntilCreatedAsync(device, TimeSpan.FromSeconds(60), ct);
        }
    }

    /// <summary>Pool addresses (/32) no active session holds, from the top of the pool down (far from the allocator's start).</summary>
    protected static IEnumerable<string> FreeAddresses(IReadOnlyDictionary<string, string> truth)
    {
        var used = truth.Values.SelectMany(v => v.Split(',')).ToHashSet(StringComparer.Ordinal);
        for (var last = 250; last > 1; last--)
        {
            var address = $"10.64.0.{last}/32";
            if (!used.Contains(address))
            {
                yield return address;
            }
        }
    }

    /// <summary>Polls the node's peers until <paramref name="condition"/>; fails after <paramref name="bound"/>. Returns the time taken.</summary>
    protected async Task<TimeSpan> WaitForNodeAsync(Func<IReadOnlyDictionary<string, string>, bool> condition, string what, TimeSpan bound, CancellationToken ct)
    {
        var watch = Stopwatch.StartNew();
        var last = "";
        while (true)
        {
            var (peers, error) = await Stack.ReadNodePeersAsync();
            if (peers is not null && condition(peers))
            {
                return watch.Elapsed;
            }
            last = peers is null ? error : string.Join("\n", peers.Select(p => $"  {p.Key} [{p.Value}]"));
            if (watch.Elapsed > bound)
            {
                await Stack.FailAsync($"timed out after {bound.TotalSeconds:0}s waiting for {what}; node peers now:\n{last}\ncore status: {await Stack.DescribeNodeStatusAsync()}");
            }
            await Task.Delay(200, ct);
        }
    }

    /// <summary>
    /// During an outage: polls until core's status satisfies <paramref name="until"/> (bounded), failing at once if the node's
    /// peers ever differ from <paramref name="expected"/> (no pruning, no loss). Returns the last status.
    /// </summary>
    protected async Task<NodeStatus> HoldPeersWhileAsync(IReadOnlyDictionary<string, string> expected, Func<NodeStatus, bool> until, string situation,
        CancellationToken ct)
    {
        var watch = Stopwatch.StartNew();
        var bound = TimeSpan.FromSeconds(90);
        var checks = 0;
        while (true)
        {
            var (peers, error) = await Stack.ReadNodePeersAsync();
            var difference = peers is null ? "  " + error : VpnStackFixture.DescribeDifference(expected, peers);
            if (difference is not null)
            {
                await Stack.FailAsync($"{situation}: after {VpnStackFixture.Seconds(watch.Elapsed)} ({checks} good checks) the node's peers differ from " +
                    $"the last-known-good set (core must neither prune nor lose peers it cannot confirm are unwanted):\n{difference}" +
                    $"core status: {await Stack.DescribeNodeStatusAsync()}");
            }
            checks++;
            var status = await Stack.GetNodeStatusAsync(ct);
            if (until(status))
            {
                Stack.Step($"{situation}: peers held for {VpnStackFixture.Seconds(watch.Elapsed)} over {checks} checks; {VpnStackFixture.Describe(status)}");
                return status;
            }
            if (watch.Elapsed > bound)
            {
                await Stack.FailAsync($"{situation}: core's status never reached the expected failed passes within {bound.TotalSeconds:0}s: {VpnStackFixture.Describe(status)}");
            }
            await Task.Delay(250, ct);
        }
    }
}
