namespace Vpn.Core.WireGuard;

/// <summary>Record printing that keeps secret keys out of logs: only whether one is present is shown.</summary>
internal static class KeyRedaction
{
    public const string Marker = "(redacted)";

    /// <summary>"<paramref name="name"/> = (redacted)", or "= null" without a key.</summary>
    public static StringBuilder AppendSecret(StringBuilder builder, string name, WireGuardKey? key) =>
        builder.Append(name).Append(" = ").Append(key is null ? "null" : Marker);

    /// <summary>The device members both device records print: the private key (redacted), the port and the mark.</summary>
    public static StringBuilder AppendDevice(StringBuilder builder, WireGuardKey? privateKey, int? listenPort, uint? firewallMark) =>
        AppendSecret(builder, "PrivateKey", privateKey).Append(", ListenPort = ").Append(listenPort).Append(", FirewallMark = ").Append(firewallMark);

    public static void AppendList(StringBuilder builder, IReadOnlyList<IPNetwork>? networks)
    {
        if (networks is null)
        {
            builder.Append("null");
            return;
        }
        builder.Append('[');
        for (var i = 0; i < networks.Count; i++)
        {
            builder.Append(i == 0 ? "" : ", ").Append(networks[i].ToString());
        }
        builder.Append(']');
    }
}
