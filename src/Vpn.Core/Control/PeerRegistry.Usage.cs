using Vpn.Core.WireGuard;

namespace Vpn.Core.Control;

public sealed partial class PeerRegistry
{
    /// <summary>Each device peer's counters with the session its key belongs to now; peers of no session are left out.</summary>
    public IReadOnlyList<(WireGuardKey Key, Guid SessionId, ulong Rx, ulong Tx)> SessionCounters(IReadOnlyList<PeerState> peers)
    {
        ArgumentNullException.ThrowIfNull(peers);
        var counters = new List<(WireGuardKey, Guid, ulong, ulong)>(peers.Count);
        lock (_gate)
        {
            foreach (var peer in peers)
            {
                if (_sessionByKey.TryGetValue(peer.PublicKey, out var sessionId))
                {
                    counters.Add((peer.PublicKey, sessionId, peer.ReceiveBytes, peer.TransmitBytes));
                }
            }
        }
        return counters;
    }
}
