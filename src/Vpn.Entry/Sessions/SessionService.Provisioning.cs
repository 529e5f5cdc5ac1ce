using Grpc.Core;
using Vpn.Contracts.Core.V1;
using Vpn.Domain.WireGuard;
using Vpn.Entry.Nodes;

namespace Vpn.Entry.Sessions;

/// <summary>The core calls of the session lifecycle, and the undo of a start that failed after its claim.</summary>
public sealed partial class SessionService
{
    /// <summary>
    /// Everything after the claim: the replaced session's peer removed, core Connect, activation. Every way out but
    /// success leaves nothing behind — whatever failed (core, the store, a bug), the claim is marked failed and the peer
    /// removed before the failure is answered, so the customer's slot is free for a retry at once (not after the sweeper).
    /// </summary>
    private async Task<(TunnelAssignment? Assigned, SessionFailure? Failure)> ConnectAsync(Node node, NewSession session, ClaimResult claim,
        CancellationToken cancellationToken)
    {
        // Until Connect has answered, a failure leaves no peer (TryConnectAsync removes one a failed call may have added).
        var peerMayExist = false;
        SessionFailure failure;
        try
        {
            if (claim.Replaced is { } replaced)
            {
                if (replaced.NodeId == node.Id && replaced.DevicePublicKey == session.DevicePublicKey)
                {
                    // Same device on the same node: the Connect below takes the peer over (its claim is the later one)
                    // in the same device write, so there is no gap and no second round trip.
                    metrics.SessionsTerminated.Add(1);
                }
                else
                {
                    await RemovePeerAsync(replaced.NodeId, replaced.Id);
                }
            }
            var (assigned, superseded) = await TryConnectAsync(node, session.Id, session.DevicePublicKey, claim.ClaimSeq, cancellationToken);
            if (superseded)
            {
                // Core holds the device key for a later claim of the same device: that start won (without a live
                // winner in the database, the node holds a stale peer: a node failure, which reconciliation repairs).
                failure = await ConflictOrUnavailableAsync(session);
            }
            else if (assigned is null)
            {
                failure = new SessionFailure.NodeUnavailable();
            }
            else
            {
                peerMayExist = true;
                if (await sessions.ActivateAsync(session.Id, assigned.Address, assigned.AddressV6, assigned.Dns, time.GetUtcNow(), CancellationToken.None))
                {
                    metrics.SessionsStarted.Add(1);
                    LogStarted(logger, node.Id);
                    return (assigned, null);
                }
                // The row was terminated meanwhile (replaced by a later start, device deleted, swept), or its address is
                // held by another live session on the node (core state diverged from the database): undo. A later start
                // of the customer that replaced this one is the conflict its client is told about.
                failure = await ConflictOrUnavailableAsync(session);
            }
        }
        catch (Exception e)
        {
            await CompensateAsync(node, node.Id, session.Id, peerMayExist, e.GetType().Name);
            throw;
        }
        await CompensateAsync(node, node.Id, session.Id, peerMayExist, SessionProblems.For(failure).Code);
        return (null, failure);
    }

    /// <summary>
    /// Undoes a start whose session is already active but whose answer cannot be given (e.g. its Idempotency-Key record
    /// could not be written): the row is marked failed and the peer removed, so a retry starts afresh instead of
    /// meeting a session it has no key for. Best effort, bounded, logged once.
    /// </summary>
    private async Task UndoStartAsync(Guid nodeId, Guid sessionId, Exception reason)
    {
        Node? node = null;
        try
        {
            using var deadline = new CancellationTokenSource(options.CoreCallTimeout, time);
            node = await nodes.GetAsync(nodeId, deadline.Token);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Without the node the peer stays until reconciliation; the row is still marked failed below.
        }
        await CompensateAsync(node, nodeId, sessionId, peerMayExist: node is not null, reason.GetType().Name);
    }

