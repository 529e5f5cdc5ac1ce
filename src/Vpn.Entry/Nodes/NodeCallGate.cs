using System.Collections.Concurrent;
using System.Threading.RateLimiting;

namespace Vpn.Entry.Nodes;

/// <summary>
/// A bounded queue of Connect calls per node: APP_CORE_CONCURRENCY_PER_NODE in flight, APP_CORE_QUEUE_PER_NODE waiting
/// (oldest first), none waiting past the call's own deadline. After a node dies its sessions' apps all reconnect at
/// once; without this every one of them would be written into the next node's HTTP/2 connection and time out together.
/// A full node is skipped by selection (<see cref="IsFull"/>) and a Connect that finds it full is refused at once with
/// 503 node_busy: cheap, early, and nothing claimed stays behind.
/// </summary>
public sealed class NodeCallGate(Configuration.EntryOptions options, EntryMetrics metrics, TimeProvider time) : IDisposable
{
    private readonly ConcurrentDictionary<Guid, ConcurrencyLimiter> _nodes = new();

    /// <summary>Nodes whose core gave no answer or answered Unavailable, until when selection passes them over.</summary>
    private readonly ConcurrentDictionary<Guid, DateTimeOffset> _unreachableUntil = new();

    /// <summary>
    /// A Connect got no answer from the node's core (its process died, its address is gone) or core answered
    /// Unavailable (not synced yet after a restart, its device refusing changes): for
    /// APP_NODE_UNREACHABLE_SECS selection passes the node over, instead of sending every start of the storm there
    /// until its heartbeat goes stale (APP_NODE_FRESHNESS_SECS). A Connect that works clears it.
    /// </summary>
    public void MarkUnreachable(Guid nodeId) => _unreachableUntil[nodeId] = time.GetUtcNow() + options.Shedding.UnreachableBackoff;

    public void MarkReachable(Guid nodeId) => _unreachableUntil.TryRemove(nodeId, out _);

    /// <summary>Whether the node's core recently gave no answer (see <see cref="MarkUnreachable"/>).</summary>
    public bool IsUnreachable(Guid nodeId)
    {
        if (!_unreachableUntil.TryGetValue(nodeId, out var until))
        {
            return false;
        }
        if (time.GetUtcNow() < until)
        {
            return true;
        }
        // Its time is up: the next start may try it again (and mark it again if it still does not answer).
        _unreachableUntil.TryRemove(new KeyValuePair<Guid, DateTimeOffset>(nodeId, until));
        return false;
    }

    private ConcurrencyLimiter For(Guid nodeId) => _nodes.GetOrAdd(nodeId, _ => new ConcurrencyLimiter(new ConcurrencyLimiterOptions
    {
        PermitLimit = options.Shedding.CoreConcurrencyPerNode,
        QueueLimit = options.Shedding.CoreQueuePerNode,
        QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
    }));

    /// <summary>Every slot taken and the queue full: a Connect sent now would be refused.</summary>
    public bool IsFull(Guid nodeId) =>
        _nodes.TryGetValue(nodeId, out var limiter) && limiter.GetStatistics() is { CurrentAvailablePermits: 0 } stats
        && stats.CurrentQueuedCount >= options.Shedding.CoreQueuePerNode;

    /// <summary>
    /// A slot for one Connect to the node, waiting in its queue at most until <paramref name="deadline"/>; throws
    /// <see cref="NodeBusyException"/> when the queue is full or the wait ran out. Dispose the lease when the call is done.
    /// </summary>
    public async ValueTask<RateLimitLease> EnterAsync(Guid nodeId, TimeSpan deadline, CancellationToken cancellationToken)
    {
        var limiter = For(nodeId);
        var lease = limiter.AttemptAcquire();
        if (!lease.IsAcquired)
        {
            lease.Dispose();
            using var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            wait.CancelAfter(deadline);
            try
            {
                lease = await limiter.AcquireAsync(1, wait.Token);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                metrics.NodeConnectsShed.Add(1, new KeyValuePair<string, object?>("reason", "wait"));
                throw new NodeBusyException();
            }
            if (!lease.IsAcquired)
            {
                lease.Dispose();
                metrics.NodeConnectsShed.Add(1, new KeyValuePair<string, object?>("reason", "queue_full"));
                throw new NodeBusyException();
            }
        }
        return lease;
    }

    public void Dispose()
    {
        foreach (var limiter in _nodes.Values)
        {
            limiter.Dispose();
        }
    }
}

/// <summary>The node's Connect queue is full (or the wait for it ran past the call's deadline): 503 node_busy.</summary>
public sealed class NodeBusyException() : Http.ApiProblemException(StatusCodes.Status503ServiceUnavailable, Http.ErrorCodes.NodeBusy,
    "The selected node is busy; retry shortly.");
