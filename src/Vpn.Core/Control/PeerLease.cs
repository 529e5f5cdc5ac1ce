namespace Vpn.Core.Control;

/// <summary>A session's peer on this node: its IPv4 address and the IPv6 address paired with it.</summary>
/// <param name="ClaimSeq">The order of the session's claim in entry's database (0 = not known): of two sessions with one
/// device key, the later claim holds the peer.</param>
public sealed record PeerLease(Guid SessionId, WireGuardKey PublicKey, IPAddress Address, IPAddress Address6, ulong ClaimSeq = 0);

public enum ConnectOutcome
{
    Connected,
    PoolExhausted,
    /// <summary>The session id is already connected with another device key.</summary>
    SessionKeyMismatch,
    /// <summary>The device key is the peer of another session on this node whose claim is not older (or the order is unknown).</summary>
    KeyInUse,
    /// <summary>Reconciliation is on and has not yet loaded the database's sessions, so free addresses are unknown.</summary>
    NotSynced,
}
