using Vpn.Domain.Addressing;
using Vpn.Domain.WireGuard;

namespace Vpn.Domain.Reconciliation;

/// <summary>
/// A peer the node's device must hold: the client's public key with exactly its IPv4 /32 and, when
/// <paramref name="Address6"/> is set, its IPv6 /128 as allowed IPs.
/// </summary>
public readonly record struct DesiredPeer(WireGuardKey PublicKey, IPAddress Address, IPAddress? Address6 = null);

/// <summary>
/// A validated desired state: unique non-zero keys, each with a unique IPv4 client address (and IPv6 address when
/// given: unique too, and when a client network is given, the one paired with the IPv4 address). Built only through
/// <see cref="TryCreate"/>, which checks the whole set and rejects it as a whole (a set with one bad entry says
/// nothing trustworthy about the rest, so nothing of it is applied).
/// </summary>
public sealed class DesiredPeerSet
{
    private readonly Dictionary<WireGuardKey, IPAddress> _byKey;
    private readonly HashSet<uint> _addresses;

    private DesiredPeerSet(Dictionary<WireGuardKey, IPAddress> byKey, HashSet<uint> addresses)
    {
        _byKey = byKey;
        _addresses = addresses;
    }

    public static DesiredPeerSet Empty { get; } = new([], []);

    /// <summary>Client address by public key.</summary>
    public IReadOnlyDictionary<WireGuardKey, IPAddress> Peers => _byKey;

    public int Count => _byKey.Count;

    /// <summary>True when some peer of the set has <paramref name="address"/>.</summary>
    public bool ContainsAddress(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        return address.AddressFamily == AddressFamily.InterNetwork && _addresses.Contains(Ipv4Network.ToUInt32(address));
    }

    /// <param name="peers">The candidate set.</param>
    /// <param name="clientPool">When given, every address must be a client address of it (not network, gateway or broadcast).</param>
    /// <param name="set">The validated set; null when any problem was found.</param>
    /// <param name="problems">Every problem found (keys by their public base64, which is not secret); empty on success.</param>
    public static bool TryCreate(IEnumerable<DesiredPeer> peers, Ipv4Network? clientPool,
        [NotNullWhen(true)] out DesiredPeerSet? set, out IReadOnlyList<string> problems) =>
        TryCreate(peers, clientPool, null, out set, out problems);

    /// <param name="peers">The candidate set.</param>
    /// <param name="clientPool">When given, every address must be a client address of it (not network, gateway or broadcast).</param>
    /// <param name="clientNetwork6">When given, every IPv6 address must be the one it pairs with the peer's IPv4 address.</param>
    /// <param name="set">The validated set; null when any problem was found.</param>
    /// <param name="problems">Every problem found; empty on success.</param>
    public static bool TryCreate(IEnumerable<DesiredPeer> peers, Ipv4Network? clientPool, Ipv6ClientNetwork? clientNetwork6,
        [NotNullWhen(true)] out DesiredPeerSet? set, out IReadOnlyList<string> problems)
    {
        ArgumentNullException.ThrowIfNull(peers);
        var found = new List<string>();
        // Sized up front: a node's set may hold 65k peers, and regrowing would allocate every table several times.
        var capacity = peers.TryGetNonEnumeratedCount(out var count) ? count : 0;
        var byKey = new Dictionary<WireGuardKey, IPAddress>(capacity);
        var addresses = new HashSet<uint>(capacity);
        var addresses6 = new HashSet<IPAddress>();
        foreach (var peer in peers)
        {
            if (peer.PublicKey.IsZero)
            {
                found.Add("a peer has the zero public key");
                continue;
            }
            if (peer.Address is null || peer.Address.AddressFamily != AddressFamily.InterNetwork)
            {
                found.Add($"peer {peer.PublicKey} has no IPv4 address");
                continue;
            }
            var value = Ipv4Network.ToUInt32(peer.Address);
            if (clientPool is not null && !IsClientAddress(clientPool, value))
            {
                found.Add($"peer {peer.PublicKey} has {peer.Address}, not a client address of {clientPool}");
            }
            if (peer.Address6 is { } v6)
            {
                if (v6.AddressFamily != AddressFamily.InterNetworkV6)
                {
                    found.Add($"peer {peer.PublicKey} has {v6} as its IPv6 address");
                }
                else if (clientNetwork6 is not null && clientNetwork6.Pool4.Contains(value) && !clientNetwork6.AddressFor(peer.Address).Equals(v6))
                {
                    found.Add($"peer {peer.PublicKey} has {v6}, not the address {clientNetwork6} pairs with {peer.Address}");
                }
                else if (!addresses6.Add(v6))
                {
                    found.Add($"address {v6} is given to more than one peer");
                }
            }
            if (!byKey.TryAdd(peer.PublicKey, peer.Address))
            {
                found.Add($"public key {peer.PublicKey} appears more than once");
            }
            if (!addresses.Add(value))
            {
                found.Add($"address {peer.Address} is given to more than one peer");
            }
        }
        problems = found;
        set = found.Count == 0 ? new DesiredPeerSet(byKey, addresses) : null;
        return set is not null;
    }

    private static bool IsClientAddress(Ipv4Network pool, uint value) =>
        pool.Contains(value) && value != pool.Base && value != pool.Base + 1 && value != pool.Broadcast;
}
