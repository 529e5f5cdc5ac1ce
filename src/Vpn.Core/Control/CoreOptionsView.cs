namespace Vpn.Core.Control;

/// <summary>
/// The static facts of this node reported in GetNodeStatus, and its own WireGuard public key (derived once from
/// WG_PRIVATE_KEY; null without one), which Connect refuses as a device key: wireguard-go ignores such a peer.
/// </summary>
public sealed record CoreOptionsView(string ClientPool, string ClientPool6, WireGuardKey? NodePublicKey = null);
