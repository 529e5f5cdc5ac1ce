using Vpn.Domain.WireGuard;

namespace Vpn.Domain.Reconciliation;

/// <summary>A peer as the device holds it: its public key and its allowed IPs in any order.</summary>
public readonly record struct LivePeer(WireGuardKey PublicKey, IReadOnlyList<IPNetwork> AllowedIps);

/// <summary>
/// The minimal change that turns the live peers into the desired ones. A peer whose allowed IPs are already exactly its
/// desired /32 (and /128, when the node pairs an IPv6 address with each IPv4 one) appears nowhere, so its tunnel is
/// never touched.
/// </summary>
/// <param name="Adds">Desired peers the device lacks.</param>
/// <param name="Removes">Live peers that are not desired.</param>
/// <param name="Corrections">Peers present on both sides whose allowed IPs differ from exactly the desired /32.</param>
/// <param name="Unchanged">How many live peers already match.</param>
public sealed record PeerDiff(
    IReadOnlyList<DesiredPeer> Adds,
    IReadOnlyList<WireGuardKey> Removes,
    IReadOnlyList<DesiredPeer> Corrections,
    int Unchanged)
{
    public bool IsEmpty => Adds.Count == 0 && Removes.Count == 0 && Corrections.Count == 0;

    public int ChangeCount => Adds.Count + Removes.Count + Corrections.Count;

    /// <summary>
    /// Compares in O(desired + live). Output order follows the input order (live order for removes and corrections,
    /// desired order for adds). A key listed twice in <paramref name="live"/> is judged once, by its first listing.
    /// </summary>
    public static PeerDiff Compute(DesiredPeerSet desired, IEnumerable<LivePeer> live)
    {
        ArgumentNullException.ThrowIfNull(desired);
        return Compute(desired.Peers, live);
    }

    /// <summary>
    /// As <see cref="Compute(DesiredPeerSet, IEnumerable{LivePeer})"/> over a map its owner keeps valid (unique IPv4
    /// addresses), so a caller that maintains its desired state incrementally need not validate it again on every pass.
    /// </summary>
    public static PeerDiff Compute(IReadOnlyDictionary<WireGuardKey, IPAddress> desired, IEnumerable<LivePeer> live) =>
        Compute(desired, live, null);

    /// <param name="desired">IPv4 address by key, kept valid by its owner.</param>
    /// <param name="live">The device's peers.</param>
    /// <param name="ipv6For">The IPv6 address paired with an IPv4 address (a node's <see cref="Ipv6ClientNetwork"/>); null for IPv4 only.</param>
    public static PeerDiff Compute(IReadOnlyDictionary<WireGuardKey, IPAddress> desired, IEnumerable<LivePeer> live,
        Func<IPAddress, IPAddress>? ipv6For)
    {
        ArgumentNullException.ThrowIfNull(desired);
        ArgumentNullException.ThrowIfNull(live);
        var removes = new List<WireGuardKey>();
        var corrections = new List<DesiredPeer>();
        var seen = new HashSet<WireGuardKey>(live.TryGetNonEnumeratedCount(out var liveCount) ? liveCount : desired.Count);
        var unchanged = 0;
        foreach (var peer in live)
        {
            if (!seen.Add(peer.PublicKey))
            {
                continue;
            }
            if (!desired.TryGetValue(peer.PublicKey, out var address))
            {
                removes.Add(peer.PublicKey);
                continue;
            }
            var address6 = ipv6For?.Invoke(address);
            if (IsExactly(peer.AllowedIps, address, address6))
            {
                unchanged++;
            }
            else
            {
                corrections.Add(new DesiredPeer(peer.PublicKey, address, address6));
            }
        }
        var adds = new List<DesiredPeer>();
        if (seen.Count - removes.Count < desired.Count)
        {
            foreach (var (key, address) in desired)
            {
                if (!seen.Contains(key))
                {
                    adds.Add(new DesiredPeer(key, address, ipv6For?.Invoke(address)));
                }
            }
        }
        return new PeerDiff(adds, removes, corrections, unchanged);
    }

    /// <summary>True when <paramref name="allowedIps"/> is the single network <paramref name="address"/>/32.</summary>
    public static bool IsExactly(IReadOnlyList<IPNetwork> allowedIps, IPAddress address) => IsExactly(allowedIps, address, null);

    /// <summary>
    /// True when <paramref name="allowedIps"/> is exactly <paramref name="address"/>/32 plus, when given,
    /// <paramref name="address6"/>/128, in either order.
    /// </summary>
    public static bool IsExactly(IReadOnlyList<IPNetwork> allowedIps, IPAddress address, IPAddress? address6)
    {
        ArgumentNullException.ThrowIfNull(allowedIps);
        ArgumentNullException.ThrowIfNull(address);
        if (address6 is null)
        {
            return allowedIps.Count == 1 && IsHost(allowedIps[0], address, 32);
        }
        return allowedIps.Count == 2
            && ((IsHost(allowedIps[0], address, 32) && IsHost(allowedIps[1], address6, 128))
                || (IsHost(allowedIps[1], address, 32) && IsHost(allowedIps[0], address6, 128)));
    }

    private static bool IsHost(IPNetwork network, IPAddress address, int bits) =>
        network.PrefixLength == bits && network.BaseAddress.AddressFamily == address.AddressFamily && network.BaseAddress.Equals(address);
}