    /// <summary>
    /// The undo of a start: the row marked failed and (when core may hold it) the peer removed, both at once, each best
    /// effort within the core deadline — the original failure is what the client gets. One log line when a peer was
    /// involved or the undo itself failed (a plain Connect failure is logged where it happened); whatever could not be
    /// undone is left to the sweeper (the row) and the node's reconciliation (the peer).
    /// </summary>
    private async Task CompensateAsync(Node? node, Guid nodeId, Guid sessionId, bool peerMayExist, string reason)
    {
        metrics.SessionStartsFailed.Add(1);
        var rowFailed = MarkFailedQuietlyAsync(sessionId);
        var peerRemoved = peerMayExist && node is not null ? DisconnectQuietlyAsync(node, sessionId) : Task.FromResult(!peerMayExist);
        await Task.WhenAll(rowFailed, peerRemoved);
        if (peerMayExist || !rowFailed.Result)
        {
            LogStartUndone(logger, nodeId, reason, rowFailed.Result, peerRemoved.Result);
        }
    }

    /// <summary>The conflict with the customer's other live session when there is one (or it is unreadable: then node_unavailable).</summary>
    private async Task<SessionFailure> ConflictOrUnavailableAsync(NewSession session) =>
        await LiveIdQuietlyAsync(session.CustomerId, session.Id) is { } winner
            ? new SessionFailure.Conflict(winner)
            : new SessionFailure.NodeUnavailable();

    /// <summary>The customer's live session if it is another than <paramref name="own"/>; null when none (or unreadable).</summary>
    private async Task<Guid?> LiveIdQuietlyAsync(Guid customerId, Guid own)
    {
        try
        {
            using var deadline = new CancellationTokenSource(options.CoreCallTimeout, time);
            return await sessions.GetLiveIdAsync(customerId, deadline.Token) is { } live && live != own ? live : null;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return null;
        }
    }

    private async Task<bool> MarkFailedQuietlyAsync(Guid sessionId)
    {
        try
        {
            using var deadline = new CancellationTokenSource(options.CoreCallTimeout, time);
            await sessions.AbandonAsync(sessionId, time.GetUtcNow(), deadline.Token);
            return true;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return false;
        }
    }

    /// <summary>Core Disconnect; false (not logged: the caller logs the whole undo once) when it failed.</summary>
    private async Task<bool> DisconnectQuietlyAsync(Node node, Guid sessionId) => await DisconnectAsync(node, sessionId) is null;

    /// <summary>Core Disconnect; a failure is logged (reconciliation removes the peer).</summary>
    private async Task TryDisconnectAsync(Node node, Guid sessionId)
    {
        if (await DisconnectAsync(node, sessionId) is { } reason)
        {
            LogDisconnectFailed(logger, node.Id, reason);
        }
    }

    /// <summary>Core Disconnect (idempotent per session id); null when it worked, else why it failed.</summary>
    private async Task<string?> DisconnectAsync(Node node, Guid sessionId)
    {
        try
        {
            await CallCoreAsync(node, (client, deadline) => client.DisconnectAsync(new DisconnectRequest { SessionId = sessionId.ToString() },
                deadline: deadline).ResponseAsync, CancellationToken.None);
            return null;
        }
        catch (Exception e) when (e is RpcException or HttpRequestException or OperationCanceledException)
        {
            return Reason(e);
        }
    }

    /// <summary>
    /// One unary call to a node's core under one deadline (APP_CORE_TIMEOUT_MS for the whole, retry included). A call
    /// that got no answer at all — the connection refused, or found dead before core answered, as right after a core
    /// restart — is sent once more at once on a fresh connection; core's Connect and Disconnect are idempotent per
    /// session id, so a call that did reach core is safe to repeat too. A call core answered (whatever the status) is not
    /// repeated.
    /// </summary>
    private async Task<T> CallCoreAsync<T>(Node node, Func<VpnControl.VpnControlClient, DateTime, Task<T>> call, CancellationToken cancellationToken)
    {
        var client = cores.For(node.CoreEndpoint);
        var deadline = time.GetUtcNow().UtcDateTime + options.CoreCallTimeout;
        try
        {
            return await call(client, deadline);
        }
        catch (Exception e) when (CoreCalls.GotNoAnswer(e) && !cancellationToken.IsCancellationRequested && time.GetUtcNow().UtcDateTime < deadline)
        {
            LogCoreCallRetried(logger, node.Id, e is RpcException rpc ? rpc.StatusCode.ToString() : e.GetType().Name);
            return await call(client, deadline);
        }
    }

