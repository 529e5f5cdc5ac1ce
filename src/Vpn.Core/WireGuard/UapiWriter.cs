using System.Buffers;

namespace Vpn.Core.WireGuard;

/// <summary>
/// Writes UAPI requests (https://www.wireguard.com/xplatform/#configuration-protocol) as UTF-8 bytes.
/// Only typed values are written, so no value can smuggle a newline into the line-based protocol.
/// </summary>
public static class UapiWriter
{
    // The longest value is a scoped IPv6 endpoint: "[" + 45-char address + "%" + scope + "]:65535".
    private const int MaxLineLength = 128;

    public static void WriteGet(IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        output.Write("get=1\n\n"u8);
    }

    /// <summary>
    /// Writes a whole <c>set=1</c> request, blank line included. Arguments are validated as they are
    /// written, so callers should buffer the request and send it only when this returns.
    /// </summary>
    public static void WriteSet(DeviceConfig config, IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(output);
        output.Write("set=1\n"u8);

        // Device keys must come before the first public_key line, which switches the device to peer keys.
        if (config.PrivateKey is { } privateKey)
        {
            WriteKey(output, "private_key="u8, privateKey);
        }
        if (config.ListenPort is { } port)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(port, nameof(config));
            ArgumentOutOfRangeException.ThrowIfGreaterThan(port, IPEndPoint.MaxPort, nameof(config));
            WriteNumber(output, "listen_port="u8, (uint)port);
        }
        if (config.FirewallMark is { } mark)
        {
            WriteNumber(output, "fwmark="u8, mark);
        }
        if (config.ReplacePeers)
        {
            output.Write("replace_peers=true\n"u8);
        }

        var peers = config.Peers ?? throw new ArgumentException("Peers must not be null.", nameof(config));
        for (var i = 0; i < peers.Count; i++)
        {
            WritePeer(output, peers[i] ?? throw new ArgumentException("A peer must not be null.", nameof(config)));
        }
        output.Write("\n"u8);
    }

    private static void WritePeer(IBufferWriter<byte> output, PeerConfig peer)
    {
        if (peer.PublicKey.IsZero)
        {
            throw new ArgumentException("A peer's public key must not be the zero key.", nameof(peer));
        }
        WriteKey(output, "public_key="u8, peer.PublicKey);
        if (peer.Remove)
        {
            output.Write("remove=true\n"u8);
            return;
        }
        if (peer.UpdateOnly)
        {
            output.Write("update_only=true\n"u8);
        }
        if (peer.PresharedKey is { } presharedKey)
        {
            WriteKey(output, "preshared_key="u8, presharedKey);
        }
        if (peer.Endpoint is { } endpoint)
        {
            WriteEndpoint(output, endpoint);
        }
        if (peer.PersistentKeepaliveInterval is { } keepalive)
        {
            var seconds = (long)keepalive.TotalSeconds;
            if (seconds is < 0 or > ushort.MaxValue)
            {
                throw new ArgumentOutOfRangeException(nameof(peer), "PersistentKeepaliveInterval must be 0 to 65535 seconds.");
            }
            WriteNumber(output, "persistent_keepalive_interval="u8, (uint)seconds);
        }
        if (peer.ReplaceAllowedIps)
        {
            output.Write("replace_allowed_ips=true\n"u8);
        }
        if (peer.AllowedIps is { } allowedIps)
        {
            for (var i = 0; i < allowedIps.Count; i++)
            {
                WriteNetwork(output, allowedIps[i]);
            }
        }
    }

    private static void WriteKey(IBufferWriter<byte> output, ReadOnlySpan<byte> prefix, WireGuardKey key)
    {
        var span = output.GetSpan(prefix.Length + (2 * WireGuardKey.Length) + 1);
        prefix.CopyTo(span);
        Convert.TryToHexStringLower(key.Bytes, span[prefix.Length..], out var written);
        var length = prefix.Length + written;
        span[length++] = (byte)'\n';
        output.Advance(length);
    }

    private static void WriteNumber(IBufferWriter<byte> output, ReadOnlySpan<byte> prefix, uint value)
    {
        var span = output.GetSpan(prefix.Length + 11);
        prefix.CopyTo(span);
        value.TryFormat(span[prefix.Length..], out var written, default, null);
        var length = prefix.Length + written;
        span[length++] = (byte)'\n';
        output.Advance(length);
    }

    private static void WriteEndpoint(IBufferWriter<byte> output, IPEndPoint endpoint)
    {
        var v6 = endpoint.AddressFamily switch
        {
            AddressFamily.InterNetwork => false,
            AddressFamily.InterNetworkV6 => true,
            _ => throw new ArgumentException("An endpoint must be an IPv4 or IPv6 address.", nameof(endpoint)),
        };
        var prefix = "endpoint="u8;
        var span = output.GetSpan(prefix.Length + MaxLineLength);
        prefix.CopyTo(span);
        var length = prefix.Length;
        if (v6)
        {
            span[length++] = (byte)'[';
        }
        endpoint.Address.TryFormat(span[length..], out var written);
        length += written;
        if (v6)
        {
            span[length++] = (byte)']';
        }
        span[length++] = (byte)':';
        ((uint)endpoint.Port).TryFormat(span[length..], out written, default, null);
        length += written;
        span[length++] = (byte)'\n';
        output.Advance(length);
    }

    private static void WriteNetwork(IBufferWriter<byte> output, IPNetwork network)
    {
        if (network.BaseAddress is null)
        {
            throw new ArgumentException("An allowed IP must not be the default IPNetwork value.", nameof(network));
        }
        var prefix = "allowed_ip="u8;
        var span = output.GetSpan(prefix.Length + MaxLineLength);
        prefix.CopyTo(span);
        var length = prefix.Length;
        if (!network.TryFormat(span[length..], out var written))
        {
            throw new ArgumentException("An allowed IP could not be formatted.", nameof(network));
        }
        length += written;
        span[length++] = (byte)'\n';
        output.Advance(length);
    }
}
