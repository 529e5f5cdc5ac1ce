using System.Globalization;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Vpn.Entry.Nodes;

/// <summary>The body of POST /v1/admin/nodes/{id}/drain; Migrate (default false) has entry move the node's sessions itself.</summary>
public sealed record DrainNodeRequest(bool? Migrate);

/// <summary>Drain, undrain and delete a node (admin): how a node leaves the fleet for maintenance or for good.</summary>
public static class NodeDrainEndpoints
{
    public static RouteGroupBuilder MapNodeDrainEndpoints(this RouteGroupBuilder admin)
    {
        ArgumentNullException.ThrowIfNull(admin);

        // This replica's node cache is re-read at once (the others hear NOTIFY vpn_nodes_changed; the claim checks draining
        // itself, so a start another replica sends there meanwhile is refused and placed elsewhere).
        admin.MapPost("/{id}/drain", async Task<Ok<Node>> (string id, DrainNodeRequest? request, INodeDrainStore drains, NodeDrainMigrator migrator,
            INodeDirectory directory, Audit.IAuditLog audit, TimeProvider time, CancellationToken ct) =>
        {
            var migrate = request?.Migrate ?? false;
            var node = await drains.SetDrainAsync(ParseId(id), draining: true, migrate, time.GetUtcNow(), ct) ?? throw NotFound();
            await directory.ReloadAsync(ct);
            await AuditAsync(audit, time, "node.drained", node, ct, migrate);
            if (migrate)
            {
                migrator.Wake();
            }
            return TypedResults.Ok(node);
        })
            .ProducesProblem(StatusCodes.Status404NotFound);

        admin.MapPost("/{id}/undrain", async Task<Ok<Node>> (string id, INodeDrainStore drains, INodeDirectory directory, Audit.IAuditLog audit,
            TimeProvider time, CancellationToken ct) =>
        {
            var node = await drains.SetDrainAsync(ParseId(id), draining: false, migrate: false, time.GetUtcNow(), ct) ?? throw NotFound();
            await directory.ReloadAsync(ct);
            await AuditAsync(audit, time, "node.undrained", node, ct);
            return TypedResults.Ok(node);
        })
            .ProducesProblem(StatusCodes.Status404NotFound);

        admin.MapDelete("/{id}", async Task<NoContent> (string id, INodeDrainStore drains, INodeDirectory directory, Audit.IAuditLog audit,
            TimeProvider time, CancellationToken ct) =>
        {
            var nodeId = ParseId(id);
            switch (await drains.DeleteAsync(nodeId, ct))
            {
                case NodeDeleteOutcome.NotFound:
                    throw NotFound();
                case NodeDeleteOutcome.NotDraining:
                    throw new ApiProblemException(StatusCodes.Status409Conflict, ErrorCodes.NodeNotDraining,
                        "Drain the node first (POST /v1/admin/nodes/{id}/drain): an undrained node can take a session at any moment.");
                case NodeDeleteOutcome.NotEmpty:
                    throw new ApiProblemException(StatusCodes.Status409Conflict, ErrorCodes.NodeNotEmpty,
                        "The node still has live sessions; they move on reconnect, or drain it with \"migrate\": true.");
            }
            await directory.ReloadAsync(ct);
            await audit.WriteAsync(new Audit.AuditEvent(time.GetUtcNow(), "admin", "node.deleted", nodeId.ToString(), new Dictionary<string, string?>()), ct);
            return TypedResults.NoContent();
        })
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict);

        return admin;
    }

    private static Guid ParseId(string id) => Guid.TryParseExact(id, "D", out var nodeId) ? nodeId : throw NotFound();

    private static ApiProblemException NotFound() => ApiProblemException.NotFound(ErrorCodes.NodeNotFound, "No such node.");

    private static Task AuditAsync(Audit.IAuditLog audit, TimeProvider time, string action, Node node, CancellationToken ct, bool? migrate = null) =>
        audit.WriteAsync(new Audit.AuditEvent(time.GetUtcNow(), "admin", action, node.Id.ToString(), new Dictionary<string, string?>
        {
            ["name"] = node.Name,
            ["migrate"] = migrate?.ToString(CultureInfo.InvariantCulture).ToLowerInvariant(),
        }), ct);
}
