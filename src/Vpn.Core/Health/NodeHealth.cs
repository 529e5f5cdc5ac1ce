using Vpn.Core.Control;
using Vpn.Core.Dataplane;
using Vpn.Core.Dns;

namespace Vpn.Core.Health;

/// <summary>
/// Whether entry should pick this node for new sessions, as the heartbeat tells it and GetNodeStatus reports it: the
/// device answers, the leases reflect the database (before the first sync Connect is refused, so selection must skip
/// us) and, when it is checked, the resolver answers on the gateway addresses (else clients are connected without
/// names). The active peers are the registry's leases: one per session on this node.
/// </summary>
public sealed class NodeHealth(PeerRegistry registry, IDataplane dataplane, ResolverHealth resolver)
{
    public async Task<NodeHealthReading> ReadAsync(CancellationToken cancellationToken)
    {
        var deviceAnswers = true;
        try
        {
            await dataplane.ProbeAsync(cancellationToken);
        }
        catch (IOException)
        {
            deviceAnswers = false;
        }
        return new NodeHealthReading(deviceAnswers && registry.IsSynced && resolver.Healthy, registry.Count);
    }
}

/// <param name="Healthy">See <see cref="NodeHealth"/>.</param>
/// <param name="ActivePeers">Sessions holding a peer on this node.</param>
public readonly record struct NodeHealthReading(bool Healthy, int ActivePeers);
