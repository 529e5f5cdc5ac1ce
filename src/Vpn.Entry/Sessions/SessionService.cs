using System.Security.Cryptography;
using Grpc.Core;
using Vpn.Contracts.Core.V1;
using Vpn.Domain.Nodes;
using Vpn.Entry.Configuration;
using Vpn.Entry.Devices;
using Vpn.Entry.Http;
using Vpn.Entry.Nodes;
using Vpn.Entry.Subscriptions;

namespace Vpn.Entry.Sessions;

/// <summary>
/// The session lifecycle: entitlement → selection → claim (provisioning row) → core Connect → active. Any failure
/// after the claim rolls back to nothing: the row is marked failed and the peer removed.
/// </summary>
public sealed partial class SessionService(
    ISessionStore sessions,
    IDeviceStore devices,
    INodeStore nodes,
    IPlanStore plans,
    CoreClients cores,
    EntryOptions options,
    TimeProvider time,
    EntryMetrics metrics,
    ILogger<SessionService> logger)
{
    // Both families for every session, even one without an IPv6 address: IPv6 then goes into the tunnel and dies
    // there instead of leaking around it on a dual-stack network.
    private static readonly string[] FullTunnel = ["0.0.0.0/0", "::/0"];
    private const int PersistentKeepalive = 25;
    private const int MaxSelectionAttempts = 5;

    public async Task<SessionView> StartAsync(Guid customerId, StartSessionRequest request, CancellationToken cancellationToken) =>
        (await StartWithKeyHashAsync(customerId, request, cancellationToken)).View;

    /// <summary>Starts a session; also returns the key's hash so an idempotent replay can rotate it later.</summary>
    public async Task<(SessionView View, byte[] KeyHash)> StartWithKeyHashAsync(Guid customerId, StartSessionRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        var deviceId = Validation.RequireGuid(request.DeviceId, "device_id");
        var nodeRequest = new NodeRequest(
            Validation.RequireCode(request.Region, "region"),
            Validation.OptionalCountry(request.CountryCode, "country_code"),
            Validation.OptionalCode(request.CityCode, "city_code"),
            Validation.OptionalCode(request.Pool, "pool"),
            request.NodeHint is null ? null
                : Guid.TryParseExact(request.NodeHint, "D", out var hint) ? hint
                : throw ApiProblemException.BadRequest("'node_hint' must be a node UUID.", ErrorCodes.InvalidNodeHint));

        var subscription = await plans.GetSubscriptionAsync(customerId, cancellationToken);
        if (subscription is null || !subscription.ToEntitlement().IsEntitled)
        {
            throw ApiProblemException.Forbidden(ErrorCodes.SubscriptionInactive, "The subscription is not active.");
        }
        if (!subscription.ToEntitlement().AllowsRegion(nodeRequest.Region))
        {
            throw ApiProblemException.Forbidden(ErrorCodes.RegionNotAllowed, "The plan does not include this region.");
        }
        var device = await devices.GetAsync(customerId, deviceId, cancellationToken)
            ?? throw ApiProblemException.NotFound(ErrorCodes.DeviceNotFound, "No such device.");

        // Cheap pre-read so a customer with a live session gets 409 without touching selection; the database decides races.
        var replace = request.ReplaceExisting ?? false;
        if (!replace && await sessions.GetLiveIdAsync(customerId, cancellationToken) is { } live)
        {
            throw Conflict(live);
        }

        var sessionKey = RandomNumberGenerator.GetBytes(32);
        var excluded = new HashSet<Guid>();
        for (var attempt = 0; attempt < MaxSelectionAttempts; attempt++)
        {
            var node = await SelectAsync(nodeRequest, excluded, cancellationToken);
            var session = new NewSession(Guid.CreateVersion7(), customerId, device.Id, device.PublicKey, node.Id, SHA256.HashData(sessionKey),
                nodeRequest.Region, nodeRequest.CountryCode, nodeRequest.CityCode, nodeRequest.Pool, time.GetUtcNow());
            ClaimResult claim;
            try
            {
                claim = await sessions.ClaimAsync(session, replace, cancellationToken);
            }
            catch (Exception)
            {
                // A commit whose answer was lost (or was cancelled) may have claimed the slot after all: release it (a
                // no-op otherwise), so the customer's retry is not blocked until the sweeper.
                await MarkFailedQuietlyAsync(session.Id);
                throw;
            }
            switch (claim.Outcome)
            {
                case ClaimOutcome.Conflict:
                    throw Conflict(claim.ActiveSessionId);
                case ClaimOutcome.DeviceGone:
                    throw ApiProblemException.NotFound(ErrorCodes.DeviceNotFound, "No such device.");
                case ClaimOutcome.NodeFull or ClaimOutcome.NodeGone:
                    excluded.Add(node.Id);
                    continue;
            }
            var connected = await ConnectAsync(node, session, claim, cancellationToken);
            return (ToView(session.Id, Base64Url(sessionKey), SessionState.Active, session.CreatedAt, device.Id, node, connected), session.KeyHash);
        }
        throw NoNodes(new Dictionary<NodeRejection, int> { [NodeRejection.AtCapacity] = excluded.Count });
    }

    /// <summary>
    /// Reconnect by session key: the key is rotated on every call (the old one dies at once); when the session's node
    /// is no longer a healthy, fresh candidate the session moves to one matching its original filters.
    /// </summary>
    public async Task<SessionView> ReconnectAsync(Guid customerId, string? sessionKey, CancellationToken cancellationToken)
    {
        var oldHash = HashKey(sessionKey);
        var session = await sessions.FindActiveByKeyHashAsync(oldHash, cancellationToken);
        // Bound to its customer: another customer's key is exactly as invalid as an unknown one.
        if (session is null || session.CustomerId != customerId || !CryptographicOperations.FixedTimeEquals(session.KeyHash, oldHash))
        {
            throw InvalidSessionKey();
        }
        var subscription = await plans.GetSubscriptionAsync(customerId, cancellationToken);
        if (subscription is null || !subscription.ToEntitlement().IsEntitled)
        {
            throw ApiProblemException.Forbidden(ErrorCodes.SubscriptionInactive, "The subscription is not active.");
        }
        if (!subscription.ToEntitlement().AllowsRegion(session.Region))
        {
            throw ApiProblemException.Forbidden(ErrorCodes.RegionNotAllowed, "The plan does not include this region.");
        }
        var newKey = RandomNumberGenerator.GetBytes(32);
        var newHash = SHA256.HashData(newKey);
        // Only the session's own node matters here; selection (which needs every node's load) runs only for a move.
        var current = await nodes.GetAsync(session.NodeId, cancellationToken);
        var now = time.GetUtcNow();
        // The session already counts against its node's capacity, so only health and freshness decide whether it stays.
        if (current is not null && current.Healthy && current.LastHeartbeatAt is { } beat && now - beat <= options.NodeFreshness)
        {
            if (!await sessions.RotateKeyAsync(session.Id, oldHash, newHash, now, cancellationToken))
            {
                throw InvalidSessionKey();
            }
            return ToView(session.Id, Base64Url(newKey), SessionState.Active, session.CreatedAt, session.DeviceId, current, Assignment(session));
        }
        var request = new NodeRequest(session.Region, session.CountryCode, session.CityCode, session.Pool);
        var excluded = new HashSet<Guid> { session.NodeId };
        for (var attempt = 0; attempt < MaxSelectionAttempts; attempt++)
        {
            var node = await SelectAsync(request, excluded, cancellationToken);
            if ((await TryConnectAsync(node, session.Id, session.DevicePublicKey, session.ClaimSeq, cancellationToken)).Assigned is not { } assigned)
            {
                excluded.Add(node.Id);
                continue;
            }
            MoveOutcome moved;
            try
            {
                moved = await sessions.MoveAsync(session.Id, oldHash, newHash, node.Id, assigned.Address, assigned.AddressV6, assigned.Dns, time.GetUtcNow(),
                    CancellationToken.None);
            }
            catch (Exception e)
            {
                // The store failed after the new node added the peer: the database still has the session on its old
                // node (the move commits as a whole or not at all), so the new peer goes. Should the commit have landed
                // with only its answer lost, both nodes' reconciliation converges to the database.
                var removed = await DisconnectQuietlyAsync(node, session.Id);
                LogMoveUndone(logger, node.Id, e.GetType().Name, removed);
                throw;
            }
            if (moved != MoveOutcome.Moved)
            {
                await TryDisconnectAsync(node, session.Id);
                if (moved == MoveOutcome.KeyChanged)
                {
                    throw InvalidSessionKey();
                }
                excluded.Add(node.Id);
                continue;
            }
            if (current is not null)
            {
                await TryDisconnectAsync(current, session.Id);
            }
            LogMoved(logger, session.NodeId, node.Id);
            return ToView(session.Id, Base64Url(newKey), SessionState.Active, session.CreatedAt, session.DeviceId, node, assigned);
        }
        throw new ApiProblemException(StatusCodes.Status502BadGateway, ErrorCodes.NodeUnavailable, "No node could take over the session; retry.");
    }

    /// <summary>A new key for a replayed start, if the session is still active with the recorded key; null otherwise.</summary>
    public async Task<(string Key, byte[] Hash)?> RotateKeyForReplayAsync(Guid sessionId, byte[] recordedHash, CancellationToken cancellationToken)
    {
        var key = RandomNumberGenerator.GetBytes(32);
        var hash = SHA256.HashData(key);
        return await sessions.RotateKeyAsync(sessionId, recordedHash, hash, time.GetUtcNow(), cancellationToken) ? (Base64Url(key), hash) : null;
    }

    public async Task<SessionView?> GetCurrentAsync(Guid customerId, CancellationToken cancellationToken)
    {
        var session = await sessions.GetActiveAsync(customerId, cancellationToken);
        if (session is null)
        {
            return null;
        }
        var node = await nodes.GetAsync(session.NodeId, cancellationToken)
            ?? throw new InvalidOperationException("Active session on a node that does not exist.");
        return ToView(session.Id, null, session.State, session.CreatedAt, session.DeviceId, node, Assignment(session));
    }

    /// <summary>Terminates the active session; false when there was none. The peer removal is best effort (reconciliation converges).</summary>
    public async Task<bool> TerminateCurrentAsync(Guid customerId, CancellationToken cancellationToken)
    {
        var session = await sessions.TerminateActiveAsync(customerId, "customer_request", time.GetUtcNow(), cancellationToken);
        if (session is null)
        {
            return false;
        }
        await RemovePeerAsync(session.NodeId, session.Id);
        return true;
    }

    /// <summary>
    /// Removes a terminated session's peer from its node; failures (of the node lookup too) are logged, not thrown: the
    /// session is already terminated in the database, and the node's reconciliation removes a peer left behind.
    /// </summary>
    public async Task RemovePeerAsync(Guid nodeId, Guid sessionId)
    {
        metrics.SessionsTerminated.Add(1);
        Node? node;
        try
        {
            using var deadline = new CancellationTokenSource(options.CoreCallTimeout, time);
            node = await nodes.GetAsync(nodeId, deadline.Token);
        }
        catch (Exception e)
        {
            LogPeerRemovalSkipped(logger, nodeId, e.GetType().Name);
            return;
        }
        if (node is not null)
        {
            await TryDisconnectAsync(node, sessionId);
        }
    }

    /// <summary>
    /// Undoes a start whose session is already active but whose answer cannot be given (e.g. its Idempotency-Key record
    /// could not be written): the row is marked failed and the peer removed, so a retry starts afresh instead of
    /// meeting a session it has no key for. Best effort, bounded, logged once.
    /// </summary>
    public async Task UndoStartAsync(Guid nodeId, Guid sessionId, Exception reason)
    {
        ArgumentNullException.ThrowIfNull(reason);
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
        await CompensateAsync(node, nodeId, sessionId, peerMayExist: node is not null, reason);
    }

    private async Task<Node> SelectAsync(NodeRequest request, HashSet<Guid> excluded, CancellationToken cancellationToken)
    {
        var all = await nodes.ListWithLoadAsync(cancellationToken);
        var snapshots = all
            .Where(n => !excluded.Contains(n.Node.Id))
            .Select(n => new NodeSnapshot(n.Node.Id, n.Node.Region, n.Node.CountryCode, n.Node.CityCode, n.Node.Pool, n.Node.Capacity,
                n.Node.Healthy, n.Node.LastHeartbeatAt, n.LiveSessions));
        var choice = NodeSelection.Select(snapshots, request, time.GetUtcNow(), options.NodeFreshness, Random.Shared);
        if (choice.Node is null)
        {
            var rejected = new Dictionary<NodeRejection, int>(choice.Rejected);
            if (excluded.Count > 0)
            {
                rejected[NodeRejection.AtCapacity] = rejected.GetValueOrDefault(NodeRejection.AtCapacity) + excluded.Count;
            }
            throw NoNodes(rejected);
        }
        return all.First(n => n.Node.Id == choice.Node.Id).Node;
    }

    /// <summary>
    /// Everything after the claim: the replaced session's peer removed, core Connect, activation. Every way out but
    /// success leaves nothing behind — whatever failed (core, the store, a bug), the claim is marked failed and the peer
    /// removed before the error is answered, so the customer's slot is free for a retry at once (not after the sweeper).
    /// </summary>
    private async Task<TunnelAssignment> ConnectAsync(Node node, NewSession session, ClaimResult claim, CancellationToken cancellationToken)
    {
        // Until Connect has answered, a failure leaves no peer (TryConnectAsync removes one a failed call may have added).
        var peerMayExist = false;
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
                throw await LiveIdQuietlyAsync(session.CustomerId, session.Id) is { } winner ? Conflict(winner) : NodeUnavailable();
            }
            if (assigned is null)
            {
                throw NodeUnavailable();
            }
            peerMayExist = true;
            if (!await sessions.ActivateAsync(session.Id, assigned.Address, assigned.AddressV6, assigned.Dns, time.GetUtcNow(), CancellationToken.None))
            {
                // The row was terminated meanwhile (replaced by a later start, device deleted, swept), or its address is
                // held by another live session on the node (core state diverged from the database): undo. A later start
                // of the customer that replaced this one is the conflict its client is told about.
                throw await LiveIdQuietlyAsync(session.CustomerId, session.Id) is { } winner ? Conflict(winner) : NodeUnavailable();
            }
            metrics.SessionsStarted.Add(1);
            LogStarted(logger, node.Id);
            return assigned;
        }
        catch (Exception e)
        {
            await CompensateAsync(node, node.Id, session.Id, peerMayExist, e);
            throw;
        }
    }

    /// <summary>
    /// The undo of a start: the row marked failed and (when core may hold it) the peer removed, both at once, each best
    /// effort within the core deadline — the original error is what the client gets. One log line when a peer was
    /// involved or the undo itself failed (a plain Connect failure is logged where it happened); whatever could not be
    /// undone is left to the sweeper (the row) and the node's reconciliation (the peer).
    /// </summary>
    private async Task CompensateAsync(Node? node, Guid nodeId, Guid sessionId, bool peerMayExist, Exception reason)
    {
        metrics.SessionStartsFailed.Add(1);
        var rowFailed = MarkFailedQuietlyAsync(sessionId);
        var peerRemoved = peerMayExist && node is not null ? DisconnectQuietlyAsync(node, sessionId) : Task.FromResult(!peerMayExist);
        await Task.WhenAll(rowFailed, peerRemoved);
        if (peerMayExist || !rowFailed.Result)
        {
            LogStartUndone(logger, nodeId, reason is ApiProblemException problem ? problem.Code : reason.GetType().Name, rowFailed.Result, peerRemoved.Result);
        }
    }

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
    private async Task<bool> DisconnectQuietlyAsync(Node node, Guid sessionId)
    {
        try
        {
            await CallCoreAsync(node, (client, deadline) => client.DisconnectAsync(new DisconnectRequest { SessionId = sessionId.ToString() },
                deadline: deadline).ResponseAsync, CancellationToken.None);
            return true;
        }
        catch (Exception e) when (e is RpcException or HttpRequestException or OperationCanceledException)
        {
            return false;
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

    private static ApiProblemException NodeUnavailable() =>
        new(StatusCodes.Status502BadGateway, ErrorCodes.NodeUnavailable, "The selected node could not set up the tunnel; retry.");

    /// <summary>
    /// Core Connect and its answer checked; on failure, or an answer that is not a valid assignment, the peer is removed
    /// again (a deadline may expire after core added it) and no assignment returned. Superseded: core refused because it
    /// holds the device key for a later claim (ALREADY_EXISTS; nothing was added).
    /// </summary>
    private async Task<(TunnelAssignment? Assigned, bool Superseded)> TryConnectAsync(Node node, Guid sessionId,
        Domain.WireGuard.WireGuardKey devicePublicKey, long claimSeq, CancellationToken cancellationToken)
    {
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
            LogConnectFailed(logger, node.Id, e is RpcException rpc ? rpc.StatusCode.ToString() : e.GetType().Name);
            await TryDisconnectAsync(node, sessionId);
            return (null, false);
        }
        if (!TunnelAssignment.TryRead(response, out var assigned, out var badField))
        {
            LogMalformedAssignment(logger, node.Id, badField);
            await TryDisconnectAsync(node, sessionId);
            return (null, false);
        }
        return (assigned, false);
    }

    private async Task TryDisconnectAsync(Node node, Guid sessionId)
    {
        try
        {
            await CallCoreAsync(node, (client, deadline) => client.DisconnectAsync(new DisconnectRequest { SessionId = sessionId.ToString() },
                deadline: deadline).ResponseAsync, CancellationToken.None);
        }
        catch (Exception e) when (e is RpcException or HttpRequestException or OperationCanceledException)
        {
            LogDisconnectFailed(logger, node.Id, e is RpcException rpc ? rpc.StatusCode.ToString() : e.GetType().Name);
        }
    }

    /// <summary>A stored active session's assignment (its IPv6 address is null when it was started before dual stack).</summary>
    private static TunnelAssignment Assignment(SessionRecord session) =>
        new(session.AssignedAddress ?? throw new InvalidOperationException("Active session without an address."), session.AssignedAddressV6, session.Dns);

    private static SessionView ToView(Guid id, string? key, string state, DateTimeOffset createdAt, Guid? deviceId, Node node, TunnelAssignment assigned) =>
        new(id, key, state, createdAt, deviceId,
            new SessionNodeView(node.Id, node.Name, node.Region, node.CountryCode, node.CityCode, node.Pool, node.PublicEndpoint, node.PublicKey),
            new SessionInterfaceView(assigned.Address, assigned.Addresses, assigned.Dns),
            new SessionPeerView(node.PublicKey, node.PublicEndpoint, FullTunnel, PersistentKeepalive),
            WireGuardConfig.Render(assigned.Addresses, assigned.Dns, node.PublicKey, node.PublicEndpoint, FullTunnel, PersistentKeepalive));

    private static ApiProblemException Conflict(Guid? activeSessionId) =>
        new(StatusCodes.Status409Conflict, ErrorCodes.SessionConflict, "Another session is active for this customer.",
            new Dictionary<string, object?> { ["active_session_id"] = activeSessionId });

    private static ApiProblemException NoNodes(IReadOnlyDictionary<NodeRejection, int> rejected) =>
        new(StatusCodes.Status503ServiceUnavailable, ErrorCodes.NoNodesAvailable, "No node in the region can take a session right now.",
            new Dictionary<string, object?>
            {
                ["rejected"] = new Dictionary<string, int>
                {
                    ["region_mismatch"] = rejected.GetValueOrDefault(NodeRejection.RegionMismatch),
                    ["filter_mismatch"] = rejected.GetValueOrDefault(NodeRejection.FilterMismatch),
                    ["unhealthy"] = rejected.GetValueOrDefault(NodeRejection.Unhealthy),
                    ["stale_heartbeat"] = rejected.GetValueOrDefault(NodeRejection.StaleHeartbeat),
                    ["at_capacity"] = rejected.GetValueOrDefault(NodeRejection.AtCapacity),
                },
            });

    private static ApiProblemException InvalidSessionKey() =>
        ApiProblemException.Unauthorized(ErrorCodes.InvalidSessionKey, "The session key is not valid.");

    /// <summary>SHA-256 of the key as the customer holds it (base64url text); malformed input hashes to something that matches nothing.</summary>
    private static byte[] HashKey(string? sessionKey)
    {
        if (string.IsNullOrEmpty(sessionKey) || sessionKey.Length > 128)
        {
            throw ApiProblemException.BadRequest("'session_key' is required.");
        }
        try
        {
            var bytes = Convert.FromBase64String(sessionKey.Replace('-', '+').Replace('_', '/') + new string('=', (4 - sessionKey.Length % 4) % 4));
            return SHA256.HashData(bytes);
        }
        catch (FormatException)
        {
            throw InvalidSessionKey();
        }
    }

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    [LoggerMessage(EventId = 203, Level = LogLevel.Information, Message = "Session moved from node {FromNodeId} to {ToNodeId} on reconnect")]
    private static partial void LogMoved(ILogger logger, Guid fromNodeId, Guid toNodeId);

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

    [LoggerMessage(EventId = 206, Level = LogLevel.Warning,
        Message = "Session move to node {NodeId} failed in the store ({Reason}) after core added the peer; peer removed {PeerRemoved}")]
    private static partial void LogMoveUndone(ILogger logger, Guid nodeId, string reason, bool peerRemoved);

    [LoggerMessage(EventId = 207, Level = LogLevel.Information, Message = "Core call to node {NodeId} got no answer ({Reason}); sent once more")]
    private static partial void LogCoreCallRetried(ILogger logger, Guid nodeId, string reason);

    [LoggerMessage(EventId = 208, Level = LogLevel.Warning, Message = "Node {NodeId} could not be read ({Reason}) to remove a terminated session's peer; reconciliation will remove it")]
    private static partial void LogPeerRemovalSkipped(ILogger logger, Guid nodeId, string reason);
}
