using Vpn.Domain.Sessions;

namespace Vpn.Entry.Nodes;

/// <summary>A VPN node as registered by an operator. CoreEndpoint is how entry reaches its core over gRPC.</summary>
public sealed record Node(
    Guid Id,
    string Name,
    string Region,
    string? CountryCode,
    string? CityCode,
    string? Pool,
    string PublicEndpoint,
    string PublicKey,
    string CoreEndpoint,
    int Capacity,
    bool Healthy,
    int ActivePeerCount,
    DateTimeOffset? LastHeartbeatAt,
    DateTimeOffset UpdatedAt)
{
    /// <summary>Drained by an operator: no new sessions; its sessions move on their next reconnect (drain/undrain).</summary>
    public bool Draining { get; init; }

    /// <summary>While draining, entry also moves the node's sessions itself, in batches (drain with "migrate": true).</summary>
    public bool DrainMigrate { get; init; }

    /// <summary>When the drain began; null when the node is not draining.</summary>
    public DateTimeOffset? DrainingSince { get; init; }
}

public sealed record NodeRegistration(
    string Name,
    string Region,
    string? CountryCode,
    string? CityCode,
    string? Pool,
    string PublicEndpoint,
    string PublicKey,
    string CoreEndpoint,
    int Capacity);

/// <summary>A node with the database's count of its live sessions, the input of node selection.</summary>
public sealed record NodeWithLoad(Node Node, int LiveSessions);

/// <summary>
/// A session the database says belongs on a node. Address (IPv4 "/32") is null while the session is still provisioning;
/// AddressV6 ("/128") is null then too, and for sessions that have no IPv6 address (started before dual stack).
/// </summary>
/// ClaimSeq orders the claims of one device key (core keeps the later one).
public sealed record NodeSessionPeer(Guid SessionId, string PublicKey, string? Address, SessionState State, string? AddressV6, long ClaimSeq,
    Usage.SessionCounters? Usage = null);

public interface INodeStore
{
    /// <summary>Live (provisioning or active) sessions on the node: what its WireGuard device must converge to.</summary>
    Task<IReadOnlyList<NodeSessionPeer>> ListDesiredPeersAsync(Guid nodeId, CancellationToken cancellationToken);

    /// <summary>Inserts or updates by name; Created tells which.</summary>
    Task<(Node Node, bool Created)> UpsertAsync(NodeRegistration registration, DateTimeOffset now, CancellationToken cancellationToken);

    Task<IReadOnlyList<Node>> ListAsync(CancellationToken cancellationToken);

    Task<Node?> GetAsync(Guid nodeId, CancellationToken cancellationToken);

    /// <summary>Whether some registered node has this WireGuard public key (base64): no device may use a node's own key.</summary>
    Task<bool> IsNodePublicKeyAsync(string publicKey, CancellationToken cancellationToken);

    /// <summary>Records a heartbeat; false when the node is unknown.</summary>
    Task<bool> RecordHeartbeatAsync(Guid nodeId, bool healthy, int activePeerCount, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>Every node with its live-session count, in one query.</summary>
    Task<IReadOnlyList<NodeWithLoad>> ListWithLoadAsync(CancellationToken cancellationToken);
}
