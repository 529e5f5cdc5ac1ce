namespace Vpn.Core.WireGuard;

/// <summary>
/// Changes to apply to a device in one UAPI <c>set</c>. Every nullable member means "leave unchanged".
/// The set is not atomic: the device applies it line by line and stops at the first invalid line.
/// </summary>
public sealed record DeviceConfig
{
    /// <summary>The zero key removes the device's private key.</summary>
    public WireGuardKey? PrivateKey { get; init; }

    /// <summary>UDP port, 0–65535; 0 lets the device pick a free port.</summary>
    public int? ListenPort { get; init; }

    /// <summary>SO_MARK for outgoing packets; 0 clears it.</summary>
    public uint? FirewallMark { get; init; }

    /// <summary>Removes every existing peer before <see cref="Peers"/> are applied.</summary>
    public bool ReplacePeers { get; init; }

    /// <summary>Applied in order; peers not listed are left alone unless <see cref="ReplacePeers"/> is set.</summary>
    public IReadOnlyList<PeerConfig> Peers { get; init; } = [];

    private bool PrintMembers(StringBuilder builder)
    {
        KeyRedaction.AppendDevice(builder, PrivateKey, ListenPort, FirewallMark)
            .Append(", ReplacePeers = ").Append(ReplacePeers)
            .Append(", Peers.Count = ").Append(Peers.Count);
        return true;
    }
}

/// <summary>Changes to one peer, identified by its public key. Nullable members mean "leave unchanged".</summary>
public sealed record PeerConfig
{
    public required WireGuardKey PublicKey { get; init; }

    /// <summary>Removes the peer; every other member except <see cref="PublicKey"/> is then ignored.</summary>
    public bool Remove { get; init; }

    /// <summary>Only changes the peer if it already exists; never creates it.</summary>
    public bool UpdateOnly { get; init; }

    /// <summary>The zero key removes the preshared key.</summary>
    public WireGuardKey? PresharedKey { get; init; }

    public IPEndPoint? Endpoint { get; init; }

    /// <summary>Whole seconds, 0–65535 (fractions are dropped); zero turns keepalives off.</summary>
    public TimeSpan? PersistentKeepaliveInterval { get; init; }

    /// <summary>Removes the peer's allowed IPs before <see cref="AllowedIps"/> are added; with null AllowedIps it clears them.</summary>
    public bool ReplaceAllowedIps { get; init; }

    /// <summary>Added to the peer's allowed IPs (or replacing them, see <see cref="ReplaceAllowedIps"/>).</summary>
    public IReadOnlyList<IPNetwork>? AllowedIps { get; init; }

    private bool PrintMembers(StringBuilder builder)
    {
        builder.Append("PublicKey = ").Append(PublicKey.ToBase64())
            .Append(", Remove = ").Append(Remove)
            .Append(", UpdateOnly = ").Append(UpdateOnly)
            .Append(", ");
        KeyRedaction.AppendSecret(builder, "PresharedKey", PresharedKey)
            .Append(", Endpoint = ").Append(Endpoint)
            .Append(", PersistentKeepaliveInterval = ").Append(PersistentKeepaliveInterval)
            .Append(", ReplaceAllowedIps = ").Append(ReplaceAllowedIps)
            .Append(", AllowedIps = ");
        KeyRedaction.AppendList(builder, AllowedIps);
        return true;
    }
}
