namespace Vpn.EndToEnd;

public sealed record WgQuickInterface(string? PrivateKey, IReadOnlyList<string> Addresses, IReadOnlyList<string> Dns);

public sealed record WgQuickPeer(string PublicKey, string? Endpoint, IReadOnlyList<string> AllowedIps, int? PersistentKeepalive);

/// <summary>
/// The subset of the wg-quick file format a client needs: <c>[Interface]</c> PrivateKey/Address/DNS and
/// <c>[Peer]</c> PublicKey/Endpoint/AllowedIPs/PersistentKeepalive. Keys are case-insensitive, <c>#</c>
/// starts a comment, list values are comma-separated. Anything else wg-quick knows (MTU, ListenPort,
/// PostUp, …) is tolerated and ignored; text outside a section, a missing/duplicate <c>[Interface]</c>,
/// a peer without PublicKey or a malformed line is a <see cref="FormatException"/>.
/// </summary>
public sealed record WgQuickConfig(WgQuickInterface Interface, IReadOnlyList<WgQuickPeer> Peers)
{
    /// <summary>What entry writes instead of the key it never sees (api-v1.md).</summary>
    public const string PrivateKeyPlaceholder = "<your device private key>";

    public bool HasPrivateKeyPlaceholder => Interface.PrivateKey == PrivateKeyPlaceholder;

    public WgQuickConfig WithPrivateKey(string privateKey) => this with { Interface = Interface with { PrivateKey = privateKey } };

    public static WgQuickConfig Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        WgQuickInterface? iface = null;
        var peers = new List<WgQuickPeer>();
        Section? current = null;

        void Flush()
        {
            if (current is null)
            {
                return;
            }
            if (current.IsInterface)
            {
                if (iface is not null)
                {
                    throw new FormatException("More than one [Interface] section.");
                }
                iface = new WgQuickInterface(current.Single("PrivateKey"), current.List("Address"), current.List("DNS"));
            }
            else
            {
                var publicKey = current.Single("PublicKey") ?? throw new FormatException($"[Peer] at line {current.Line} has no PublicKey.");
                var keepalive = current.Single("PersistentKeepalive");
                int? keepaliveSeconds = null;
                if (keepalive is not null && !string.Equals(keepalive, "off", StringComparison.OrdinalIgnoreCase))
                {
                    keepaliveSeconds = int.TryParse(keepalive, NumberStyles.None, CultureInfo.InvariantCulture, out var k)
                        ? k
                        : throw new FormatException($"PersistentKeepalive '{keepalive}' is not a number.");
                }
                peers.Add(new WgQuickPeer(publicKey, current.Single("Endpoint"), current.List("AllowedIPs"), keepaliveSeconds));
            }
        }

        var lineNumber = 0;
        foreach (var rawLine in text.Split('\n'))
        {
            lineNumber++;
            var hash = rawLine.IndexOf('#', StringComparison.Ordinal);
            var line = (hash >= 0 ? rawLine[..hash] : rawLine).Trim();
            if (line.Length == 0)
            {
                continue;
            }
            if (line.StartsWith('[') && line.EndsWith(']'))
            {
                Flush();
                var name = line[1..^1].Trim();
                current = name.ToUpperInvariant() switch
                {
                    "INTERFACE" => new Section(true, lineNumber),
                    "PEER" => new Section(false, lineNumber),
                    _ => throw new FormatException($"Unknown section [{name}] at line {lineNumber}."),
                };
                continue;
            }
            // Keys are base64 and end with '=', so split at the first '=' only.
            var eq = line.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                throw new FormatException($"Line {lineNumber} is not 'Key = Value': '{line}'.");
            }
            if (current is null)
            {
                throw new FormatException($"Line {lineNumber} is outside any section.");
            }
            current.Add(line[..eq].Trim(), line[(eq + 1)..].Trim());
        }
        Flush();
        return new WgQuickConfig(iface ?? throw new FormatException("No [Interface] section."), peers);
    }

    private sealed class Section(bool isInterface, int line)
    {
        private readonly Dictionary<string, List<string>> _values = new(StringComparer.OrdinalIgnoreCase);

        public bool IsInterface { get; } = isInterface;

        public int Line { get; } = line;

        public void Add(string key, string value)
        {
            if (!_values.TryGetValue(key, out var list))
            {
                _values[key] = list = [];
            }
            list.Add(value);
        }

        public string? Single(string key) => _values.TryGetValue(key, out var list)
            ? list.Count == 1 ? list[0] : throw new FormatException($"'{key}' appears {list.Count} times in the section at line {Line}.")
            : null;

        /// <summary>wg-quick allows both repeated keys and comma-separated values for lists.</summary>
        public List<string> List(string key) => _values.TryGetValue(key, out var list)
            ? list.SelectMany(v => v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToList()
            : [];
    }
}
