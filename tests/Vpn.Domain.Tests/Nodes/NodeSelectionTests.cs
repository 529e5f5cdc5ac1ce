using Vpn.Domain.Nodes;

namespace Vpn.Domain.Tests.Nodes;

public class NodeSelectionTests
{
    private static readonly DateTimeOffset Now = new(2025, 6, 1, 12, 0, 0, TimeSpan.Zero);
    private static readonly TimeSpan Freshness = TimeSpan.FromSeconds(60);

    // Small value sets, weighted so that matches, near-misses and case variants all happen often.
    private static readonly Gen<string> Region = Gen.Frequency((3, "eu-west"), (2, "EU-West"), (1, "us-east"), (1, "ap-south"));
    private static readonly Gen<string?> Country = Gen.Frequency<string?>((1, null), (3, "DE"), (2, "de"), (1, "FR"));
    private static readonly Gen<string?> City = Gen.Frequency<string?>((1, null), (3, "fra"), (2, "FRA"), (1, "par"));
    private static readonly Gen<string?> Pool = Gen.Frequency<string?>((1, null), (3, "streaming"), (2, "Streaming"), (1, "default"));

    private static readonly Gen<string> RequestRegion = Gen.Frequency((4, "eu-west"), (2, "EU-WEST"), (1, "us-east"), (1, "nowhere"));
    private static readonly Gen<string?> RequestCountry = Gen.Frequency<string?>((5, null), (2, "de"), (1, "DE"), (1, "FR"));
    private static readonly Gen<string?> RequestCity = Gen.Frequency<string?>((5, null), (2, "Fra"), (1, "fra"), (1, "par"));
    private static readonly Gen<string?> RequestPool = Gen.Frequency<string?>((5, null), (2, "STREAMING"), (1, "streaming"), (1, "default"));

    /// <summary>Heartbeat ages clustered around the freshness bound (exactly on it, just either side), plus far-off and missing ones.</summary>
    private static readonly Gen<DateTimeOffset?> Heartbeat = Gen.Frequency<DateTimeOffset?>(
        (1, Gen.Const((DateTimeOffset?)null)),
        (2, Gen.Const((DateTimeOffset?)(Now - Freshness))),
        (4, Gen.Int[-3000, 3000].Select(ms => (DateTimeOffset?)(Now - Freshness + TimeSpan.FromMilliseconds(ms)))),
        (4, Gen.Int[-5, 200].Select(s => (DateTimeOffset?)(Now - TimeSpan.FromSeconds(s)))),
        (1, Gen.OneOf(-1L, 1L).Select(t => (DateTimeOffset?)(Now - Freshness + TimeSpan.FromTicks(t)))));

    private static readonly Gen<NodeSnapshot> Node =
        Gen.Select(
            Gen.Select(Gen.Guid, Region, Country, City, Pool),
            Gen.Select(Gen.Int[0, 10], Gen.Frequency((6, true), (1, false)), Heartbeat, Gen.Int[0, 8], Gen.Frequency((6, false), (1, true))),
            (a, b) =>
            {
                var (id, region, country, city, pool) = a;
                var (capacity, healthy, heartbeat, active, draining) = b;
                return new NodeSnapshot(id, region, country, city, pool, capacity, healthy, heartbeat, active) { Draining = draining };
            });

    /// <summary>Nodes plus a request; the hint is none, one of the nodes (by index) or an unknown id.</summary>
    private static readonly Gen<(NodeSnapshot[] Nodes, NodeRequest Request)> Scenario =
        from nodes in Node.Array[0, 12]
        from region in RequestRegion
        from country in RequestCountry
        from city in RequestCity
        from pool in RequestPool
        from hint in Gen.Int[-3, 11]
        from unknown in Gen.Guid
        let hintId = hint switch
        {
            -3 or -2 => (Guid?)null,
            -1 => unknown,
            _ => nodes.Length == 0 ? null : nodes[hint % nodes.Length].Id,
        }
        select (nodes, new NodeRequest(region, country, city, pool, hintId));

