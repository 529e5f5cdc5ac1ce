namespace Vpn.Domain.Addressing;

/// <summary>
/// Client tunnel addresses of one node. The network address, the gateway (first host, the node's own
/// tunnel address) and the broadcast address are never handed out. Not thread-safe: callers serialize.
/// </summary>
/// <remarks>
/// Allocation prefers addresses never handed out (ascending), then the address released longest ago, so a released
/// address rests as long as the pool allows. A released address is also quarantined: it is not handed out again until
/// <see cref="Quarantine"/> has passed, so a new client never receives traffic meant for the previous holder while
/// WireGuard session keys (at most 180 s) may still be in use. Both allocation and release are amortized O(1): a
/// cursor over never-used addresses plus a FIFO of released addresses in release order.
/// </remarks>
public sealed class Ipv4Pool
{
    private readonly HashSet<uint> _allocated = [];

    // Released and not yet handed out again, with the number of its latest release. The FIFO may hold stale entries
    // (the address was reserved again, or released again later); an entry is live only while its number matches.
    private readonly Dictionary<uint, Released> _released = [];
    private readonly Queue<Released> _releaseOrder = new();
    private readonly TimeProvider _time;
    private readonly long _quarantineTicks;

    // Next never-used address; past LastClient once every address has been handed out or reserved at least once.
    private long _fresh;
    private long _releases;

    /// <summary>A pool without quarantine.</summary>
    public Ipv4Pool(Ipv4Network network)
        : this(network, TimeSpan.Zero, TimeProvider.System)
    {
    }

    /// <param name="network">At least a /29.</param>
    /// <param name="quarantine">How long a released address rests before it can be handed out again; zero for none.</param>
    /// <param name="time">Clock for the quarantine (its monotonic timestamp is used).</param>
    public Ipv4Pool(Ipv4Network network, TimeSpan quarantine, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(network);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentOutOfRangeException.ThrowIfLessThan(quarantine, TimeSpan.Zero);
        if (network.PrefixLength > 29)
        {
            throw new ArgumentException("A client pool needs at least a /29 network.", nameof(network));
        }
        Network = network;
        Quarantine = quarantine;
        _time = time;
        _quarantineTicks = (long)Math.Ceiling(quarantine.TotalSeconds * time.TimestampFrequency);
        _fresh = FirstClient;
    }

    public Ipv4Network Network { get; }

    /// <summary>How long a released address waits before reuse.</summary>
    public TimeSpan Quarantine { get; }

    /// <summary>The node's own address inside the tunnel network; also the resolver handed to clients.</summary>
    public IPAddress Gateway => Ipv4Network.ToAddress(Network.Base + 1);

    /// <summary>How many client addresses the pool can hold in total.</summary>
    public long Capacity => Network.Size - 3;

    public int AllocatedCount => _allocated.Count;

    private uint FirstClient => Network.Base + 2;

    private uint LastClient => Network.Broadcast - 1;

    /// <summary>
    /// A never-used address if any is left, else the address released longest ago once its quarantine is over.
    /// False when every free address is still quarantined (or none is free).
    /// </summary>
    public bool TryAllocate(out IPAddress address)
    {
        address = IPAddress.None;
        if (_allocated.Count >= Capacity)
        {
            return false;
        }
        while (_fresh <= LastClient)
        {
            var candidate = (uint)_fresh++;
            // Reserved addresses are skipped for good; released ones wait in the FIFO.
            if (!_allocated.Contains(candidate) && !_released.ContainsKey(candidate))
            {
                return Take(candidate, out address);
            }
        }
        var now = _time.GetTimestamp();
        while (_releaseOrder.TryPeek(out var entry))
        {
            if (!IsLive(entry))
            {
                _releaseOrder.Dequeue();
                continue;
            }
            if (now - entry.ReleasedAt < _quarantineTicks)
            {
                // Entries are in release order: everything behind this one was released later.
                return false;
            }
            _releaseOrder.Dequeue();
            _released.Remove(entry.Address);
            return Take(entry.Address, out address);
        }
        return false;
    }

    /// <summary>
    /// Marks a specific address as held (e.g. when rebuilding state from the database, which is the truth); false when it
    /// is reserved, outside the pool or taken. A quarantined address can be reserved: the quarantine only guards allocation.
    /// </summary>
    public bool TryReserve(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        var value = Ipv4Network.ToUInt32(address);
        if (!IsClientAddress(value) || !_allocated.Add(value))
        {
            return false;
        }
        _released.Remove(value);
        return true;
    }

    /// <summary>Returns a held address to the pool, where it starts its quarantine; false when it was not held.</summary>
    public bool Release(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        var value = Ipv4Network.ToUInt32(address);
        if (!_allocated.Remove(value))
        {
            return false;
        }
        Rest(value);
        return true;
    }

    /// <summary>
    /// Starts (or restarts) the quarantine of a free client address that was in use outside this pool's knowledge, e.g.
    /// a stale peer found on the device. False when the address is held, reserved or outside the pool.
    /// </summary>
    public bool QuarantineFree(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        var value = Ipv4Network.ToUInt32(address);
        if (!IsClientAddress(value) || _allocated.Contains(value))
        {
            return false;
        }
        Rest(value);
        return true;
    }

    public bool IsAllocated(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        return _allocated.Contains(Ipv4Network.ToUInt32(address));
    }

    /// <summary>True while a free address waits out its quarantine.</summary>
    public bool IsQuarantined(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        return _released.TryGetValue(Ipv4Network.ToUInt32(address), out var release)
            && _time.GetTimestamp() - release.ReleasedAt < _quarantineTicks;
    }

    private bool Take(uint value, out IPAddress address)
    {
        _allocated.Add(value);
        address = Ipv4Network.ToAddress(value);
        return true;
    }

    private void Rest(uint value)
    {
        var release = new Released(value, ++_releases, _time.GetTimestamp());
        _released[value] = release;
        _releaseOrder.Enqueue(release);
        // Drop stale entries once they dominate, so reserve/release churn cannot grow the FIFO without bound.
        if (_releaseOrder.Count > 64 + (2 * _released.Count))
        {
            var live = _releaseOrder.Where(IsLive).ToArray();
            _releaseOrder.Clear();
            foreach (var entry in live)
            {
                _releaseOrder.Enqueue(entry);
            }
        }
    }

    private bool IsLive(Released entry) => _released.TryGetValue(entry.Address, out var latest) && latest.Number == entry.Number;

    /// <param name="Number">Orders releases; tells the latest release of an address from stale ones.</param>
    /// <param name="ReleasedAt">Monotonic timestamp of the release.</param>
    private readonly record struct Released(uint Address, long Number, long ReleasedAt);

    private bool IsClientAddress(uint value) => Network.Contains(value) && value >= FirstClient && value <= LastClient;
}
