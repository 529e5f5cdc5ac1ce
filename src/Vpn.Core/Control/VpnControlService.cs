using System.Diagnostics.CodeAnalysis;
using Grpc.Core;
using Vpn.Contracts.Core.V1;
using Vpn.Core.Dataplane;
using Vpn.Core.Dns;
using Vpn.Core.Health;
using Vpn.Core.Reconciliation;

namespace Vpn.Core.Control;

/// <summary>The gRPC API entry calls. Errors carry a status code and a short reason, never a key or a UAPI transcript.</summary>
public sealed partial class VpnControlService(PeerRegistry registry, IDataplane dataplane, CoreOptionsView view, ReconcileMetrics reconcile,
    ResolverHealth resolver, NodeHealth health, ILogger<VpnControlService> logger)
    : VpnControl.VpnControlBase
{
    public override async Task<ConnectResponse> Connect(ConnectRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(context);
        var sessionId = ParseSessionId(request.SessionId);
        if (!WireGuardKey.TryParseBase64(request.DevicePublicKey, out var key) || !key.IsAcceptablePublicKey || key == view.NodePublicKey)
        {
            ThrowInvalid("device_public_key must be the base64 of a canonical 32-byte WireGuard public key, not of small order and not the node's own.");
        }
        (ConnectOutcome Outcome, PeerLease? Lease) result;
        try
        {
            result = await registry.ConnectAsync(sessionId, key, request.ClaimSeq, context.CancellationToken);
            // Just restarted: entry may still pick this node on its last heartbeat. Wait (briefly) for the first sync
            // rather than fail the start.
            if (result.Outcome == ConnectOutcome.NotSynced && await registry.WaitForFirstSyncAsync(context.CancellationToken))
            {
                result = await registry.ConnectAsync(sessionId, key, request.ClaimSeq, context.CancellationToken);
            }
        }
        catch (IOException e)
        {
            LogDataplaneFailed(logger, "connect", e.GetType().Name);
            throw new RpcException(new Status(StatusCode.Unavailable, "The WireGuard device refused the change."));
        }
        return result.Outcome switch
        {
            ConnectOutcome.Connected => new ConnectResponse
            {
                SessionId = sessionId.ToString(),
                AssignedAddress = $"{result.Lease!.Address}/32",
                AssignedAddressV6 = $"{result.Lease.Address6}/128",
                Dns = { registry.GatewayText, registry.Gateway6Text },
            },
            ConnectOutcome.PoolExhausted => throw new RpcException(new Status(StatusCode.ResourceExhausted, "The node's client address pool is exhausted.")),
            ConnectOutcome.KeyInUse => throw new RpcException(new Status(StatusCode.AlreadyExists, "The device key is the peer of a session of a later (or unknown) claim.")),
            ConnectOutcome.NotSynced => throw new RpcException(new Status(StatusCode.Unavailable, "The node has not loaded its sessions from the database yet.")),
            _ => throw new RpcException(new Status(StatusCode.FailedPrecondition, "The session is connected with another device key.")),
        };
    }

    public override async Task<DisconnectResponse> Disconnect(DisconnectRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(context);
        var sessionId = ParseSessionId(request.SessionId);
        try
        {
            return new DisconnectResponse { Removed = await registry.DisconnectAsync(sessionId, context.CancellationToken) is not null };
        }
        catch (IOException e)
        {
            LogDataplaneFailed(logger, "disconnect", e.GetType().Name);
            throw new RpcException(new Status(StatusCode.Unavailable, "The WireGuard device refused the change."));
        }
    }

    public override Task<GetSessionResponse> GetSession(GetSessionRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        var lease = registry.Find(ParseSessionId(request.SessionId));
        return Task.FromResult(lease is null
            ? new GetSessionResponse { Found = false, SessionId = request.SessionId }
            : new GetSessionResponse
            {
                Found = true,
                SessionId = lease.SessionId.ToString(),
                DevicePublicKey = lease.PublicKey.ToBase64(),
                AssignedAddress = $"{lease.Address}/32",
                AssignedAddressV6 = $"{lease.Address6}/128",
            });
    }

    public override async Task<NodeStatus> GetNodeStatus(GetNodeStatusRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var reading = await health.ReadAsync(context.CancellationToken);
        var drift = reconcile.Snapshot();
        var status = new NodeStatus
        {
            Healthy = reading.Healthy,
            ActivePeers = (uint)reading.ActivePeers,
            NatDriver = dataplane.NatDriver,
            DataplaneMode = dataplane.Mode,
            ClientPool = view.ClientPool,
            ClientPoolV6 = view.ClientPool6,
            Synced = drift.Synced,
            ReconcilePasses = (ulong)drift.Passes,
            ReconcileFailures = (ulong)drift.Failures,
            ReconcilePeersAdded = (ulong)drift.PeersAdded,
            ReconcilePeersRemoved = (ulong)drift.PeersRemoved,
            ReconcilePeersCorrected = (ulong)drift.PeersCorrected,
            LastReconcileUnixMs = drift.LastSuccessUnixMs,
            DeviceReinitializations = (ulong)drift.DeviceReinitializations,
            Resolver = resolver.ToStatus(),
        };
        status.NativeFeatures.AddRange(dataplane.NativeFeatures);
        try
        {
            foreach (var counter in await dataplane.ReadFilterCountersAsync(context.CancellationToken))
            {
                status.FilterDrops.Add(new FilterCounter { Name = counter.Name, Packets = counter.Packets, Bytes = counter.Bytes });
            }
        }
        catch (Nat.NatException e)
        {
            // The table is gone or unreadable: the node no longer isolates its clients.
            LogDataplaneFailed(logger, "read filter counters", e.GetType().Name);
            status.Healthy = false;
        }
        return status;
    }

    private static Guid ParseSessionId(string value)
    {
        if (!Guid.TryParseExact(value, "D", out var id))
        {
            ThrowInvalid("session_id must be a UUID.");
        }
        return id;
    }

    [DoesNotReturn]
    private static void ThrowInvalid(string detail) => throw new RpcException(new Status(StatusCode.InvalidArgument, detail));

    [LoggerMessage(EventId = 400, Level = LogLevel.Warning, Message = "Dataplane {Operation} failed: {Reason}")]
    private static partial void LogDataplaneFailed(ILogger logger, string operation, string reason);
}
