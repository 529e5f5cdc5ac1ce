namespace Vpn.Core.Tests.WireGuard;

/// <summary>Fixed keys and the matching UAPI texts shared by the writer, parser and client tests.</summary>
internal static class UapiSamples
{
    public const string PrivateHex = "90d98bd093c5b5a03461802865921570932dbfd31e5986360d19ab61a4d0fa4d";
    public const string PrivateBase64 = "kNmL0JPFtaA0YYAoZZIVcJMtv9MeWYY2DRmrYaTQ+k0=";
    public const string Peer1Hex = "778920aef79f27206ee3466c7a0e254bf1e76d89cc40937df22eeee5fa76894d";
    public const string Psk1Hex = "a42c8ffedb03a90c46f0a49599273458f4a4cd99657a2d3c0814256bba61239a";
    public const string Psk1Base64 = "pCyP/tsDqQxG8KSVmSc0WPSkzZllei08CBQla7phI5o=";
    public const string Peer2Hex = "33ee028fd179055df9c780839d513e00698010cf949373b973524a31d2a15762";
    public const string Peer3Hex = "e92e862df7fa3ae56ca138dec814186276b2c2d3275ec03324c5b016d2d4009f";
    public const string Peer4Hex = "e3eedaafcf9e3c95e692b31e980cd865adbd962e85577677439d9c2b045ee730";
    public const string ZeroHex = "0000000000000000000000000000000000000000000000000000000000000000";

    public static WireGuardKey Key(string hex) =>
        WireGuardKey.TryParseHex(hex, out var key) ? key : throw new ArgumentException("bad test key", nameof(hex));

    /// <summary>Device keys, then peers with every field, update_only, remove and clearing values.</summary>
    public static DeviceConfig FullConfig() => new()
    {
        PrivateKey = Key(PrivateHex),
        ListenPort = 51820,
        FirewallMark = 1234,
        ReplacePeers = true,
        Peers =
        [
            new PeerConfig
            {
                PublicKey = Key(Peer1Hex),
                PresharedKey = Key(Psk1Hex),
                Endpoint = IPEndPoint.Parse("192.0.2.10:51820"),
                PersistentKeepaliveInterval = TimeSpan.FromSeconds(25),
                ReplaceAllowedIps = true,
                AllowedIps = [IPNetwork.Parse("10.8.0.2/32"), IPNetwork.Parse("fd00:8::2/128")],
            },
            new PeerConfig
            {
                PublicKey = Key(Peer2Hex),
                UpdateOnly = true,
                Endpoint = IPEndPoint.Parse("[2001:db8::1]:51821"),
                AllowedIps = [IPNetwork.Parse("10.8.0.0/24"), IPNetwork.Parse("fd00:8::/64")],
            },
            new PeerConfig
            {
                PublicKey = Key(Peer3Hex),
                Remove = true,
                Endpoint = IPEndPoint.Parse("192.0.2.99:1"),
                AllowedIps = [IPNetwork.Parse("10.9.0.0/16")],
            },
            new PeerConfig
            {
                PublicKey = Key(Peer4Hex),
                PresharedKey = Key(ZeroHex),
                PersistentKeepaliveInterval = TimeSpan.Zero,
                ReplaceAllowedIps = true,
            },
        ],
    };

    public const string FullConfigRequest =
        "set=1\n" +
        "private_key=" + PrivateHex + "\n" +
        "listen_port=51820\n" +
        "fwmark=1234\n" +
        "replace_peers=true\n" +
        "public_key=" + Peer1Hex + "\n" +
        "preshared_key=" + Psk1Hex + "\n" +
        "endpoint=192.0.2.10:51820\n" +
        "persistent_keepalive_interval=25\n" +
        "replace_allowed_ips=true\n" +
        "allowed_ip=10.8.0.2/32\n" +
        "allowed_ip=fd00:8::2/128\n" +
        "public_key=" + Peer2Hex + "\n" +
        "update_only=true\n" +
        "endpoint=[2001:db8::1]:51821\n" +
        "allowed_ip=10.8.0.0/24\n" +
        "allowed_ip=fd00:8::/64\n" +
        "public_key=" + Peer3Hex + "\n" +
        "remove=true\n" +
        "public_key=" + Peer4Hex + "\n" +
        "preshared_key=" + ZeroHex + "\n" +
        "persistent_keepalive_interval=0\n" +
        "replace_allowed_ips=true\n" +
        "\n";

    /// <summary>What wireguard-go answers to get=1 for a device with three peers.</summary>
    public const string GetResponse =
        "private_key=" + PrivateHex + "\n" +
        "listen_port=51820\n" +
        "fwmark=1234\n" +
        "public_key=" + Peer1Hex + "\n" +
        "preshared_key=" + Psk1Hex + "\n" +
        "protocol_version=1\n" +
        "endpoint=192.0.2.10:51820\n" +
        "last_handshake_time_sec=1700000000\n" +
        "last_handshake_time_nsec=123456789\n" +
        "tx_bytes=1024\n" +
        "rx_bytes=2048\n" +
        "persistent_keepalive_interval=25\n" +
        "allowed_ip=10.8.0.2/32\n" +
        "allowed_ip=fd00:8::2/128\n" +
        "public_key=" + Peer2Hex + "\n" +
        "preshared_key=" + ZeroHex + "\n" +
        "protocol_version=1\n" +
        "endpoint=[2001:db8::1]:51821\n" +
        "last_handshake_time_sec=0\n" +
        "last_handshake_time_nsec=0\n" +
        "tx_bytes=0\n" +
        "rx_bytes=0\n" +
        "persistent_keepalive_interval=0\n" +
        "allowed_ip=10.8.0.0/24\n" +
        "allowed_ip=fd00:8::/64\n" +
        "public_key=" + Peer3Hex + "\n" +
        "preshared_key=" + ZeroHex + "\n" +
        "protocol_version=1\n" +
        "last_handshake_time_sec=0\n" +
        "last_handshake_time_nsec=0\n" +
        "tx_bytes=0\n" +
        "rx_bytes=0\n" +
        "persistent_keepalive_interval=0\n" +
        "errno=0\n" +
        "\n";
}
