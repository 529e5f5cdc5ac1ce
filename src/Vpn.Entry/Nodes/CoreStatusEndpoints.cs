using Grpc.Core;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Vpn.Contracts.Core.V1;

namespace Vpn.Entry.Nodes;

/// <summary>
/// A node's core as it reports itself (GetNodeStatus). Counters are since that core started; the reconcile fields are
/// all zero/false on a core without CORE_ENTRY_URL (no reconciliation). last_reconcile_at is null before the first
/// successful pass. filter_drops is empty without a filter (noop dataplane, WG_NAT_DRIVER=none).
/// </summary>
public sealed record CoreStatusView(
    Guid NodeId,
    string NodeName,
    bool Healthy,
    uint ActivePeers,
    string NatDriver,
    string DataplaneMode,
    IReadOnlyList<string> NativeFeatures,
    string ClientPool,
    string ClientPoolV6,
    bool Synced,
    ulong ReconcilePasses,
    ulong ReconcileFailures,
    ulong ReconcilePeersAdded,
    ulong ReconcilePeersRemoved,
    ulong ReconcilePeersCorrected,
    DateTimeOffset? LastReconcileAt,
    ulong DeviceReinitializations,
    CoreResolverView Resolver,
    IReadOnlyList<FilterDropView> FilterDrops)
{
    public static CoreStatusView From(Node node, NodeStatus status)
    {
        ArgumentNullException.ThrowIfNull(node);
        ArgumentNullException.ThrowIfNull(status);
        return new(node.Id, node.Name, status.Healthy, status.ActivePeers, status.NatDriver, status.DataplaneMode, [.. status.NativeFeatures],
            status.ClientPool, status.ClientPoolV6, status.Synced, status.ReconcilePasses, status.ReconcileFailures, status.ReconcilePeersAdded,
            status.ReconcilePeersRemoved, status.ReconcilePeersCorrected,
            status.LastReconcileUnixMs > 0 ? DateTimeOffset.FromUnixTimeMilliseconds(status.LastReconcileUnixMs) : null,
            status.DeviceReinitializations, CoreResolverView.From(status.Resolver),
            [.. status.FilterDrops.Select(d => new FilterDropView(d.Name, d.Packets, d.Bytes))]);
    }
}

/// <summary>
/// The node's DNS resolver as its core last checked it. checked false (the noop dataplane, CORE_RESOLVER_CHECK=false, or
/// a core that predates the check): healthy says nothing. last_check_at is null before the first check.
/// </summary>
public sealed record CoreResolverView(bool Checked, bool Healthy, IReadOnlyList<string> Addresses, string Detail, DateTimeOffset? LastCheckAt)
{
    public static CoreResolverView From(ResolverStatus? status) => status is null
        ? new(false, false, [], "", null)
        : new(status.Checked, status.Healthy, [.. status.Addresses], status.Detail,
            status.LastCheckUnixMs > 0 ? DateTimeOffset.FromUnixTimeMilliseconds(status.LastCheckUnixMs) : null);

    /// <summary>The core checks its resolver and the last check (or the lack of one yet) failed.</summary>
    public static bool IsFailing(ResolverStatus? status) => status is { Checked: true, Healthy: false };
}

/// <summary>One of the node filter's drop counters (e.g. tunnel_to_private), since its table was applied.</summary>
public sealed record FilterDropView(string Name, ulong Packets, ulong Bytes);

public static partial class CoreStatusEndpoints
{
    public static IEndpointRouteBuilder MapCoreStatusEndpoints(this IEndpointRouteBuilder app)
    {
        var admin = app.MapGroup("/v1/admin/core").RequireAdmin().WithTags("Nodes");

        // node_id is bound as text so a missing or malformed one is our 400 invalid_request, after the admin check.
        admin.MapGet("/status", async Task<Ok<CoreStatusView>> ([FromQuery(Name = "node_id")] string? nodeId, INodeStore nodes, CoreClients cores,
            EntryOptions options, TimeProvider time, ILoggerFactory loggers, CancellationToken ct) =>
        {
            var id = Validation.RequireGuid(nodeId, "node_id");
            var node = await nodes.GetAsync(id, ct) ?? throw ApiProblemException.NotFound(ErrorCodes.NodeNotFound, "No such node.");
            var status = await GetStatusAsync(cores, node, options, time, loggers.CreateLogger(typeof(CoreStatusEndpoints)), ct);
            return TypedResults.Ok(CoreStatusView.From(node, status));
        })
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status502BadGateway);

        return app;
    }

    private static async Task<NodeStatus> GetStatusAsync(CoreClients cores, Node node, EntryOptions options, TimeProvider time, ILogger logger,
        CancellationToken ct)
    {
        try
        {
            return await cores.For(node.CoreEndpoint).GetNodeStatusAsync(new GetNodeStatusRequest(),
                deadline: time.GetUtcNow().UtcDateTime + options.CoreCallTimeout, cancellationToken: ct);
        }
        catch (Exception e) when (e is RpcException or HttpRequestException || e is OperationCanceledException && !ct.IsCancellationRequested)
        {
            // The status code says enough (Unavailable, DeadlineExceeded…); a transport message may quote the endpoint.
            var reason = e is RpcException rpc ? rpc.StatusCode.ToString() : e.GetType().Name;
            LogCoreStatusFailed(logger, node.Id, reason);
            throw new ApiProblemException(StatusCodes.Status502BadGateway, ErrorCodes.NodeUnavailable,
                $"The node's core did not answer with its status ({reason}).");
        }
    }

    [LoggerMessage(EventId = 300, Level = LogLevel.Warning, Message = "GetNodeStatus on node {NodeId} failed: {Reason}")]
    private static partial void LogCoreStatusFailed(ILogger logger, Guid nodeId, string reason);
}
