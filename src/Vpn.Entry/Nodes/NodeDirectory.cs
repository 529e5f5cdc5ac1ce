using Vpn.Domain.Nodes;

namespace Vpn.Entry.Nodes;

/// <summary>
/// The node registry as a session start sees it: every node with its live-session count, kept in memory so a start does
/// not read (and score) every node from the store. The cache only proposes: the claim (claim_session_start) checks the
/// chosen node's existence, health, heartbeat and capacity under its row lock, so a stale entry costs a retry, never a
/// wrong session.
/// </summary>
public interface INodeDirectory
{
    /// <summary>The cached registry; loaded on first use, refreshed in the background once older than APP_NODE_CACHE_REFRESH_MS or marked changed.</summary>
    ValueTask<NodeDirectorySnapshot> GetAsync(CancellationToken cancellationToken);

    /// <summary>A registry read from the store now (the slow path: a start found no node in the cache).</summary>
    Task<NodeDirectorySnapshot> ReloadAsync(CancellationToken cancellationToken);

    /// <summary>Something about the nodes changed (registration, NOTIFY from another replica): the next use refreshes.</summary>
    void MarkChanged();

    /// <summary>A claim's view of the node's live-session count.</summary>
    void ObserveLoad(Guid nodeId, int liveSessions);

    /// <summary>A heartbeat this replica recorded: the node's entry is updated in place.</summary>
    void ObserveHeartbeat(Guid nodeId, bool healthy, int activePeerCount, DateTimeOffset at);
}

/// <summary>One node of the cache; its node and count are replaced in place (heartbeats, claims) between loads.</summary>
public sealed class NodeEntry(Node node, int liveSessions)
{
    private Node _node = node;
    private int _live = liveSessions;

    public Node Node { get => Volatile.Read(ref _node); set => Volatile.Write(ref _node, value); }

    public int LiveSessions { get => Volatile.Read(ref _live); set => Volatile.Write(ref _live, value); }

    public NodeSnapshot Describe()
    {
        var n = Node;
        return new NodeSnapshot(n.Id, n.Region, n.CountryCode, n.CityCode, n.Pool, n.Capacity, n.Healthy, n.LastHeartbeatAt, LiveSessions)
        {
            Draining = n.Draining,
        };
    }
}

/// <summary>The registry as loaded at one moment: all nodes, by id, and by region (compared ignoring case, as selection does).</summary>
public sealed class NodeDirectorySnapshot
{
    private static readonly NodeEntry[] None = [];
    private readonly Dictionary<string, NodeEntry[]> _byRegion;

    public NodeDirectorySnapshot(IReadOnlyList<NodeWithLoad> nodes, long loadedAt)
    {
        ArgumentNullException.ThrowIfNull(nodes);
        All = [.. nodes.Select(n => new NodeEntry(n.Node, n.LiveSessions))];
        ById = All.ToDictionary(e => e.Node.Id);
        _byRegion = All.GroupBy(e => e.Node.Region, StringComparer.OrdinalIgnoreCase).ToDictionary(g => g.Key, g => g.ToArray(), StringComparer.OrdinalIgnoreCase);
        LoadedAt = loadedAt;
    }

    public IReadOnlyList<NodeEntry> All { get; }

    public IReadOnlyDictionary<Guid, NodeEntry> ById { get; }

    /// <summary>TimeProvider timestamp of the load.</summary>
    public long LoadedAt { get; }

    public IReadOnlyList<NodeEntry> InRegion(string region) => _byRegion.GetValueOrDefault(region, None);
}

/// <summary>
/// <see cref="INodeDirectory"/> over any <see cref="INodeStore"/>: one read of every node (with its count) per refresh
/// interval, not per start. A refresh runs in the background while starts keep using the previous snapshot; only the
/// first use, and <see cref="ReloadAsync"/>, wait for the store. Refresh 0 reads the store on every use (the in-memory
/// store, where a read costs nothing).
/// </summary>
public sealed partial class NodeDirectory(INodeStore nodes, EntryOptions options, TimeProvider time, ILogger<NodeDirectory> logger) : INodeDirectory
{
    private readonly Lock _gate = new();
    private NodeDirectorySnapshot? _snapshot;
    private Task? _refreshing;
    private int _changed;

    public async ValueTask<NodeDirectorySnapshot> GetAsync(CancellationToken cancellationToken)
    {
        var snapshot = Volatile.Read(ref _snapshot);
        if (snapshot is null || options.NodeCacheRefresh <= TimeSpan.Zero)
        {
            return await ReloadAsync(cancellationToken);
        }
        if (Volatile.Read(ref _changed) != 0 || time.GetElapsedTime(snapshot.LoadedAt) >= options.NodeCacheRefresh)
        {
            StartBackgroundRefresh();
        }
        return snapshot;
    }

    public async Task<NodeDirectorySnapshot> ReloadAsync(CancellationToken cancellationToken)
    {
        // Cleared before the read: a change that lands during it marks the cache again.
        Interlocked.Exchange(ref _changed, 0);
        var started = time.GetTimestamp();
        var loaded = new NodeDirectorySnapshot(await nodes.ListWithLoadAsync(cancellationToken), started);
        lock (_gate)
        {
            if (_snapshot is null || _snapshot.LoadedAt <= started)
            {
                Volatile.Write(ref _snapshot, loaded);
            }
        }
        return loaded;
    }

    public void MarkChanged()
    {
        Interlocked.Exchange(ref _changed, 1);
        // Re-read at once in the background (a NOTIFY from another replica, a node a claim turned down), not only at the
        // next start: that start would otherwise still choose from the old snapshot — an old core endpoint, say.
        if (Volatile.Read(ref _snapshot) is not null && options.NodeCacheRefresh > TimeSpan.Zero)
        {
            StartBackgroundRefresh();
        }
    }

    public void ObserveLoad(Guid nodeId, int liveSessions)
    {
        if (liveSessions >= 0 && Volatile.Read(ref _snapshot) is { } snapshot && snapshot.ById.TryGetValue(nodeId, out var entry))
        {
            entry.LiveSessions = liveSessions;
        }
    }

    public void ObserveHeartbeat(Guid nodeId, bool healthy, int activePeerCount, DateTimeOffset at)
    {
        if (Volatile.Read(ref _snapshot) is { } snapshot && snapshot.ById.TryGetValue(nodeId, out var entry))
        {
            var node = entry.Node;
            if (node.LastHeartbeatAt is not { } last || last <= at)
            {
                entry.Node = node with { Healthy = healthy, ActivePeerCount = activePeerCount, LastHeartbeatAt = at };
            }
        }
        else
        {
            MarkChanged();
        }
    }

    private void StartBackgroundRefresh()
    {
        lock (_gate)
        {
            if (_refreshing is { IsCompleted: false })
            {
                return;
            }
            _refreshing = Task.Run(async () =>
            {
                try
                {
                    await ReloadAsync(CancellationToken.None);
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    // The previous snapshot stays in use (the claim checks every choice); the next start tries again.
                    MarkChanged();
                    LogRefreshFailed(logger, e.GetType().Name);
                }
            });
        }
    }

    [LoggerMessage(EventId = 230, Level = LogLevel.Warning, Message = "Node cache refresh failed ({Reason}); the previous snapshot stays in use")]
    private static partial void LogRefreshFailed(ILogger logger, string reason);
}
