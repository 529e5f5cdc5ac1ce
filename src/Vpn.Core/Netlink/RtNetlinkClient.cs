namespace Vpn.Core.Netlink;

/// <summary>
/// A minimal synchronous rtnetlink (NETLINK_ROUTE) client for configuring the tunnel interface.
/// Every request asks for an acknowledgement and waits for the NLMSG_ERROR carrying its sequence
/// number; a negative error becomes a <see cref="NetlinkException"/>. Calls are serialised.
/// </summary>
public sealed class RtNetlinkClient : IDisposable
{
    private static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(5);

    private readonly NetlinkSocket _socket;
    private readonly TimeSpan _timeout;
    private readonly Lock _lock = new();
    private uint _sequence;

    private RtNetlinkClient(NetlinkSocket socket, TimeSpan timeout)
    {
        _socket = socket;
        _timeout = timeout;
        _sequence = (uint)Environment.TickCount;
    }

    /// <summary>Opens a socket in the calling thread's network namespace (normally the process's).</summary>
    /// <param name="timeout">How long to wait for each kernel reply; 5 seconds when null.</param>
    public static RtNetlinkClient Open(TimeSpan? timeout = null) => new(NetlinkSocket.Open(LibC.NetlinkRoute), timeout ?? DefaultTimeout);

    /// <summary>Opens a socket inside the namespace at <paramref name="netnsPath"/>; the process stays where it is.</summary>
    public static RtNetlinkClient OpenInNamespace(string netnsPath, TimeSpan? timeout = null) =>
        NetworkNamespaceThread.Run(netnsPath, () => Open(timeout));

    /// <summary>Interface index by name via RTM_GETLINK; unknown names fail with ENODEV.</summary>
    public int GetInterfaceIndex(string interfaceName)
    {
        var index = 0;
        Request($"RTM_GETLINK {interfaceName}", seq => NetlinkMessages.GetLink(seq, interfaceName), (type, payload) =>
        {
            if (type == NetlinkMessages.RtmNewLink)
            {
                index = NetlinkMessages.ReadLinkIndex(payload);
            }
        });
        return index > 0 ? index : throw new NetlinkException($"RTM_GETLINK {interfaceName} returned no link.", 0);
    }

    /// <summary>
    /// Adds <paramref name="address"/>/<paramref name="prefixLength"/>; re-adding an existing address succeeds.
    /// <paramref name="noDad"/> skips IPv6 duplicate address detection (<c>ip addr add … nodad</c>): usable at once.
    /// </summary>
    public void AddAddress(string interfaceName, IPAddress address, int prefixLength, bool noDad = false)
    {
        ArgumentNullException.ThrowIfNull(address);
        var index = GetInterfaceIndex(interfaceName);
        Request($"RTM_NEWADDR {interfaceName} {address}/{prefixLength}", seq => NetlinkMessages.NewAddress(seq, index, address, prefixLength, noDad));
    }

    /// <summary>Sets IFF_UP, as <c>ip link set X up</c>.</summary>
    public void SetLinkUp(string interfaceName)
    {
        var index = GetInterfaceIndex(interfaceName);
        Request($"RTM_NEWLINK {interfaceName} up", seq => NetlinkMessages.SetLinkUp(seq, index));
    }

    public void SetMtu(string interfaceName, int mtu)
    {
        var index = GetInterfaceIndex(interfaceName);
        Request($"RTM_NEWLINK {interfaceName} mtu {mtu}", seq => NetlinkMessages.SetMtu(seq, index, mtu));
    }

    public void Dispose() => _socket.Dispose();

    private void Request(string operation, Func<uint, byte[]> encode, Action<ushort, ReadOnlySpan<byte>>? onReply = null)
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_socket.IsClosed, this);
            var sequence = ++_sequence;
            _socket.Send(operation, encode(sequence));
            var deadline = Environment.TickCount64 + (long)_timeout.TotalMilliseconds;
            while (true)
            {
                ReadOnlySpan<byte> datagram = _socket.Buffer.AsSpan(0, _socket.Receive(operation, deadline));
                while (NetlinkMessages.TryReadMessage(ref datagram, out var header, out var payload))
                {
                    // Replies to an earlier request that timed out can still arrive: skip them.
                    if (header.Sequence != sequence)
                    {
                        continue;
                    }
                    if (header.Type != NetlinkMessages.NlmsgError)
                    {
                        onReply?.Invoke(header.Type, payload);
                        continue;
                    }
                    var (errno, message) = NetlinkMessages.ReadError(header.Flags, payload);
                    if (errno != 0)
                    {
                        throw NetlinkException.FromErrno(operation, errno, message);
                    }
                    return;
                }
            }
        }
    }
}
