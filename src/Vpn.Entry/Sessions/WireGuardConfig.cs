using System.Text;

namespace Vpn.Entry.Sessions;

/// <summary>
/// Renders the wg-quick file a client imports. The private key line is a placeholder: entry never sees device
/// private keys, the app substitutes its own.
/// </summary>
public static class WireGuardConfig
{
    public const string PrivateKeyPlaceholder = "<your device private key>";

    /// <param name="addresses">The interface's prefixes, IPv4 first (one Address line, comma-separated as wg-quick reads it).</param>
    public static string Render(IReadOnlyList<string> addresses, IReadOnlyList<string> dns, string serverPublicKey, string endpoint,
        IReadOnlyList<string> allowedIps, int persistentKeepalive)
    {
        ArgumentNullException.ThrowIfNull(addresses);
        ArgumentNullException.ThrowIfNull(dns);
        ArgumentNullException.ThrowIfNull(allowedIps);
        var text = new StringBuilder();
        text.Append("[Interface]\n");
        text.Append("PrivateKey = ").Append(PrivateKeyPlaceholder).Append('\n');
        text.Append("Address = ").AppendJoin(", ", addresses).Append('\n');
        if (dns.Count > 0)
        {
            text.Append("DNS = ").AppendJoin(", ", dns).Append('\n');
        }
        text.Append('\n');
        text.Append("[Peer]\n");
        text.Append("PublicKey = ").Append(serverPublicKey).Append('\n');
        text.Append("Endpoint = ").Append(endpoint).Append('\n');
        text.Append("AllowedIPs = ").AppendJoin(", ", allowedIps).Append('\n');
        text.Append("PersistentKeepalive = ").Append(persistentKeepalive).Append('\n');
        return text.ToString();
    }
}
