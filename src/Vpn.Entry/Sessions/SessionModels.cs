using Vpn.Domain.Sessions;
using Vpn.Domain.Subscriptions;
using Vpn.Domain.WireGuard;

namespace Vpn.Entry.Sessions;

/// <summary>
/// A session row. AssignedAddress (IPv4 "/32") is null until the node's core has allocated one; AssignedAddressV6
/// ("/128") is null then too, and stays null for sessions started before dual stack or on a core without IPv6.
/// </summary>
public sealed record SessionRecord(
    Guid Id,
    Guid CustomerId,
    Guid? DeviceId,
    WireGuardKey DevicePublicKey,
    Guid NodeId,
    SessionState State,
    string? AssignedAddress,
    IReadOnlyList<string> Dns,
    string Region,
    string? CountryCode,
    string? CityCode,
    string? Pool,
    DateTimeOffset CreatedAt)
{
    /// <summary>SHA-256 of the current session key; never the key itself.</summary>
    public byte[] KeyHash { get; init; } = [];

    /// <summary>When the session was terminated or failed (the retention clock); null while it is live.</summary>
    public DateTimeOffset? EndedAt { get; init; }

    /// <summary>
    /// Why it ended (sessions.terminate_reason: replaced, customer_request, device_deleted, subscription_canceled, …); null
    /// while live. Kept by the in-memory store for session events; the PostgreSQL stores do not read it into records.
    /// </summary>
    public string? TerminateReason { get; init; }

    /// <summary>The client's IPv6 tunnel prefix, e.g. "fd64:6400::2/128"; null when the session has none.</summary>
    public string? AssignedAddressV6 { get; init; }

    /// <summary>The order of the session's claim (0 when unknown): core keeps the later of two claims of one device key.</summary>
    public long ClaimSeq { get; init; }
}

/// <summary>A new session about to be provisioned; KeyHash is SHA-256 of the session key.</summary>
public sealed record NewSession(
    Guid Id,
    Guid CustomerId,
    Guid DeviceId,
    WireGuardKey DevicePublicKey,
    Guid NodeId,
    byte[] KeyHash,
    string Region,
    string? CountryCode,
    string? CityCode,
    string? Pool,
    DateTimeOffset CreatedAt);

public enum ClaimOutcome
{
    Claimed,
    /// <summary>The customer already has a live session (ActiveSessionId).</summary>
    Conflict,
    /// <summary>The node filled up between selection and claim.</summary>
    NodeFull,
    /// <summary>The node disappeared (deleted) between selection and claim.</summary>
    NodeGone,
    /// <summary>The device was deleted between the read and the claim (or, for a start's claim, is not the customer's).</summary>
    DeviceGone,
    /// <summary>A start's claim only: the customer's current subscription does not entitle to a session in the region.</summary>
    NotEntitled,
    /// <summary>A start's claim only: the node is unhealthy or its heartbeat is older than the freshness window.</summary>
    NodeUnfit,
    /// <summary>A start's claim only: the customer's use in this billing period reached the plan's quota (QuotaResetsAt).</summary>
    QuotaExceeded,
}

/// <summary>
/// One session start's claim, checked and made in one round trip (<see cref="ISessionStore.ClaimStartAsync"/>): the
/// device's public key is read by the claim itself. <paramref name="FreshAfter"/>: the node's last heartbeat must be later.
/// </summary>
public sealed record StartClaim(
    Guid Id,
    Guid CustomerId,
    Guid DeviceId,
    Guid NodeId,
    byte[] KeyHash,
    string Region,
    string? CountryCode,
    string? CityCode,
    string? Pool,
    DateTimeOffset CreatedAt,
    bool ReplaceExisting,
    DateTimeOffset FreshAfter);

/// <summary>
/// A start's claim answered: <see cref="ClaimResult"/>'s fields, the device key (Claimed), the current subscription period
/// when the customer is not entitled (null: none), and the node's live-session count as the claim saw it (-1 unknown).
/// </summary>
public sealed record StartClaimResult(ClaimResult Claim, WireGuardKey DevicePublicKey = default, Entitlement? Entitlement = null, int NodeLive = -1,
    DateTimeOffset? QuotaResetsAt = null)
{
    public ClaimOutcome Outcome => Claim.Outcome;
}

