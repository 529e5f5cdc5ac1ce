namespace Vpn.Domain.Nodes;

/// <summary>What the selector knows of one node. ActiveSessions is the database's count, not the heartbeat's.</summary>
public sealed record NodeSnapshot(
    Guid Id,
    string Region,
    string? CountryCode,
    string? CityCode,
    string? Pool,
    int Capacity,
    bool Healthy,
    DateTimeOffset? LastHeartbeatAt,
    int ActiveSessions)
{
    /// <summary>An operator drains the node (maintenance, replacement): it takes no new sessions, whatever its health.</summary>
    public bool Draining { get; init; }

    /// <summary>
    /// wireguard-go's limit of peers on one interface: a node's capacity must stay below it (the database's check allows
    /// 1..65,535), or the peer after the limit would be refused by the device (errno=-22) instead of by selection.
    /// </summary>
    public const int MaxPeersPerInterface = 65_536;
}

/// <summary>Filters of a session start. Null filters match anything; comparisons ignore case.</summary>
public sealed record NodeRequest(string Region, string? CountryCode = null, string? CityCode = null, string? Pool = null, Guid? NodeHint = null);

public enum NodeRejection
{
    RegionMismatch,
    FilterMismatch,
    Unhealthy,
    StaleHeartbeat,
    AtCapacity,
    Draining,
}

/// <summary>The chosen node (null when no node is a candidate) and how many nodes were rejected for each reason.</summary>
public sealed record NodeChoice<TNode>(TNode? Node, IReadOnlyDictionary<NodeRejection, int> Rejected)
    where TNode : class;

public static class NodeSelection
{
    /// <summary>
    /// The contract's selection policy: candidates are healthy, fresh (heartbeat within <paramref name="freshness"/>),
    /// matching region and every filter, not draining, and below capacity. A hint wins only when it is a candidate. Among candidates
    /// the lowest load ratio wins; ties are broken with <paramref name="random"/>.
    /// </summary>
    public static NodeChoice<NodeSnapshot> Select(IEnumerable<NodeSnapshot> nodes, NodeRequest request, DateTimeOffset now, TimeSpan freshness,
        Random random) =>
        Select(nodes, node => node, request, now, freshness, random);

    /// <summary>
    /// The same policy over the caller's own node values, each seen through <paramref name="describe"/>; the choice is the
    /// caller's value itself, so nothing has to be looked up again by id.
    /// </summary>
    public static NodeChoice<TNode> Select<TNode>(IEnumerable<TNode> nodes, Func<TNode, NodeSnapshot> describe, NodeRequest request,
        DateTimeOffset now, TimeSpan freshness, Random random)
        where TNode : class
    {
        ArgumentNullException.ThrowIfNull(nodes);
        ArgumentNullException.ThrowIfNull(describe);
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(random);
        var rejected = new Dictionary<NodeRejection, int>();
        var candidates = new List<(TNode Node, NodeSnapshot Facts)>();
        foreach (var node in nodes)
        {
            var facts = describe(node);
            var reason = Reject(facts, request, now, freshness);
            if (reason is { } r)
            {
                rejected[r] = rejected.GetValueOrDefault(r) + 1;
            }
            else
            {
                candidates.Add((node, facts));
            }
        }
        if (request.NodeHint is { } hint && candidates.FindIndex(c => c.Facts.Id == hint) is >= 0 and var hinted)
        {
            return new NodeChoice<TNode>(candidates[hinted].Node, rejected);
        }
        if (candidates.Count == 0)
        {
            return new NodeChoice<TNode>(null, rejected);
        }
        // Compare a/b < c/d as a*d < c*b to avoid floating-point ties that are not ties.
        var best = new List<(TNode Node, NodeSnapshot Facts)>();
        foreach (var candidate in candidates)
        {
            var order = best.Count == 0 ? -1 : CompareLoad(candidate.Facts, best[0].Facts);
            if (order < 0)
            {
                best.Clear();
                best.Add(candidate);
            }
            else if (order == 0)
            {
                best.Add(candidate);
            }
        }
        return new NodeChoice<TNode>(best[random.Next(best.Count)].Node, rejected);
    }

    public static NodeRejection? Reject(NodeSnapshot node, NodeRequest request, DateTimeOffset now, TimeSpan freshness)
    {
        ArgumentNullException.ThrowIfNull(node);
        ArgumentNullException.ThrowIfNull(request);
        if (!Matches(node.Region, request.Region))
        {
            return NodeRejection.RegionMismatch;
        }
        if (!MatchesFilter(node.CountryCode, request.CountryCode) || !MatchesFilter(node.CityCode, request.CityCode)
            || !MatchesFilter(node.Pool, request.Pool))
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
        if (node.LastHeartbeatAt is not { } beat || now - beat > freshness)
        {
            return NodeRejection.StaleHeartbeat;
        }
        if (node.ActiveSessions >= node.Capacity)
        {
            return NodeRejection.AtCapacity;
        }
        return null;
    }

    private static int CompareLoad(NodeSnapshot a, NodeSnapshot b) =>
        ((long)a.ActiveSessions * b.Capacity).CompareTo((long)b.ActiveSessions * a.Capacity);

    private static bool MatchesFilter(string? value, string? filter) => filter is null || Matches(value, filter);

    private static bool Matches(string? value, string expected) => string.Equals(value, expected, StringComparison.OrdinalIgnoreCase);
}
