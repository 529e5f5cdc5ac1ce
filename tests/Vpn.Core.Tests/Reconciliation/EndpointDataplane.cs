namespace Vpn.Core.Tests.Reconciliation;

/// <summary>
/// The in-memory dataplane plus what a device learns from its clients: an endpoint and a last handshake per peer, given
/// by the test (<see cref="Learn"/>) and lost, as on wireguard-go, when the peer is removed. Every write of a change is recorded.
/// </summary>
public sealed class EndpointDataplane : IDataplane
{
    private readonly NoopDataplane _inner = new();
    private readonly Lock _gate = new();
    private readonly Dictionary<WireGuardKey, (IPEndPoint Endpoint, DateTimeOffset? Handshake)> _learnt = [];
    private readonly List<IReadOnlyList<PeerConfig>> _writes = [];

    /// <summary>Runs after the device was read (to race a Connect with the pass).</summary>
    public Func<Task>? AfterRead { get; set; }

    /// <summary>
    /// Decides a write's fate: null lets it through; otherwise the write fails with the exception after the device
    /// applied only its first <c>Applied</c> changes (a UAPI set stops at its first failing line).
    /// </summary>
    public Func<IReadOnlyList<PeerConfig>, (int Applied, Exception Failure)?>? Fail { get; set; }

    public IReadOnlyList<IReadOnlyList<PeerConfig>> Writes
    {
        get
        {
            lock (_gate)
            {
                return [.. _writes];
            }
        }
    }

    public string Mode => "noop";

    public string NatDriver => "none";

    public IReadOnlyList<string> NativeFeatures => [];

    /// <summary>The device took a packet of the peer from <paramref name="endpoint"/>; <paramref name="handshake"/> null: none completed.</summary>
    public void Learn(WireGuardKey key, string endpoint, DateTimeOffset? handshake)
    {
        lock (_gate)
        {
            _learnt[key] = (IPEndPoint.Parse(endpoint), handshake);
        }
    }

    public IPEndPoint? EndpointOf(WireGuardKey key)
    {
        lock (_gate)
        {
            return _learnt.TryGetValue(key, out var learnt) ? learnt.Endpoint : null;
        }
    }

    public Task InitializeAsync(CancellationToken cancellationToken) => _inner.InitializeAsync(cancellationToken);

    public Task AddPeerAsync(WireGuardKey publicKey, IPAddress clientAddress, IPAddress clientAddress6, CancellationToken cancellationToken) =>
        _inner.AddPeerAsync(publicKey, clientAddress, clientAddress6, cancellationToken);

    public Task RemovePeerAsync(WireGuardKey publicKey, CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            _learnt.Remove(publicKey);
        }
        return _inner.RemovePeerAsync(publicKey, cancellationToken);
    }

    public async Task ApplyPeerChangesAsync(IReadOnlyList<PeerConfig> changes, CancellationToken cancellationToken)
    {
        if (changes.Count > 0)
        {
            lock (_gate)
            {
                _writes.Add(changes);
            }
        }
        var failure = Fail?.Invoke(changes);
        var applied = failure is { } f ? changes.Take(f.Applied).ToList() : changes;
        lock (_gate)
        {
            foreach (var change in applied.Where(c => c.Remove))
            {
                _learnt.Remove(change.PublicKey);
            }
        }
        await _inner.ApplyPeerChangesAsync(applied, cancellationToken);
        if (failure is { } thrown)
        {
            throw thrown.Failure;
        }
    }

    public async Task<DeviceSnapshot> ReadAsync(CancellationToken cancellationToken)
    {
        var snapshot = await _inner.ReadAsync(cancellationToken);
        List<PeerState> peers;
        lock (_gate)
        {
            peers = [.. snapshot.Peers.Select(p => _learnt.TryGetValue(p.PublicKey, out var learnt)
                ? p with { Endpoint = learnt.Endpoint, LastHandshake = learnt.Handshake }
                : p)];
        }
        if (AfterRead is { } hook)
        {
            await hook();
        }
        return snapshot with { Peers = peers };
    }

    public Task ProbeAsync(CancellationToken cancellationToken) => _inner.ProbeAsync(cancellationToken);

    public Task<IReadOnlyList<FirewallCounter>> ReadFilterCountersAsync(CancellationToken cancellationToken) => _inner.ReadFilterCountersAsync(cancellationToken);
}
