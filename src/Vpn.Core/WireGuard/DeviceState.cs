namespace Vpn.Core.WireGuard;

/// <summary>A device as read with a UAPI <c>get</c>.</summary>
public sealed record DeviceState
{
    /// <summary>Null when the device has no private key.</summary>
    public WireGuardKey? PrivateKey { get; init; }

    /// <summary>Bound UDP port; 0 when not bound.</summary>
    public int ListenPort { get; init; }

    /// <summary>0 when no mark is set.</summary>
    public uint FirewallMark { get; init; }

    public IReadOnlyList<PeerState> Peers { get; init; } = [];

    private bool PrintMembers(StringBuilder builder)
    {
        KeyRedaction.AppendDevice(builder, PrivateKey, ListenPort, FirewallMark)
            .Append(", Peers.Count = ").Append(Peers.Count);
        return true;
    }
}

/// <summary>A peer as read with a UAPI <c>get</c>.</summary>
public sealed record PeerState
{
    public required WireGuardKey PublicKey { get; init; }

    /// <summary>Null when the peer has no preshared key (the device reports the zero key).</summary>
    public WireGuardKey? PresharedKey { get; init; }

    /// <summary>Null until configured or learnt from an authenticated packet.</summary>
    public IPEndPoint? Endpoint { get; init; }

    /// <summary>Whole seconds; zero when keepalives are off.</summary>
    public TimeSpan PersistentKeepaliveInterval { get; init; }

    /// <summary>Null when no handshake has completed (the device reports 0 s and 0 ns).</summary>
    public DateTimeOffset? LastHandshake { get; init; }

    /// <summary>Bytes received from the peer, including WireGuard overhead.</summary>
    public ulong ReceiveBytes { get; init; }

    /// <summary>Bytes sent to the peer, including WireGuard overhead.</summary>
    public ulong TransmitBytes { get; init; }

    public IReadOnlyList<IPNetwork> AllowedIps { get; init; } = [];

    /// <summary>WireGuard protocol version; 1 is the only one defined.</summary>
    public int ProtocolVersion { get; init; }

    private bool PrintMembers(StringBuilder builder)
    {
        builder.Append("PublicKey = ").Append(PublicKey.ToBase64()).Append(", ");
        KeyRedaction.AppendSecret(builder, "PresharedKey", PresharedKey)
            .Append(", Endpoint = ").Append(Endpoint)
            .Append(", PersistentKeepaliveInterval = ").Append(PersistentKeepaliveInterval)
            .Append(", LastHandshake = ").Append(LastHandshake?.ToString("O", null))
            .Append(", ReceiveBytes = ").Append(ReceiveBytes)
            .Append(", TransmitBytes = ").Append(TransmitBytes)
            .Append(", AllowedIps = ");
        KeyRedaction.AppendList(builder, AllowedIps);
        builder.Append(", ProtocolVersion = ").Append(ProtocolVersion);
        return true;
    }
}
