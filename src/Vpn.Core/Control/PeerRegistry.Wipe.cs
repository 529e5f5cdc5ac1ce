using Vpn.Core.Reconciliation;
using Vpn.Core.WireGuard;

namespace Vpn.Core.Control;

// The registry's side of the idle wipe (IdlePeerWiper): which of the idle peers it may remove and re-add, decided and
// queued under the same lock as Connect, Disconnect and Synchronize, so the wipe takes its place in their order.
public sealed partial class PeerRegistry
{
    /// <summary>
    /// Queues one change that removes and re-adds each of the <paramref name="idle"/> peers (as reconciliation just read
    /// them) that is still a lease with no Connect/Disconnect change queued or made since the device was read. The peer
    /// comes back with its lease's /32 and /128 and whatever preshared key and keepalive the device reported, without an
    /// endpoint. Call between <see cref="BeginDeviceRead"/> and <see cref="EndDeviceRead"/> of the read the peers come from.
    /// </summary>
    internal WipePlan WipeEndpoints(IReadOnlyList<PeerState> idle)
    {
        ArgumentNullException.ThrowIfNull(idle);
        lock (_gate)
        {
            if (_touchedSinceRead is null)
            {
                throw new InvalidOperationException("The idle wipe needs the device read it decides from to be in progress.");
            }
            var unsettled = Unsettled();
            var keys = new List<WireGuardKey>();
            var changes = new List<PeerConfig>(idle.Count * 2);
            foreach (var peer in idle)
            {
                // A key changed since the read may be a new peer (or gone): what the read said of it is stale.
                if (unsettled.Contains(peer.PublicKey) || !_sessionByKey.TryGetValue(peer.PublicKey, out var sessionId))
                {
                    continue;
                }
                keys.Add(peer.PublicKey);
                // Each pair stays together: a split into several device writes (even sizes) never separates them.
                changes.AddRange(IdlePeerWiper.RemoveAndReAdd(_bySession[sessionId].Lease, peer));
            }
            if (keys.Count == 0)
            {
                return WipePlan.None;
            }
            Task applied;
            try
            {
                applied = _dataplane.ApplyPeerChangesAsync(changes, CancellationToken.None);
            }
            catch (Exception e)
            {
                applied = Task.FromException(e);
            }
            return new WipePlan(keys, applied);
        }
    }
}

/// <summary>What one <see cref="PeerRegistry.WipeEndpoints"/> queued.</summary>
/// <param name="Keys">The peers removed and re-added, in the order of the change.</param>
/// <param name="Applied">Completes when the device has applied the change.</param>
internal sealed record WipePlan(IReadOnlyList<WireGuardKey> Keys, Task Applied)
{
    public static readonly WipePlan None = new([], Task.CompletedTask);
}
