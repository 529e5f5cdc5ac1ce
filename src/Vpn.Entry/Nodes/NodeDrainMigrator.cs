using System.Threading.Channels;

namespace Vpn.Entry.Nodes;

/// <summary>
/// Moves the sessions of nodes drained with "migrate": true to other nodes: every APP_DRAIN_INTERVAL_SECS (and at once
/// after a drain request), for each such node, batches of APP_DRAIN_BATCH_SIZE active sessions, APP_DRAIN_CONCURRENCY
/// moves at a time, until the node is empty or a whole batch found no node to go to (then the next pass tries again).
/// Each session keeps its key; the client gets its new node and address by reconnect. Several replicas may run this at
/// once: a session's move commits only while it is still on the draining node, so one replica's move wins and the
/// other's new peer is removed again. A client reconnecting while its session is being moved can race the move (the
/// reconnect's compare-and-swap is on the key, which a migration keeps): the session then ends on the reconnect's node,
/// as the database says, and the peer the migration added elsewhere is removed by that node's next reconciliation.
/// </summary>
public sealed partial class NodeDrainMigrator(INodeStore nodes, INodeDrainStore drains, SessionService sessions, EntryOptions options,
    TimeProvider time, ILogger<NodeDrainMigrator> logger) : BackgroundService
{
    private readonly Channel<bool> _wake = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });

    /// <summary>Starts a pass now instead of at the next interval (a drain with migrate was just requested).</summary>
    public void Wake() => _wake.Writer.TryWrite(true);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await PassAsync(stoppingToken);
            }
            catch (Exception e) when (e is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
            {
                LogPassFailed(logger, e.GetType().Name);
            }
            using var interval = new CancellationTokenSource(options.Drain.Interval, time);
            using var wait = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken, interval.Token);
            try
            {
                await _wake.Reader.ReadAsync(wait.Token);
            }
            catch (OperationCanceledException) when (!stoppingToken.IsCancellationRequested)
            {
            }
        }
    }

    /// <summary>One pass over every node that is draining with migrate.</summary>
    public async Task PassAsync(CancellationToken cancellationToken)
    {
        foreach (var node in await nodes.ListAsync(cancellationToken))
        {
            if (node is { Draining: true, DrainMigrate: true })
            {
                await MigrateNodeAsync(node, cancellationToken);
            }
        }
    }

    private async Task MigrateNodeAsync(Node node, CancellationToken cancellationToken)
    {
        var parallel = new ParallelOptions { MaxDegreeOfParallelism = options.Drain.Concurrency, CancellationToken = cancellationToken };
        while (true)
        {
            var batch = await drains.ListActiveSessionsAsync(node.Id, options.Drain.BatchSize, cancellationToken);
            if (batch.Count == 0)
            {
                return;
            }
            var moved = 0;
            await Parallel.ForEachAsync(batch, parallel, async (session, ct) =>
            {
                if (await sessions.MigrateAsync(session, node, drains, ct))
                {
                    Interlocked.Increment(ref moved);
                }
            });
            LogBatch(logger, node.Id, moved, batch.Count);
            if (moved == 0)
            {
                // Nowhere to go for any of them right now (no other node, or all full): the next pass tries again.
                return;
            }
        }
    }

    [LoggerMessage(EventId = 230, Level = LogLevel.Information, Message = "Drain of node {NodeId}: moved {Moved} of {Count} session(s) in a batch")]
    private static partial void LogBatch(ILogger logger, Guid nodeId, int moved, int count);

    [LoggerMessage(EventId = 231, Level = LogLevel.Warning, Message = "Drain migration pass failed: {Reason}; the next pass tries again")]
    private static partial void LogPassFailed(ILogger logger, string reason);
}
