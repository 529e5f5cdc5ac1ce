using Vpn.Core.Nat;
using Vpn.Core.WireGuard;

namespace Vpn.Core.Dataplane;

/// <summary>For development and API tests: remembers peers in memory, programs nothing, needs no root.</summary>
public sealed class NoopDataplane : IDataplane
{
    private readonly Lock _gate = new();
    private readonly Dictionary<WireGuardKey, IReadOnlyList<IPNetwork>> _peers = [];
    private bool _initialized = true;

    public string Mode => "noop";

    public string NatDriver => "none";

    public IReadOnlyList<string> NativeFeatures => [];

    public Task InitializeAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            _initialized = true;
        }
        return Task.CompletedTask;
    }

    public Task AddPeerAsync(WireGuardKey publicKey, IPAddress clientAddress, IPAddress clientAddress6, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            _peers[publicKey] = [new IPNetwork(clientAddress, 32), new IPNetwork(clientAddress6, 128)];
        }
        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<FirewallCounter>> ReadFilterCountersAsync(CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyList<FirewallCounter>>([]);

    public Task RemovePeerAsync(WireGuardKey publicKey, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            _peers.Remove(publicKey);
        }
        return Task.CompletedTask;
    }

    /// <summary>Applies the UAPI meaning of each change (remove, update_only, replace_allowed_ips, allowed IPs added).</summary>
    public Task ApplyPeerChangesAsync(IReadOnlyList<PeerConfig> changes, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(changes);
        lock (_gate)
        {
            foreach (var change in changes)
            {
                if (change.Remove)
                {
                    _peers.Remove(change.PublicKey);
                    continue;
                }
                var exists = _peers.TryGetValue(change.PublicKey, out var current);
                if (!exists && change.UpdateOnly)
                {
                    continue;
                }
                IReadOnlyList<IPNetwork> kept = change.ReplaceAllowedIps || current is null ? [] : current;
                _peers[change.PublicKey] = [.. kept, .. (change.AllowedIps ?? []).Where(n => !kept.Contains(n))];
            }
        }
        return Task.CompletedTask;
    }

    public Task<DeviceSnapshot> ReadAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return Task.FromResult(new DeviceSnapshot(!_initialized,
                [.. _peers.Select(p => new PeerState { PublicKey = p.Key, AllowedIps = p.Value, ProtocolVersion = 1 })]));
        }
    }

    public Task ProbeAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Peers the device holds right now (tests compare it with what the registry and the database say).</summary>
    public Task<int> CountPeersAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            return Task.FromResult(_peers.Count);
        }
    }

    public bool HasPeer(WireGuardKey publicKey)
    {
        lock (_gate)
        {
            return _peers.ContainsKey(publicKey);
        }
    }

    /// <summary>Forgets every peer and the configuration, as a recreated device would (e.g. wireguard-go restarted).</summary>
    public void Reset()
    {
        lock (_gate)
        {
            _peers.Clear();
            _initialized = false;
        }
    }
}