    /// <summary>The policy written out from the contract, independently of the implementation.</summary>
    private static NodeRejection? Expected(NodeSnapshot node, NodeRequest request)
    {
        static bool Same(string? a, string? b) => string.Equals(a, b, StringComparison.OrdinalIgnoreCase);

        if (!Same(node.Region, request.Region))
        {
            return NodeRejection.RegionMismatch;
        }
        if ((request.CountryCode is not null && !Same(node.CountryCode, request.CountryCode))
            || (request.CityCode is not null && !Same(node.CityCode, request.CityCode))
            || (request.Pool is not null && !Same(node.Pool, request.Pool)))
        {
            return NodeRejection.FilterMismatch;
        }
        if (node.Draining)
        {
            return NodeRejection.Draining;
        }
        if (!node.Healthy)
        {
            return NodeRejection.Unhealthy;
        }
        if (node.LastHeartbeatAt is null || Now - node.LastHeartbeatAt.Value > Freshness)
        {
            return NodeRejection.StaleHeartbeat;
        }
        if (node.ActiveSessions >= node.Capacity)
        {
            return NodeRejection.AtCapacity;
        }
        return null;
    }

    private static string Print((NodeSnapshot[] Nodes, NodeRequest Request) s) =>
        $"{s.Request}\n  " + string.Join("\n  ", s.Nodes.Select(n =>
            $"{n.Id:N} {n.Region}/{n.CountryCode}/{n.CityCode}/{n.Pool} healthy={n.Healthy} draining={n.Draining} age={(n.LastHeartbeatAt is { } b ? (Now - b).ToString() : "none")} {n.ActiveSessions}/{n.Capacity}"));

    [Fact]
    public void Select_RandomNodesAndRequests_FollowsPolicy()
    {
        Scenario.Sample(s =>
        {
            var (nodes, request) = s;
            var candidates = nodes.Where(n => Expected(n, request) is null).ToList();

            var choice = NodeSelection.Select(nodes, request, Now, Freshness, new Random(nodes.Length));

            if (candidates.Count == 0)
            {
                Assert.Null(choice.Node);
                Assert.Equal(nodes.Length, choice.Rejected.Values.Sum());
            }
            else
            {
                var pick = Assert.IsType<NodeSnapshot>(choice.Node);
                Assert.Contains(pick, candidates);
                // Never unhealthy, stale, full or mismatched: spelled out for the failure message.
                Assert.True(pick.Healthy);
                Assert.False(pick.Draining);
                Assert.True(pick.LastHeartbeatAt is { } beat && Now - beat <= Freshness);
                Assert.True(pick.ActiveSessions < pick.Capacity);
                Assert.Equal(request.Region, pick.Region, ignoreCase: true);

                var hinted = request.NodeHint is { } hint ? candidates.Find(n => n.Id == hint) : null;
                if (hinted is not null)
                {
                    Assert.Same(hinted, pick);
                }
                else
                {
                    // Lowest load ratio: pick.Active / pick.Capacity <= c.Active / c.Capacity for every candidate.
                    Assert.All(candidates, c =>
                        Assert.True((long)pick.ActiveSessions * c.Capacity <= (long)c.ActiveSessions * pick.Capacity,
                            $"picked {pick.ActiveSessions}/{pick.Capacity} over {c.ActiveSessions}/{c.Capacity}"));
                }
                Assert.Equal(nodes.Length - candidates.Count, choice.Rejected.Values.Sum());
            }

            // Every rejection is attributed to its first failing rule, in the documented order.
            foreach (var reason in Enum.GetValues<NodeRejection>())
            {
                Assert.Equal(nodes.Count(n => Expected(n, request) == reason), choice.Rejected.GetValueOrDefault(reason));
            }
            Assert.All(nodes, n => Assert.Equal(Expected(n, request), NodeSelection.Reject(n, request, Now, Freshness)));
        }, iter: 5000, print: Print);
    }

    [Fact]
    public void Select_EqualLoadCandidates_EveryTiedCandidateIsChosen()
    {
        // k tied candidates at load 1/2 with different capacities, plus less attractive and rejected nodes.
        var scenario =
            from k in Gen.Int[2, 6]
            from capacities in Gen.Int[1, 20].Array[k]
            from others in Node.Array[0, 6]
            from seed in Gen.Int
            select (k, capacities, others, seed);

        scenario.Sample(t =>
        {
            var tied = t.capacities.Select(c => Fresh(capacity: 2 * c, active: c)).ToArray();
            // Others either fail the request or carry a strictly higher load than 1/2.
            var others = t.others.Select(n => n with { ActiveSessions = n.Capacity / 2 + 1 }).ToArray();
            var nodes = others.Concat(tied).ToArray();
            var random = new Random(t.seed);
            var chosen = new HashSet<Guid>();

            for (var draw = 0; draw < 400; draw++)
            {
                var pick = NodeSelection.Select(nodes, new NodeRequest("eu-west"), Now, Freshness, random).Node;
                Assert.NotNull(pick);
                Assert.Contains(pick, tied);
                chosen.Add(pick.Id);
            }

            Assert.Equal(tied.Select(n => n.Id).ToHashSet(), chosen);
        }, iter: 200);
    }

