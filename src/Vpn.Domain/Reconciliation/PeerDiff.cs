using System.Net;
using System.Net.Sockets;
using Vpn.Domain.WireGuard;

namespace Vpn.Domain.Reconciliation;

/// <summary>A peer as the device holds it: its public key and its allowed IPs in any order.</summary>
public readonly record struct LivePeer(WireGuardKey PublicKey, IReadOnlyList<IPNetwork> AllowedIps);

/// <summary>
/// The minimal change that turns the live peers into the desired ones. A peer whose allowed IPs are already exactly its
/// desired /32 appears nowhere, so its tunnel is never touched.
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
    public static PeerDiff Compute(IReadOnlyDictionary<WireGuardKey, IPAddress> desired, IEnumerable<LivePeer> live)
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
            }
            else if (IsExactly(peer.AllowedIps, address))
            {
                unchanged++;
            }
            else
            {
                corrections.Add(new DesiredPeer(peer.PublicKey, address));
            }
        }
        var adds = new List<DesiredPeer>();
        if (seen.Count - removes.Count < desired.Count)
        {
            foreach (var (key, address) in desired)
            {
                if (!seen.Contains(key))
                {
                    adds.Add(new DesiredPeer(key, address));
                }
            }
        }
        return new PeerDiff(adds, removes, corrections, unchanged);
    }

    /// <summary>True when <paramref name="allowedIps"/> is the single network <paramref name="address"/>/32.</summary>
    public static bool IsExactly(IReadOnlyList<IPNetwork> allowedIps, IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(allowedIps);
        ArgumentNullException.ThrowIfNull(address);
        return allowedIps.Count == 1
            && allowedIps[0].PrefixLength == 32
            && allowedIps[0].BaseAddress.AddressFamily == AddressFamily.InterNetwork
            && allowedIps[0].BaseAddress.Equals(address);
    }
}
