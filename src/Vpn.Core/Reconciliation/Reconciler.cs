using Vpn.Core.Control;
using Vpn.Core.Dataplane;
using Vpn.Core.Usage;
using Vpn.Domain.Reconciliation;

namespace Vpn.Core.Reconciliation;

/// <summary>Result of one pass.</summary>
/// <param name="Succeeded">The device now matches a fresh, valid desired state.</param>
/// <param name="FailureReason">entry_unavailable, desired_state_rejected or device_error; null on success.</param>
public sealed record ReconcileOutcome(bool Succeeded, string? FailureReason, int Added, int Removed, int Corrected)
{
    /// <summary>Peers the pass's idle wipe removed and re-added (<see cref="IdlePeerWiper"/>), after the device read: their
    /// endpoints are gone and their rx/tx counters restart from zero (the read's are their last). Listed also when the
    /// wipe's write failed, as part of it may be in effect. Empty when the pass failed before the wipe.</summary>
    public IReadOnlyList<WireGuardKey> WipedKeys { get; init; } = [];

    public int Wiped => WipedKeys.Count;
}

/// <summary>
/// One reconciliation pass: fetch the desired sessions → read the device (initializing it again if it was recreated) →
/// rebuild the leases and diff them against the live peers → one minimal batched change → counters. Without a fresh
/// valid desired state nothing is pruned: the pass only restores missing peers and allowed IPs from the leases it
/// last knew (last-known-good). A failed device write is retried once after re-reading the device (a UAPI set is
/// applied line by line, so a failure may leave part of it in effect).
/// </summary>
public sealed partial class Reconciler(
    CoreOptions options,
    IDesiredStateSource source,
    IDataplane dataplane,
    PeerRegistry registry,
    ReconcileMetrics metrics,
    IdlePeerWiper wiper,
    ILogger<Reconciler> logger,
    UsageMeter? usage = null,
    UsageReporter? usageReporter = null)
{
    private const int Attempts = 2;

    // A hung wireguard-go must not stall reconciliation for good; a healthy get of 65k peers takes about a second.
    private static readonly TimeSpan DeviceTimeout = TimeSpan.FromMinutes(2);

    // Beyond this many changes of one kind per pass (e.g. re-adding every peer of a recreated device) only a count is logged.
    private const int MaxChangesLogged = 100;

    public async Task<ReconcileOutcome> RunPassAsync(CancellationToken cancellationToken)
    {
        DesiredSnapshot? desired = null;
        string? failure = null;
        try
        {
            desired = await source.FetchAsync(cancellationToken);
        }
        catch (DesiredStateUnavailableException e)
        {
            LogDesiredStateUnavailable(logger, e.Message);
            failure = "entry_unavailable";
        }

        SyncPlan plan;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                plan = await ApplyOnceAsync(desired, cancellationToken);
                break;
            }
            catch (IOException e) when (attempt < Attempts)
            {
                LogDeviceChangeFailed(logger, attempt, e.Message);
            }
            catch (IOException e)
            {
                // Typically wireguard-go is down; its socket errors carry no transcript.
                LogDeviceUnavailable(logger, e.Message);
                metrics.RecordPass("device_error", 0, 0, 0);
                return new ReconcileOutcome(false, "device_error", 0, 0, 0);
            }
            catch (Exception e) when (!cancellationToken.IsCancellationRequested)
            {
                LogPassFailed(logger, e);
                metrics.RecordPass("device_error", 0, 0, 0);
                return new ReconcileOutcome(false, "device_error", 0, 0, 0);
            }
        }

        await ReportUsageAsync(cancellationToken);
        var decision = plan.Decision;
        if (desired is not null && !decision.Full)
        {
            failure = "desired_state_rejected";
        }
        metrics.RecordPass(failure, decision.Adds.Count, decision.Removes.Count, decision.Corrections.Count);
        LogDecision(decision);
        return new ReconcileOutcome(failure is null, failure, decision.Adds.Count, decision.Removes.Count, decision.Corrections.Count)
        {
            WipedKeys = plan.Wiped,
        };
    }

    private async Task<SyncPlan> ApplyOnceAsync(DesiredSnapshot? desired, CancellationToken stoppingToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        timeout.CancelAfter(DeviceTimeout);
        var cancellationToken = timeout.Token;
        registry.BeginDeviceRead();
        try
        {
            var device = await dataplane.ReadAsync(cancellationToken);
            if (device.NeedsInitialization)
            {
                // wireguard-go restarted (or was edited): the interface lost key, port, address and link state, and its peers.
                LogReinitializing(logger, options.InterfaceName);
                await dataplane.InitializeAsync(cancellationToken);
                metrics.RecordReinitialization();
                registry.BeginDeviceRead();
                device = await dataplane.ReadAsync(cancellationToken);
            }
            var live = device.Peers.Select(p => new LivePeer(p.PublicKey, p.AllowedIps)).ToList();
            var plan = registry.Synchronize(desired, live);
            // The counters as read, mapped to the sessions the leases now hold (a peer this pass adds is missing from the
            // read: it comes back as a new run).
            usage?.Observe(registry.SessionCounters(device.Peers), desired);
            if (plan.Decision.Problems is { Count: > 0 } problems)
            {
                LogDesiredStateRejected(logger, problems.Count, string.Join("; ", problems.Take(10)));
            }
            await plan.Applied;
            // Forgetting idle clients' endpoints, on the same read, while keys changed since it are still tracked.
            // The wiped peers' counters start again from zero; the meter sees them go down on the next read (an idle
            // peer's cannot climb back past them by then), and a wipe that failed changed nothing to count again.
            return plan with { Wiped = await wiper.WipeAsync(device.Peers) };
        }
        finally
        {
            registry.EndDeviceRead();
        }
    }

    /// <summary>Sends the counters read by this pass; a failure leaves them pending and never fails the pass.</summary>
    private async Task ReportUsageAsync(CancellationToken cancellationToken)
    {
        if (usageReporter is null)
        {
            return;
        }
        try
        {
            await usageReporter.FlushAsync(cancellationToken);
        }
        catch (Exception e) when (!cancellationToken.IsCancellationRequested)
        {
            LogUsageReportFailed(logger, e.GetType().Name);
        }
    }

    private void LogDecision(ReconcileDecision decision)
    {
        if (logger.IsEnabled(LogLevel.Information))
        {
            foreach (var lease in decision.Dropped.Take(MaxChangesLogged))
            {
                LogLeaseDropped(logger, lease.SessionId, lease.PublicKey, lease.Address);
            }
            foreach (var key in decision.Removes.Take(MaxChangesLogged))
            {
                LogPeerRemoved(logger, key);
            }
            foreach (var peer in decision.Corrections.Take(MaxChangesLogged))
            {
                LogPeerCorrected(logger, peer.PublicKey, peer.Address);
            }
            foreach (var peer in decision.Adds.Take(MaxChangesLogged))
            {
                LogPeerAdded(logger, peer.PublicKey, peer.Address);
            }
            var unlogged = Math.Max(0, decision.Dropped.Count - MaxChangesLogged) + Math.Max(0, decision.Removes.Count - MaxChangesLogged)
                + Math.Max(0, decision.Corrections.Count - MaxChangesLogged) + Math.Max(0, decision.Adds.Count - MaxChangesLogged);
            if (unlogged > 0)
            {
                LogChangesNotListed(logger, unlogged);
            }
        }
        if (decision.SkippedRemoves > 0)
        {
            LogRemovesSkipped(logger, decision.SkippedRemoves);
        }
        if (decision.ChangeCount > 0 || decision.Dropped.Count > 0 || decision.Adopted.Count > 0)
        {
            LogPassSummary(logger, decision.Adds.Count, decision.Removes.Count, decision.Corrections.Count, decision.Unchanged, decision.Adopted.Count, decision.Dropped.Count, decision.LeaseCount);
        }
        else
        {
            LogPassQuiet(logger, decision.Unchanged, decision.Full);
        }
    }

    [LoggerMessage(EventId = 600, Level = LogLevel.Information, Message = "Reconciliation added peer {PublicKey} with {Address}/32")]
    private static partial void LogPeerAdded(ILogger logger, WireGuardKey publicKey, IPAddress address);

    [LoggerMessage(EventId = 601, Level = LogLevel.Information, Message = "Reconciliation removed peer {PublicKey}")]
    private static partial void LogPeerRemoved(ILogger logger, WireGuardKey publicKey);

    [LoggerMessage(EventId = 602, Level = LogLevel.Information, Message = "Reconciliation restored the allowed IPs of peer {PublicKey} to {Address}/32")]
    private static partial void LogPeerCorrected(ILogger logger, WireGuardKey publicKey, IPAddress address);

    [LoggerMessage(EventId = 603, Level = LogLevel.Information, Message = "Reconciliation dropped the lease of session {SessionId} (peer {PublicKey}, {Address} released)")]
    private static partial void LogLeaseDropped(ILogger logger, Guid sessionId, WireGuardKey publicKey, IPAddress address);

    [LoggerMessage(EventId = 604, Level = LogLevel.Information, Message = "Reconciliation made {Count} more change(s) not listed individually")]
    private static partial void LogChangesNotListed(ILogger logger, int count);

    [LoggerMessage(EventId = 605, Level = LogLevel.Information,
        Message = "Reconciliation pass: {Added} added, {Removed} removed, {Corrected} corrected, {Unchanged} unchanged; {Adopted} session(s) adopted, {Dropped} lease(s) dropped, {Leases} lease(s) held")]
    private static partial void LogPassSummary(ILogger logger, int added, int removed, int corrected, int unchanged, int adopted, int dropped, int leases);

    [LoggerMessage(EventId = 606, Level = LogLevel.Debug, Message = "Reconciliation pass: {Unchanged} peer(s) already as desired (fresh desired state: {Fresh})")]
    private static partial void LogPassQuiet(ILogger logger, int unchanged, bool fresh);

    [LoggerMessage(EventId = 607, Level = LogLevel.Warning, Message = "Desired state unavailable, keeping the last-known-good peers and pruning nothing: {Reason}")]
    private static partial void LogDesiredStateUnavailable(ILogger logger, string reason);

    [LoggerMessage(EventId = 608, Level = LogLevel.Error, Message = "Desired state rejected as a whole, nothing of it applied ({Count} problem(s)): {Problems}")]
    private static partial void LogDesiredStateRejected(ILogger logger, int count, string problems);

    [LoggerMessage(EventId = 609, Level = LogLevel.Warning, Message = "{Count} peer(s) not in the leases left on the device until the desired state is known")]
    private static partial void LogRemovesSkipped(ILogger logger, int count);

    [LoggerMessage(EventId = 610, Level = LogLevel.Warning, Message = "WireGuard device {Interface} lost its configuration (recreated?); initializing it again before restoring peers")]
    private static partial void LogReinitializing(ILogger logger, string @interface);

    [LoggerMessage(EventId = 611, Level = LogLevel.Warning, Message = "Reconciliation could not change the device (attempt {Attempt}), re-reading it and retrying: {Reason}")]
    private static partial void LogDeviceChangeFailed(ILogger logger, int attempt, string reason);

    [LoggerMessage(EventId = 613, Level = LogLevel.Warning, Message = "Reconciliation could not reach the WireGuard device, retrying later: {Reason}")]
    private static partial void LogDeviceUnavailable(ILogger logger, string reason);

    [LoggerMessage(EventId = 614, Level = LogLevel.Warning, Message = "Usage report failed ({Reason}); the counters stay pending")]
    private static partial void LogUsageReportFailed(ILogger logger, string reason);

    [LoggerMessage(EventId = 612, Level = LogLevel.Error, Message = "Reconciliation pass failed")]
    private static partial void LogPassFailed(ILogger logger, Exception exception);
}