    [Fact]
    public void Select_ThreeTiedCandidatesFixedSeed_ChoosesEachOfThem()
    {
        // Equal ratios written differently: 1/3, 2/6 and 3/9; the 1/2 node is never chosen.
        NodeSnapshot[] nodes = [Fresh(3, 1), Fresh(6, 2), Fresh(9, 3), Fresh(2, 1)];
        var random = new Random(20250601);
        var counts = nodes.ToDictionary(n => n.Id, _ => 0);

        for (var draw = 0; draw < 300; draw++)
        {
            var pick = NodeSelection.Select(nodes, new NodeRequest("eu-west"), Now, Freshness, random).Node!;
            counts[pick.Id]++;
        }

        Assert.All(nodes.Take(3), n => Assert.True(counts[n.Id] > 0, $"{n.ActiveSessions}/{n.Capacity} never chosen"));
        Assert.Equal(0, counts[nodes[3].Id]);
    }

    [Fact]
    public void Select_HintIsCandidate_WinsOverLowerLoad()
    {
        var idle = Fresh(10, 0);
        var busy = Fresh(10, 9);

        var choice = NodeSelection.Select([idle, busy], new NodeRequest("eu-west", NodeHint: busy.Id), Now, Freshness, new Random(1));

        Assert.Same(busy, choice.Node);
    }

    [Fact]
    public void Select_HintNotACandidate_IsIgnored()
    {
        var idle = Fresh(10, 0);
        var full = Fresh(10, 10);
        var elsewhere = Fresh(10, 0) with { Region = "us-east" };

        Assert.Same(idle, NodeSelection.Select([idle, full], new NodeRequest("eu-west", NodeHint: full.Id), Now, Freshness, new Random(1)).Node);
        Assert.Same(idle, NodeSelection.Select([idle, elsewhere], new NodeRequest("eu-west", NodeHint: elsewhere.Id), Now, Freshness, new Random(1)).Node);
        Assert.Same(idle, NodeSelection.Select([idle], new NodeRequest("eu-west", NodeHint: Guid.NewGuid()), Now, Freshness, new Random(1)).Node);
    }

    [Fact]
    public void Select_DrainingNode_NeverChosenEvenIdleOrHinted()
    {
        var draining = Fresh(10, 0) with { Draining = true };
        var busy = Fresh(10, 9);

        var lowest = NodeSelection.Select([draining, busy], new NodeRequest("eu-west"), Now, Freshness, new Random(1));
        var hinted = NodeSelection.Select([draining, busy], new NodeRequest("eu-west", NodeHint: draining.Id), Now, Freshness, new Random(1));
        var alone = NodeSelection.Select([draining], new NodeRequest("eu-west"), Now, Freshness, new Random(1));

        Assert.Same(busy, lowest.Node);
        Assert.Same(busy, hinted.Node);
        Assert.Null(alone.Node);
        Assert.Equal(1, alone.Rejected[NodeRejection.Draining]);
    }

    [Fact]
    public void Select_DrainingAndUnhealthy_CountedAsDraining()
    {
        var node = Fresh(10, 0) with { Draining = true, Healthy = false, LastHeartbeatAt = null };

        Assert.Equal(NodeRejection.Draining, NodeSelection.Reject(node, new NodeRequest("eu-west"), Now, Freshness));
        Assert.Equal(NodeRejection.FilterMismatch, NodeSelection.Reject(node, new NodeRequest("eu-west", Pool: "other"), Now, Freshness));
    }

