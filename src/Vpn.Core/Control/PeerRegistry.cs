using System.Net;
using Vpn.Core.Configuration;
using Vpn.Core.Dataplane;
using Vpn.Domain.Addressing;
using Vpn.Domain.WireGuard;

namespace Vpn.Core.Control;

/// <summary>A session's peer on this node.</summary>
public sealed record PeerLease(Guid SessionId, WireGuardKey PublicKey, IPAddress Address);

public enum ConnectOutcome
{
    Connected,
    PoolExhausted,
    /// <summary>The session id is already connected with another device key.</summary>
    SessionKeyMismatch,
    /// <summary>The device key is already the peer of another session on this node.</summary>
    KeyInUse,
}

/// <summary>
/// Sessions on this node: which peer and which client address each holds. Address bookkeeping is serialized here;
/// the dataplane call happens outside the lock so concurrent connects batch into one UAPI write.
/// </summary>
public sealed class PeerRegistry(CoreOptions options, IDataplane dataplane)
{
    private readonly Lock _gate = new();
    private readonly Ipv4Pool _pool = new(options.ClientPool);
    private readonly Dictionary<Guid, PeerLease> _bySession = [];
    private readonly Dictionary<WireGuardKey, Guid> _byKey = [];

    public IPAddress Gateway => _pool.Gateway;

    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _bySession.Count;
            }
        }
    }

    public async Task<(ConnectOutcome Outcome, PeerLease? Lease)> ConnectAsync(Guid sessionId, WireGuardKey publicKey, CancellationToken cancellationToken)
    {
        PeerLease lease;
        lock (_gate)
        {
            if (_bySession.TryGetValue(sessionId, out var existing))
            {
                if (existing.PublicKey != publicKey)
                {
                    return (ConnectOutcome.SessionKeyMismatch, null);
                }
                lease = existing;
            }
            else
            {
                if (_byKey.ContainsKey(publicKey))
                {
                    return (ConnectOutcome.KeyInUse, null);
                }
                if (!_pool.TryAllocate(out var address))
                {
                    return (ConnectOutcome.PoolExhausted, null);
                }
                lease = new PeerLease(sessionId, publicKey, address);
                _bySession[sessionId] = lease;
                _byKey[publicKey] = sessionId;
            }
        }
        try
        {
            // Re-applying an existing lease is harmless and repairs a peer lost by the device.
            await dataplane.AddPeerAsync(publicKey, lease.Address, cancellationToken);
        }
        catch
        {
            Forget(lease);
            throw;
        }
        return (ConnectOutcome.Connected, lease);
    }

    /// <summary>Removes the session's peer; null when the session was not on this node.</summary>
    public async Task<PeerLease?> DisconnectAsync(Guid sessionId, CancellationToken cancellationToken)
    {
        PeerLease? lease;
        lock (_gate)
        {
            _bySession.TryGetValue(sessionId, out lease);
        }
        if (lease is null)
        {
            return null;
        }
        await dataplane.RemovePeerAsync(lease.PublicKey, cancellationToken);
        Forget(lease);
        return lease;
    }

    public PeerLease? Find(Guid sessionId)
    {
        lock (_gate)
        {
            return _bySession.GetValueOrDefault(sessionId);
        }
    }

    private void Forget(PeerLease lease)
    {
        lock (_gate)
        {
            if (_bySession.Remove(lease.SessionId))
            {
                _byKey.Remove(lease.PublicKey);
                _pool.Release(lease.Address);
            }
        }
    }
}
