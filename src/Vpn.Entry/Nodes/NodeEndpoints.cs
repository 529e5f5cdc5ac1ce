using System.ComponentModel.DataAnnotations;
using Microsoft.AspNetCore.Http.HttpResults;
using Vpn.Contracts.Http;
using Vpn.Domain.Sessions;

namespace Vpn.Entry.Nodes;

public sealed record RegisterNodeRequest([property: Required] string? Name, [property: Required] string? Region, string? CountryCode,
    string? CityCode, string? Pool, [property: Required] string? PublicEndpoint, [property: Required] string? PublicKey,
    [property: Required] string? CoreEndpoint, [property: Required] int? Capacity);

public sealed record NodeList(IReadOnlyList<Node> Items);

public static class NodeEndpoints
{
    // wireguard-go refuses a peer beyond 65,536 per interface (errno=-22); a node's capacity must fit.
    public const int MaxCapacity = Vpn.Domain.Nodes.NodeSnapshot.MaxPeersPerInterface;

    public static IEndpointRouteBuilder MapNodeEndpoints(this IEndpointRouteBuilder app)
    {
        var admin = app.MapGroup("/v1/admin/nodes").RequireAdmin().WithTags("Nodes");
        admin.MapNodeDrainEndpoints();

        admin.MapGet("/", async Task<Ok<NodeList>> (INodeStore nodes, CancellationToken ct) => TypedResults.Ok(new NodeList(await nodes.ListAsync(ct))));

        admin.MapPost("/", async Task<Results<Created<Node>, Ok<Node>>> (RegisterNodeRequest request, INodeStore nodes, Audit.IAuditLog audit,
            INodeDirectory directory, Configuration.EntryOptions options, TimeProvider time, CancellationToken ct) =>
        {
            var coreEndpoint = Validation.Require(request.CoreEndpoint, "core_endpoint");
            if (!CoreChannelFactory.IsValidEndpoint(coreEndpoint))
            {
                throw ApiProblemException.BadRequest("'core_endpoint' must be http(s)://host:port, host:port or unix:/path.");
            }
            if (options.CoreTls.Require && !CoreChannelFactory.IsSecureEndpoint(coreEndpoint))
            {
                throw ApiProblemException.BadRequest("'core_endpoint' must be https://host:port or unix:/path while APP_REQUIRE_CORE_TLS is on.");
            }
            var registration = new NodeRegistration(
                Validation.RequireCode(request.Name, "name"),
                Validation.RequireCode(request.Region, "region"),
                Validation.OptionalCountry(request.CountryCode, "country_code"),
                Validation.OptionalCode(request.CityCode, "city_code"),
                Validation.OptionalCode(request.Pool, "pool"),
                Validation.RequireEndpoint(request.PublicEndpoint, "public_endpoint"),
                Validation.RequirePublicKey(request.PublicKey).ToBase64(),
                coreEndpoint,
                Validation.RequireRange(request.Capacity, "capacity", 1, MaxCapacity - 1));
            var (node, created) = await nodes.UpsertAsync(registration, time.GetUtcNow(), ct);
            // Re-read now: the next start here must not dial the core endpoint (or use the capacity) the node had before.
            await directory.ReloadAsync(ct);
            await audit.WriteAsync(new Audit.AuditEvent(time.GetUtcNow(), "admin", created ? "node.created" : "node.updated", node.Id.ToString(),
                new Dictionary<string, string?> { ["name"] = node.Name, ["region"] = node.Region, ["capacity"] = node.Capacity.ToString(System.Globalization.CultureInfo.InvariantCulture) }), ct);
            return created ? TypedResults.Created($"/v1/admin/nodes/{node.Id}", node) : TypedResults.Ok(node);
        });

        var internalGroup = app.MapGroup("/v1/internal/nodes").RequireAdmin().WithTags("Nodes");
        internalGroup.MapPost("/health", async Task<NoContent> (NodeHeartbeatDto request, INodeStore nodes, INodeDirectory directory, TimeProvider time,
            CancellationToken ct) =>
        {
            var nodeId = Validation.RequireGuid(request.NodeId, "node_id");
            var healthy = Validation.Require(request.Healthy, "healthy");
            var peers = Validation.RequireRange(request.ActivePeerCount, "active_peer_count", 0, MaxCapacity);
            var now = time.GetUtcNow();
            if (!await nodes.RecordHeartbeatAsync(nodeId, healthy, peers, now, ct))
            {
                throw ApiProblemException.NotFound(ErrorCodes.NodeNotFound, "No such node.");
            }
            // This replica's node cache sees its own heartbeats at once (the others' by NOTIFY on health changes and refresh).
            directory.ObserveHeartbeat(nodeId, healthy, peers, now);
            return TypedResults.NoContent();
        });


        // Pulled by each core for reconciliation: the database is the truth of which peers belong on the node.
        internalGroup.MapGet("/{node_id}/peers", async Task<Ok<NodePeerSetDto>> (string node_id, INodeStore nodes, TimeProvider time, CancellationToken ct) =>
        {
            if (!Guid.TryParseExact(node_id, "D", out var nodeId) || await nodes.GetAsync(nodeId, ct) is null)
            {
                throw ApiProblemException.NotFound(ErrorCodes.NodeNotFound, "No such node.");
            }
            var generatedAt = time.GetUtcNow();
            var peers = await nodes.ListDesiredPeersAsync(nodeId, ct);
            return TypedResults.Ok(new NodePeerSetDto(nodeId.ToString("D"), generatedAt, [.. peers.Select(ToDto)]));
        });

        return app;
    }

    private static NodePeerDto ToDto(NodeSessionPeer peer) =>
        new(peer.SessionId.ToString("D"), peer.PublicKey, peer.Address, peer.State.ToName(), peer.AddressV6, peer.ClaimSeq,
            peer.Usage?.Generation, peer.Usage?.ReceivedBytes, peer.Usage?.SentBytes);
}
