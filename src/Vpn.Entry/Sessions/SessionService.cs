using System.Security.Cryptography;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;
using Vpn.Domain.Nodes;
using Vpn.Domain.Sessions;
using Vpn.Domain.Subscriptions;
using Vpn.Entry.Devices;
using Vpn.Entry.Nodes;
using Vpn.Entry.Subscriptions;

namespace Vpn.Entry.Sessions;

/// <summary>
/// The session lifecycle: entitlement → selection → claim (provisioning row) → core Connect → active. Any failure
/// after the claim rolls back to nothing: the row is marked failed and the peer removed. Answers are outcomes
/// (<see cref="SessionOutcome"/>); <see cref="SessionEndpoints"/> turns them into HTTP. Split by concern: this file the
/// operations, SessionService.Idempotency.cs the Idempotency-Key workflow, SessionService.Provisioning.cs the core calls
/// and the undo of a start.
/// </summary>
public sealed partial class SessionService(
    ISessionStore sessions,
    IDeviceStore devices,
    INodeStore nodes,
    INodeDirectory directory,
    IPlanStore plans,
    Usage.IUsageStore usage,
    IIdempotencyStore idempotency,
    CoreClients cores,
    NodeCallGate gate,
    EntryOptions options,
    IOptions<JsonOptions> json,
    TimeProvider time,
    EntryMetrics metrics,
    ILogger<SessionService> logger)
{
    // Both families for every session, even one without an IPv6 address: IPv6 then goes into the tunnel and dies
    // there instead of leaking around it on a dual-stack network.
    private static readonly string[] FullTunnel = ["0.0.0.0/0", "::/0"];
    private const int PersistentKeepalive = 25;
    private const int MaxSelectionAttempts = 5;

    /// <summary>
    /// Starts a session. <paramref name="idempotencyKey"/> is the request's Idempotency-Key header (none, or one value of
    /// 1-255 printable ASCII characters): see <see cref="StartIdempotentAsync"/>.
    /// </summary>
    public async Task<SessionOutcome> StartAsync(Guid customerId, StartSessionRequest request, StringValues idempotencyKey,
        CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (idempotencyKey.Count == 0)
        {
            return (await StartOnceAsync(customerId, request, cancellationToken)).Outcome;
        }
        return idempotencyKey.Count == 1 && idempotencyKey[0] is { Length: >= 1 and <= 255 } key && key.All(c => c is >= ' ' and <= '~')
            ? await StartIdempotentAsync(customerId, key, request, cancellationToken)
            : new SessionFailure.InvalidRequest("Idempotency-Key must be 1-255 printable ASCII characters.");
    }

    /// <summary>
    /// Reconnect by session key: the key is rotated on every call (the old one dies at once); when the session's node
    /// is no longer a healthy, fresh candidate (or is draining) the session moves to one matching its original filters.
    /// </summary>
    public async Task<SessionOutcome> ReconnectAsync(Guid customerId, string? sessionKey, CancellationToken cancellationToken)
    {
        if (HashKey(sessionKey, out var oldHash) is { } badKey)
        {
            return badKey;
        }
        var session = await sessions.FindActiveByKeyHashAsync(oldHash, cancellationToken);
        // Bound to its customer: another customer's key is exactly as invalid as an unknown one.
        if (session is null || session.CustomerId != customerId || !CryptographicOperations.FixedTimeEquals(session.KeyHash, oldHash))
        {
            return new SessionFailure.InvalidSessionKey();
        }
        var subscription = await plans.GetSubscriptionAsync(customerId, cancellationToken);
        if (Entitlements.Check(subscription?.ToEntitlement(), session.Region).Denial is { } denial)
        {
            return new SessionFailure.NotEntitled(denial);
        }
        var newKey = RandomNumberGenerator.GetBytes(32);
        var newHash = SHA256.HashData(newKey);
        // Only the session's own node matters here; selection (which needs every node's load) runs only for a move.
        var current = await nodes.GetAsync(session.NodeId, cancellationToken);
        var now = time.GetUtcNow();
        // The session already counts against its node's capacity, so only health, freshness and a drain decide whether it stays.
        var serving = current is not null && current.Healthy && current.LastHeartbeatAt is { } beat && now - beat <= options.NodeFreshness;
        if (serving && !current!.Draining)
        {
            return await StayAsync(session, current, oldHash, newHash, newKey, now, cancellationToken);
        }
        var move = await MoveOffAsync(session, current, (node, assigned) => sessions.MoveAsync(session.Id, oldHash, newHash, node.Id, assigned.Address,
            assigned.AddressV6, assigned.Dns, time.GetUtcNow(), CancellationToken.None), cancellationToken);
        if (move is not { Node: { } to, Assigned: { } moved })
        {
            // A draining node still serves its sessions: with no node to take this one, it stays until one can.
            return serving && move.Failure is SessionFailure.NoNodes or SessionFailure.NoNodeTookOver
                ? await StayAsync(session, current!, oldHash, newHash, newKey, time.GetUtcNow(), cancellationToken)
                : move.Failure!;
        }
        LogMoved(logger, session.NodeId, to.Id);
        return ToView(session.Id, Base64Url(newKey), SessionState.Active, session.CreatedAt, session.DeviceId, to, moved);
    }

    /// <summary>The session stays on its node: only the key is rotated (one of two concurrent reconnects wins).</summary>
    private async Task<SessionOutcome> StayAsync(SessionRecord session, Node node, byte[] oldHash, byte[] newHash, byte[] newKey, DateTimeOffset now,
        CancellationToken cancellationToken) =>
        await sessions.RotateKeyAsync(session.Id, oldHash, newHash, now, cancellationToken)
            ? ToView(session.Id, Base64Url(newKey), SessionState.Active, session.CreatedAt, session.DeviceId, node, Assignment(session))
            : new SessionFailure.InvalidSessionKey();

    /// <summary>The customer's active session without its key; null when there is none.</summary>
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

    /// <summary>The start's device and node filters; the failure when a field is malformed (the first one, in field order).</summary>
    private static SessionFailure.InvalidRequest? ReadStart(StartSessionRequest request, out Guid deviceId, out NodeRequest nodeRequest)
    {
        (deviceId, nodeRequest) = (default, null!);
        string region;
        string? country, city, pool;
        try
        {
            deviceId = Validation.RequireGuid(request.DeviceId, "device_id");
            region = Validation.RequireCode(request.Region, "region");
            country = Validation.OptionalCountry(request.CountryCode, "country_code");
            city = Validation.OptionalCode(request.CityCode, "city_code");
            pool = Validation.OptionalCode(request.Pool, "pool");
        }
        catch (ApiProblemException e) when (e.Status == StatusCodes.Status400BadRequest)
        {
            // The shared field validators throw; here the answer is an outcome like every other.
            return new SessionFailure.InvalidRequest(e.Message, e.Code);
        }
        Guid? hint = null;
        if (request.NodeHint is not null)
        {
            if (!Guid.TryParseExact(request.NodeHint, "D", out var parsed))
            {
                return new SessionFailure.InvalidRequest("'node_hint' must be a node UUID.", ErrorCodes.InvalidNodeHint);
            }
            hint = parsed;
        }
        nodeRequest = new NodeRequest(region, country, city, pool, hint);
        return null;
    }

    /// <summary>The policy's choice among the nodes not in <paramref name="excluded"/> (nodes already tried and found full).</summary>
    private async Task<NodeChoice<NodeWithLoad>> SelectAsync(NodeRequest request, HashSet<Guid> excluded, CancellationToken cancellationToken)
    {
        var all = await nodes.ListWithLoadAsync(cancellationToken);
        return SelectShedding(all.Where(n => !excluded.Contains(n.Node.Id)).ToList(), n => n.Node.Id, Describe, request);
    }

    /// <summary>
    /// The selection policy with the storm rules on top: a node whose Connect queue is full is passed over (its load shows
    /// in the registry only once those Connects land), and so is one whose core just gave no answer — unless no other
    /// node would do, then it gets its chance. When only full nodes would take the start, it is 503 node_busy (retry
    /// shortly), not "no nodes".
    /// </summary>
    private NodeChoice<T> SelectShedding<T>(IReadOnlyList<T> open, Func<T, Guid> id, Func<T, NodeSnapshot> describe, NodeRequest request)
        where T : class
    {
        var now = time.GetUtcNow();
        NodeChoice<T> Select(IEnumerable<T> among) => NodeSelection.Select(among, describe, request, now, options.NodeFreshness, Random.Shared);
        var notFull = open.Where(n => !gate.IsFull(id(n))).ToList();
        var reachable = notFull.Where(n => !gate.IsUnreachable(id(n))).ToList();
        if (reachable.Count < notFull.Count && Select(reachable) is { Node: not null } preferred)
        {
            return preferred;
        }
        var choice = Select(notFull);
        if (choice.Node is null && notFull.Count < open.Count && Select(open).Node is not null)
        {
            throw new NodeBusyException();
        }
        return choice;
    }

    private static NodeSnapshot Describe(NodeWithLoad n) =>
        new(n.Node.Id, n.Node.Region, n.Node.CountryCode, n.Node.CityCode, n.Node.Pool, n.Node.Capacity, n.Node.Healthy, n.Node.LastHeartbeatAt,
            n.LiveSessions) { Draining = n.Node.Draining };

    /// <summary>No node: the selector's rejections, with the nodes tried and found full (or gone) counted as at capacity.</summary>
    private static SessionFailure.NoNodes NoNodes(IReadOnlyDictionary<NodeRejection, int> rejected, int excludedCount)
    {
        var counts = new Dictionary<NodeRejection, int>(rejected);
        counts[NodeRejection.AtCapacity] = counts.GetValueOrDefault(NodeRejection.AtCapacity) + excludedCount;
        return new SessionFailure.NoNodes(counts);
    }

    /// <summary>A stored active session's assignment (its IPv6 address is null when it was started before dual stack).</summary>
    private static TunnelAssignment Assignment(SessionRecord session) =>
        new(session.AssignedAddress ?? throw new InvalidOperationException("Active session without an address."), session.AssignedAddressV6, session.Dns);

    private static SessionView ToView(Guid id, string? key, SessionState state, DateTimeOffset createdAt, Guid? deviceId, Node node,
        TunnelAssignment assigned) =>
        new(id, key, state.ToName(), createdAt, deviceId,
            new SessionNodeView(node.Id, node.Name, node.Region, node.CountryCode, node.CityCode, node.Pool, node.PublicEndpoint, node.PublicKey),
            new SessionInterfaceView(assigned.Address, assigned.Addresses, assigned.Dns),
            new SessionPeerView(node.PublicKey, node.PublicEndpoint, FullTunnel, PersistentKeepalive),
            WireGuardConfig.Render(assigned.Addresses, assigned.Dns, node.PublicKey, node.PublicEndpoint, FullTunnel, PersistentKeepalive));

    /// <summary>
    /// SHA-256 of the key as the customer holds it (base64url text); malformed input is an invalid key, a missing (or
    /// absurdly long) one an invalid request.
    /// </summary>
    private static SessionFailure? HashKey(string? sessionKey, out byte[] hash)
    {
        hash = [];
        if (string.IsNullOrEmpty(sessionKey) || sessionKey.Length > 128)
        {
            return new SessionFailure.InvalidRequest("'session_key' is required.");
        }
        try
        {
            hash = SHA256.HashData(Convert.FromBase64String(sessionKey.Replace('-', '+').Replace('_', '/') + new string('=', (4 - sessionKey.Length % 4) % 4)));
            return null;
        }
        catch (FormatException)
        {
            return new SessionFailure.InvalidSessionKey();
        }
    }

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    [LoggerMessage(EventId = 203, Level = LogLevel.Information, Message = "Session moved from node {FromNodeId} to {ToNodeId} on reconnect")]
    private static partial void LogMoved(ILogger logger, Guid fromNodeId, Guid toNodeId);

    [LoggerMessage(EventId = 206, Level = LogLevel.Warning,
        Message = "Session move to node {NodeId} failed in the store ({Reason}) after core added the peer; peer removed {PeerRemoved}")]
    private static partial void LogMoveUndone(ILogger logger, Guid nodeId, string reason, bool peerRemoved);

    [LoggerMessage(EventId = 208, Level = LogLevel.Warning, Message = "Node {NodeId} could not be read ({Reason}) to remove a terminated session's peer; reconciliation will remove it")]
    private static partial void LogPeerRemovalSkipped(ILogger logger, Guid nodeId, string reason);
}
