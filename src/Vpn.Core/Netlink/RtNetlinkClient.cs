using System.Net;
using System.Runtime.InteropServices;

namespace Vpn.Core.Netlink;

/// <summary>
/// A minimal synchronous rtnetlink (NETLINK_ROUTE) client for configuring the tunnel interface.
/// Every request asks for an acknowledgement and waits for the NLMSG_ERROR carrying its sequence
/// number; a negative error becomes a <see cref="NetlinkException"/>. Calls are serialised.
/// </summary>
public sealed unsafe class RtNetlinkClient : IDisposable
{
    private static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(5);

    private readonly FileDescriptorHandle _socket;
    private readonly TimeSpan _timeout;
    private readonly byte[] _receiveBuffer = new byte[64 * 1024];
    private readonly Lock _lock = new();
    private uint _sequence;

    private RtNetlinkClient(FileDescriptorHandle socket, TimeSpan timeout)
    {
        _socket = socket;
        _timeout = timeout;
        _sequence = (uint)Environment.TickCount;
    }

    /// <summary>Opens a socket in the calling thread's network namespace (normally the process's).</summary>
    /// <param name="timeout">How long to wait for each kernel reply; 5 seconds when null.</param>
    public static RtNetlinkClient Open(TimeSpan? timeout = null) => new(OpenSocket(), timeout ?? DefaultTimeout);

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

    /// <summary>Adds <paramref name="address"/>/<paramref name="prefixLength"/>; re-adding an existing address succeeds.</summary>
    public void AddAddress(string interfaceName, IPAddress address, int prefixLength)
    {
        ArgumentNullException.ThrowIfNull(address);
        var index = GetInterfaceIndex(interfaceName);
        Request($"RTM_NEWADDR {interfaceName} {address}/{prefixLength}", seq => NetlinkMessages.NewAddress(seq, index, address, prefixLength));
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
            Send(operation, encode(sequence));
            var deadline = Environment.TickCount64 + (long)_timeout.TotalMilliseconds;
            while (true)
            {
                ReadOnlySpan<byte> datagram = _receiveBuffer.AsSpan(0, Receive(operation, deadline));
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

    private void Send(string operation, byte[] message)
    {
        var kernel = new LibC.SockaddrNl { Family = LibC.AfNetlink };
        fixed (byte* buffer = message)
        {
            while (true)
            {
                var sent = LibC.SendTo(_socket.Fd, buffer, (nuint)message.Length, 0, &kernel, (uint)sizeof(LibC.SockaddrNl));
                if (sent >= 0)
                {
                    return;
                }
                var errno = Marshal.GetLastPInvokeError();
                if (errno != LibC.Eintr)
                {
                    throw NetlinkException.FromErrno($"{operation}: sendto", errno);
                }
            }
        }
    }

    private int Receive(string operation, long deadline)
    {
        while (true)
        {
            var remaining = deadline - Environment.TickCount64;
            var poll = new LibC.PollFd { Fd = _socket.Fd, Events = LibC.PollIn };
            var ready = remaining <= 0 ? 0 : LibC.Poll(&poll, 1, (int)Math.Min(remaining, int.MaxValue));
            if (ready == 0)
            {
                throw NetlinkException.FromErrno($"{operation}: waiting for the kernel's reply", LibC.Etimedout);
            }
            if (ready < 0)
            {
                var pollErrno = Marshal.GetLastPInvokeError();
                if (pollErrno == LibC.Eintr)
                {
                    continue;
                }
                throw NetlinkException.FromErrno($"{operation}: poll", pollErrno);
            }
            nint received;
            fixed (byte* buffer = _receiveBuffer)
            {
                // MSG_TRUNC makes recv report the datagram's real length, so truncation is detectable.
                received = LibC.Recv(_socket.Fd, buffer, (nuint)_receiveBuffer.Length, LibC.MsgTrunc);
            }
            if (received > _receiveBuffer.Length)
            {
                throw new NetlinkException($"{operation}: reply of {received} bytes exceeds the receive buffer.", 0);
            }
            if (received >= 0)
            {
                return (int)received;
            }
            var errno = Marshal.GetLastPInvokeError();
            if (errno is not (LibC.Eintr or LibC.Eagain))
            {
                throw NetlinkException.FromErrno($"{operation}: recv", errno);
            }
        }
    }

    private static FileDescriptorHandle OpenSocket()
    {
        var fd = LibC.Socket(LibC.AfNetlink, LibC.SockRaw | LibC.SockCloexec, LibC.NetlinkRoute);
        if (fd < 0)
        {
            throw NetlinkException.FromErrno("socket(AF_NETLINK)", Marshal.GetLastPInvokeError());
        }
        var handle = new FileDescriptorHandle(fd);
        try
        {
            var local = new LibC.SockaddrNl { Family = LibC.AfNetlink };
            if (LibC.Bind(fd, &local, (uint)sizeof(LibC.SockaddrNl)) != 0)
            {
                throw NetlinkException.FromErrno("bind(AF_NETLINK)", Marshal.GetLastPInvokeError());
            }
            // Best effort (older kernels lack them): echo only the request header in error replies,
            // and include the kernel's human-readable reason (extended ack).
            var on = 1;
            _ = LibC.SetSockOpt(fd, LibC.SolNetlink, LibC.NetlinkCapAck, &on, sizeof(int));
            _ = LibC.SetSockOpt(fd, LibC.SolNetlink, LibC.NetlinkExtAck, &on, sizeof(int));
            return handle;
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }
}