    [Fact]
    public void Select_NothingMatches_CountsEachNodeOnceByPrecedence()
    {
        NodeSnapshot[] nodes =
        [
            // Fails everything: counted as a region mismatch only.
            new(Guid.NewGuid(), "us-east", "FR", "par", "default", 0, false, null, 5),
            // Right region, wrong filter, also unhealthy and stale: a filter mismatch.
            new(Guid.NewGuid(), "EU-WEST", "DE", "fra", "default", 0, false, null, 5),
            // Unhealthy and stale and full.
            new(Guid.NewGuid(), "eu-west", "de", "FRA", "STREAMING", 0, false, null, 5),
            // Stale and full.
            new(Guid.NewGuid(), "eu-west", "DE", "fra", "streaming", 0, true, Now - Freshness - TimeSpan.FromTicks(1), 5),
            new(Guid.NewGuid(), "eu-west", "DE", "fra", "streaming", 10, true, null, 0),
            // Full, including capacity zero.
            new(Guid.NewGuid(), "eu-west", "DE", "fra", "streaming", 5, true, Now, 5),
            new(Guid.NewGuid(), "eu-west", "DE", "fra", "streaming", 0, true, Now, 0),
        ];

        var choice = NodeSelection.Select(nodes, new NodeRequest("Eu-West", "de", "FRA", "Streaming"), Now, Freshness, new Random(1));

        Assert.Null(choice.Node);
        Assert.Equal(1, choice.Rejected[NodeRejection.RegionMismatch]);
        Assert.Equal(1, choice.Rejected[NodeRejection.FilterMismatch]);
        Assert.Equal(1, choice.Rejected[NodeRejection.Unhealthy]);
        Assert.Equal(2, choice.Rejected[NodeRejection.StaleHeartbeat]);
        Assert.Equal(2, choice.Rejected[NodeRejection.AtCapacity]);
        Assert.Equal(nodes.Length, choice.Rejected.Values.Sum());
    }

    [Fact]
    public void Select_FiltersAndRegion_IgnoreCase()
    {
        var node = Fresh(10, 1) with { Region = "EU-West", CountryCode = "DE", CityCode = "FRA", Pool = "Streaming" };

        var choice = NodeSelection.Select([node], new NodeRequest("eu-WEST", "de", "fra", "streaming"), Now, Freshness, new Random(1));

        Assert.Same(node, choice.Node);
        Assert.Empty(choice.Rejected);
    }

    [Fact]
    public void Select_FilterGivenNodeValueNull_IsFilterMismatch()
    {
        var node = Fresh(10, 1) with { Pool = null };

        var choice = NodeSelection.Select([node], new NodeRequest("eu-west", Pool: "streaming"), Now, Freshness, new Random(1));

        Assert.Null(choice.Node);
        Assert.Equal(1, choice.Rejected[NodeRejection.FilterMismatch]);
    }

    [Theory]
    [InlineData(0, true)]
    [InlineData(59_999, true)]
    [InlineData(60_000, true)]      // exactly at the bound: still fresh (only older than freshness is stale)
    [InlineData(60_001, false)]
    [InlineData(-5_000, true)]      // a heartbeat slightly in the future (clock skew) is fresh
    public void Select_HeartbeatAge_StaleOnlyWhenOlderThanFreshness(int ageMs, bool chosen)
    {
        var node = Fresh(10, 1) with { LastHeartbeatAt = Now - TimeSpan.FromMilliseconds(ageMs) };

        var choice = NodeSelection.Select([node], new NodeRequest("eu-west"), Now, Freshness, new Random(1));

        Assert.Equal(chosen, choice.Node is not null);
        Assert.Equal(chosen ? 0 : 1, choice.Rejected.GetValueOrDefault(NodeRejection.StaleHeartbeat));
    }

    [Fact]
    public void Select_NoNodes_ReturnsNullWithNoRejections()
    {
        var choice = NodeSelection.Select([], new NodeRequest("eu-west"), Now, Freshness, new Random(1));

        Assert.Null(choice.Node);
        Assert.Empty(choice.Rejected);
    }

    [Fact]
    public void Select_CallersOwnValues_ReturnsTheChosenValueItself()
    {
        Owned[] nodes = [new("busy", Fresh(10, 9)), new("idle", Fresh(10, 1)), new("hinted", Fresh(10, 5)), new("gone", Fresh(10, 0) with { Healthy = false })];

        var lowest = NodeSelection.Select(nodes, n => n.Facts, new NodeRequest("eu-west"), Now, Freshness, new Random(1));
        var hinted = NodeSelection.Select(nodes, n => n.Facts, new NodeRequest("eu-west", NodeHint: nodes[2].Facts.Id), Now, Freshness, new Random(1));

        Assert.Same(nodes[1], lowest.Node);
        Assert.Same(nodes[2], hinted.Node);
        Assert.Equal(1, lowest.Rejected[NodeRejection.Unhealthy]);
    }

    private sealed record Owned(string Name, NodeSnapshot Facts);

    private static NodeSnapshot Fresh(int capacity, int active) =>
        new(Guid.NewGuid(), "eu-west", "DE", "fra", "streaming", capacity, true, Now - TimeSpan.FromSeconds(5), active);
}