    /// <summary>
    /// Core Connect and its answer checked; on failure, or an answer that is not a valid assignment, the peer is removed
    /// again (a deadline may expire after core added it) and no assignment returned. Superseded: core refused because it
    /// holds the device key for a later claim (ALREADY_EXISTS; nothing was added).
    /// </summary>
    private async Task<(TunnelAssignment? Assigned, bool Superseded)> TryConnectAsync(Node node, Guid sessionId, WireGuardKey devicePublicKey,
        long claimSeq, CancellationToken cancellationToken)
    {
        // Waits in the node's Connect queue (bounded, within the call's deadline) or throws NodeBusyException: nothing
        // was sent, so nothing needs removing.
        using var slot = await gate.EnterAsync(node.Id, options.CoreCallTimeout, cancellationToken);
        ConnectResponse response;
        try
        {
            var request = new ConnectRequest { SessionId = sessionId.ToString(), DevicePublicKey = devicePublicKey.ToBase64(), ClaimSeq = (ulong)claimSeq };
            response = await CallCoreAsync(node, (client, deadline) =>
                client.ConnectAsync(request, deadline: deadline, cancellationToken: cancellationToken).ResponseAsync, cancellationToken);
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.AlreadyExists)
        {
            LogConnectFailed(logger, node.Id, e.StatusCode.ToString());
            return (null, true);
        }
        catch (Exception e) when (e is RpcException or HttpRequestException or OperationCanceledException)
        {
            LogConnectFailed(logger, node.Id, Reason(e));
            if (e is HttpRequestException or RpcException { StatusCode: StatusCode.Unavailable })
            {
                // Core did not answer even the retry on a fresh connection, or said it cannot take sessions now (not
                // synced after a restart, its device refusing changes): selection passes the node over for a while.
                gate.MarkUnreachable(node.Id);
            }
            await TryDisconnectAsync(node, sessionId);
            return (null, false);
        }
        gate.MarkReachable(node.Id);
        if (!TunnelAssignment.TryRead(response, out var assigned, out var badField))
        {
            LogMalformedAssignment(logger, node.Id, badField);
            await TryDisconnectAsync(node, sessionId);
            return (null, false);
        }
        return (assigned, false);
    }

    /// <summary>A failed core call as logged: core's status code, or the exception type when core did not answer.</summary>
    private static string Reason(Exception e) => e is RpcException rpc ? rpc.StatusCode.ToString() : e.GetType().Name;

    [LoggerMessage(EventId = 200, Level = LogLevel.Information, Message = "Session started on node {NodeId}")]
    private static partial void LogStarted(ILogger logger, Guid nodeId);

    [LoggerMessage(EventId = 201, Level = LogLevel.Warning, Message = "Core Connect failed on node {NodeId}: {Reason}")]
    private static partial void LogConnectFailed(ILogger logger, Guid nodeId, string reason);

    [LoggerMessage(EventId = 202, Level = LogLevel.Warning, Message = "Core Disconnect failed on node {NodeId}: {Reason}; reconciliation will remove the peer")]
    private static partial void LogDisconnectFailed(ILogger logger, Guid nodeId, string reason);

    [LoggerMessage(EventId = 204, Level = LogLevel.Warning, Message = "Core Connect on node {NodeId} answered a malformed {Field}; its peer is removed and the node not used")]
    private static partial void LogMalformedAssignment(ILogger logger, Guid nodeId, string field);

    [LoggerMessage(EventId = 205, Level = LogLevel.Warning,
        Message = "Session start on node {NodeId} failed after its claim ({Reason}) and was undone: row marked failed {RowFailed}, peer removed {PeerRemoved}")]
    private static partial void LogStartUndone(ILogger logger, Guid nodeId, string reason, bool rowFailed, bool peerRemoved);

    [LoggerMessage(EventId = 207, Level = LogLevel.Information, Message = "Core call to node {NodeId} got no answer ({Reason}); sent once more")]
    private static partial void LogCoreCallRetried(ILogger logger, Guid nodeId, string reason);
}