/// <summary>Replaced is the session terminated by replace_existing, whose peer must now be removed.</summary>
/// <param name="ClaimSeq">The claim's place in the order of all claims (Claimed only).</param>
public sealed record ClaimResult(ClaimOutcome Outcome, Guid? ActiveSessionId = null, SessionRecord? Replaced = null, long ClaimSeq = 0);

public enum MoveOutcome
{
    Moved,
    /// <summary>The key was rotated meanwhile (a concurrent reconnect won) or the session ended.</summary>
    KeyChanged,
    NodeFull,
    AddressTaken,
}

public interface ISessionStore
{
    /// <summary>
    /// Inserts the session as 'provisioning', holding the customer's single slot and one unit of the node's capacity.
    /// The database decides races: a second live session for the customer is a Conflict; capacity is checked against
    /// the live-session count under the node's row lock.
    /// </summary>
    Task<ClaimResult> ClaimAsync(NewSession session, bool replaceExisting, CancellationToken cancellationToken);

    /// <summary>
    /// A session start's claim in one round trip: <see cref="ClaimAsync"/>'s claim (capacity under the node's row lock,
    /// the customer's single slot, replace_existing, claim_seq) after the start's own checks, in this order: the
    /// customer's entitlement to the region (NotEntitled), the device being the customer's (DeviceGone), the node
    /// existing (NodeGone), healthy with a heartbeat after <see cref="StartClaim.FreshAfter"/> (NodeUnfit), below capacity
    /// (NodeFull), then the slot (Conflict).
    /// </summary>
    Task<StartClaimResult> ClaimStartAsync(StartClaim claim, CancellationToken cancellationToken);

    /// <summary>The active session whose key hashes to <paramref name="keyHash"/>, or null.</summary>
    Task<SessionRecord?> FindActiveByKeyHashAsync(byte[] keyHash, CancellationToken cancellationToken);

    /// <summary>Replaces the key hash only if it is still <paramref name="oldHash"/> (one concurrent reconnect wins).</summary>
    Task<bool> RotateKeyAsync(Guid sessionId, byte[] oldHash, byte[] newHash, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>
    /// Moves an active session to another node with its new addresses (<paramref name="addressV6"/> null when the new
    /// node's core gave none), rotating the key in the same compare-and-swap; capacity of the new node is checked under
    /// its row lock. AddressTaken when either address is held by another live session on that node.
    /// </summary>
    Task<MoveOutcome> MoveAsync(Guid sessionId, byte[] oldHash, byte[] newHash, Guid nodeId, string address, string? addressV6,
        IReadOnlyList<string> dns, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>
    /// provisioning → active with its addresses (<paramref name="assignedAddressV6"/> null when core gave none); false
    /// when either address is already held by another live session on the node, or the row is no longer provisioning.
    /// </summary>
    Task<bool> ActivateAsync(Guid sessionId, string assignedAddress, string? assignedAddressV6, IReadOnlyList<string> dns, DateTimeOffset now,
        CancellationToken cancellationToken);

    /// <summary>Removes a provisioning claim that could not complete (marked failed, so nothing live remains).</summary>
    Task AbandonAsync(Guid sessionId, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>
    /// Marks 'provisioning' rows created before <paramref name="olderThan"/> as failed: their request died between the
    /// claim and the core call (entry crashed or was killed). Returns how many; the node's reconciliation removes any peer.
    /// </summary>
    Task<int> FailStaleProvisioningAsync(DateTimeOffset olderThan, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>
    /// Terminates the live sessions of customers whose current subscription is on <paramref name="planCode"/> in a region
    /// the plan no longer allows (compared ignoring case). Returns them so their peers can be removed.
    /// </summary>
    Task<IReadOnlyList<SessionRecord>> TerminateOutsidePlanRegionsAsync(string planCode, IReadOnlyList<string> allowedRegions, DateTimeOffset now,
        CancellationToken cancellationToken);

    /// <summary>The customer's active session, or null.</summary>
    Task<SessionRecord?> GetActiveAsync(Guid customerId, CancellationToken cancellationToken);

    /// <summary>The customer's live session (provisioning or active) id, or null.</summary>
    Task<Guid?> GetLiveIdAsync(Guid customerId, CancellationToken cancellationToken);

    /// <summary>active → terminated; returns the session as it was, or null when there was none.</summary>
    Task<SessionRecord?> TerminateActiveAsync(Guid customerId, string reason, DateTimeOffset now, CancellationToken cancellationToken);
}
