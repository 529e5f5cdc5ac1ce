using System.Net;

namespace Vpn.Domain.Addressing;

/// <summary>
/// Client tunnel addresses of one node. The network address, the gateway (first host, the node's own
/// tunnel address) and the broadcast address are never handed out. Not thread-safe: callers serialize.
/// </summary>
public sealed class Ipv4Pool
{
    private readonly HashSet<uint> _allocated = [];
    private uint _next;

    public Ipv4Pool(Ipv4Network network)
    {
        ArgumentNullException.ThrowIfNull(network);
        if (network.PrefixLength > 29)
        {
            throw new ArgumentException("A client pool needs at least a /29 network.", nameof(network));
        }
        Network = network;
        _next = FirstClient;
    }

    public Ipv4Network Network { get; }

    /// <summary>The node's own address inside the tunnel network; also the resolver handed to clients.</summary>
    public IPAddress Gateway => Ipv4Network.ToAddress(Network.Base + 1);

    /// <summary>How many client addresses the pool can hold in total.</summary>
    public long Capacity => Network.Size - 3;

    public int AllocatedCount => _allocated.Count;

    private uint FirstClient => Network.Base + 2;

    private uint LastClient => Network.Broadcast - 1;

    /// <summary>Next free address, scanning round-robin from the last allocation so released addresses rest as long as possible.</summary>
    public bool TryAllocate(out IPAddress address)
    {
        address = IPAddress.None;
        if (_allocated.Count >= Capacity)
        {
            return false;
        }
        var candidate = _next;
        while (_allocated.Contains(candidate))
        {
            candidate = candidate == LastClient ? FirstClient : candidate + 1;
        }
        _allocated.Add(candidate);
        _next = candidate == LastClient ? FirstClient : candidate + 1;
        address = Ipv4Network.ToAddress(candidate);
        return true;
    }

    /// <summary>Marks a specific address as held (e.g. when rebuilding state); false when it is reserved, outside the pool or taken.</summary>
    public bool TryReserve(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        var value = Ipv4Network.ToUInt32(address);
        return IsClientAddress(value) && _allocated.Add(value);
    }

    public bool Release(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        return _allocated.Remove(Ipv4Network.ToUInt32(address));
    }

    public bool IsAllocated(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        return _allocated.Contains(Ipv4Network.ToUInt32(address));
    }

    private bool IsClientAddress(uint value) => Network.Contains(value) && value >= FirstClient && value <= LastClient;
}
