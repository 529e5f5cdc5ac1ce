using System.ComponentModel.DataAnnotations;
using System.Text.Json.Serialization;

namespace Vpn.Contracts.Http;

// The core -> entry internal HTTP API (admin token in x-admin-token), written by one side and read by the other.
// Every field is nullable and every id is text: the reader validates the whole body and names what is wrong, instead of
// failing on the first type mismatch. The JSON names are the contract; they do not depend on either side's naming policy.

/// <summary>
/// <c>POST /v1/internal/nodes/health</c>, sent by core every heartbeat period. NodeId is a GUID in "D" form;
/// ActivePeerCount is the number of peers on the node's WireGuard device (0..65,536).
/// </summary>
public sealed record NodeHeartbeatDto(
    [property: JsonPropertyName("node_id"), Required] string? NodeId,
    [property: JsonPropertyName("healthy"), Required] bool? Healthy,
    [property: JsonPropertyName("active_peer_count"), Required] int? ActivePeerCount);

/// <summary>
/// <c>GET /v1/internal/nodes/{node_id}/peers</c>: what a node's core reconciles its WireGuard device to, as a whole.
/// GeneratedAt is entry's clock when it read the set, so core can order answers.
/// </summary>
public sealed record NodePeerSetDto(
    [property: JsonPropertyName("node_id")] string? NodeId,
    [property: JsonPropertyName("generated_at")] DateTimeOffset? GeneratedAt,
    [property: JsonPropertyName("peers")] IReadOnlyList<NodePeerDto?>? Peers);

/// <summary>
/// One live session on the node. State is "provisioning" or "active". Address is the IPv4 "/32", null while the session
/// is provisioning; AddressV6 is the IPv6 "/128", null then too and for sessions without one (older entries omit it).
/// ClaimSeq orders the claims of one device key, the later one wins (0 when absent).
/// </summary>
public sealed record NodePeerDto(
    [property: JsonPropertyName("session_id")] string? SessionId,
    [property: JsonPropertyName("public_key")] string? PublicKey,
    [property: JsonPropertyName("address")] string? Address,
    [property: JsonPropertyName("state")] string? State,
    [property: JsonPropertyName("address_v6")] string? AddressV6 = null,
    [property: JsonPropertyName("claim_seq")] long? ClaimSeq = null);
