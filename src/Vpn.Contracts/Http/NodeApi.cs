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
/// ClaimSeq orders the claims of one device key, the later one wins (0 when absent). UsageGeneration, UsageRxBytes and
/// UsageTxBytes are the counters core last reported for the session (left out before its first report): a core that
/// restarted while wireguard-go kept running continues that generation instead of counting the peer's bytes again.
/// </summary>
public sealed record NodePeerDto(
    [property: JsonPropertyName("session_id")] string? SessionId,
    [property: JsonPropertyName("public_key")] string? PublicKey,
    [property: JsonPropertyName("address")] string? Address,
    [property: JsonPropertyName("state")] string? State,
    [property: JsonPropertyName("address_v6")] string? AddressV6 = null,
    [property: JsonPropertyName("claim_seq")] long? ClaimSeq = null,
    [property: JsonPropertyName("usage_generation"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] long? UsageGeneration = null,
    [property: JsonPropertyName("usage_rx_bytes"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] long? UsageRxBytes = null,
    [property: JsonPropertyName("usage_tx_bytes"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] long? UsageTxBytes = null);

/// <summary>
/// <c>POST /v1/internal/nodes/{node_id}/usage</c>, sent by core after a reconciliation pass when counters changed: each
/// session's WireGuard counters, cumulative within a generation (see <see cref="NodeSessionUsageDto"/>). At most
/// <see cref="MaxSessions"/> sessions per request (the 64 KiB body limit); core sends several when more changed.
/// </summary>
public sealed record NodeUsageReportDto([property: JsonPropertyName("sessions"), Required] IReadOnlyList<NodeSessionUsageDto?>? Sessions)
{
    public const int MaxSessions = 400;
}

/// <summary>
/// One session's counters: Generation (1..2^63-1) names one counter run of the peer on the device — core draws a new
/// one when the peer is re-added or the device restarted, as the counters then start again from zero. RxBytes is what
/// the node received from the client, TxBytes what it sent to it, WireGuard overhead included.
/// </summary>
public sealed record NodeSessionUsageDto(
    [property: JsonPropertyName("session_id"), Required] string? SessionId,
    [property: JsonPropertyName("generation"), Required] long? Generation,
    [property: JsonPropertyName("rx_bytes"), Required] long? RxBytes,
    [property: JsonPropertyName("tx_bytes"), Required] long? TxBytes);
