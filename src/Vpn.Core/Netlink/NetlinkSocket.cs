using System.Runtime.InteropServices;

namespace Vpn.Core.Netlink;

/// <summary>
/// One bound AF_NETLINK socket of any protocol (rtnetlink for the tunnel interface, nfnetlink for nftables): send a
/// datagram to the kernel, receive one datagram with a deadline. Not thread-safe; callers serialise.
/// </summary>
internal sealed unsafe class NetlinkSocket : IDisposable
{
    private readonly FileDescriptorHandle _handle;

    private NetlinkSocket(FileDescriptorHandle handle, int receiveBufferLength)
    {
        _handle = handle;
        Buffer = new byte[receiveBufferLength];
    }

    /// <summary>Where <see cref="Receive"/> puts each datagram.</summary>
    public byte[] Buffer { get; }

    public bool IsClosed => _handle.IsClosed;

    /// <summary>Opens and binds a socket in the calling thread's network namespace.</summary>
    /// <param name="protocol">e.g. <see cref="LibC.NetlinkRoute"/> or <see cref="LibC.NetlinkNetfilter"/>.</param>
    public static NetlinkSocket Open(int protocol, int receiveBufferLength = 64 * 1024)
    {
        var fd = LibC.Socket(LibC.AfNetlink, LibC.SockRaw | LibC.SockCloexec, protocol);
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
            return new NetlinkSocket(handle, receiveBufferLength);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Raises the kernel-side buffers for one large exchange: a datagram longer than the send buffer fails with
    /// EMSGSIZE, and replies beyond the receive buffer are dropped (ENOBUFS). The *FORCE variants ignore the
    /// net.core.*mem_max limits (they need CAP_NET_ADMIN, which nftables needs anyway); best effort.
    /// </summary>
    public void EnsureBuffers(int sendBytes, int receiveBytes)
    {
        SetSize(LibC.SoSndbufforce, LibC.SoSndbuf, sendBytes);
        SetSize(LibC.SoRcvbufforce, LibC.SoRcvbuf, receiveBytes);
    }

    public void Send(string operation, ReadOnlySpan<byte> message)
    {
        var kernel = new LibC.SockaddrNl { Family = LibC.AfNetlink };
        fixed (byte* buffer = message)
        {
            while (true)
            {
                var sent = LibC.SendTo(_handle.Fd, buffer, (nuint)message.Length, 0, &kernel, (uint)sizeof(LibC.SockaddrNl));
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

    /// <summary>Waits until <paramref name="deadline"/> (Environment.TickCount64) for one datagram; returns its length in <see cref="Buffer"/>.</summary>
    public int Receive(string operation, long deadline)
    {
        while (true)
        {
            var remaining = deadline - Environment.TickCount64;
            var poll = new LibC.PollFd { Fd = _handle.Fd, Events = LibC.PollIn };
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
            fixed (byte* buffer = Buffer)
            {
                // MSG_TRUNC makes recv report the datagram's real length, so truncation is detectable.
                received = LibC.Recv(_handle.Fd, buffer, (nuint)Buffer.Length, LibC.MsgTrunc);
            }
            if (received > Buffer.Length)
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

    public void Dispose() => _handle.Dispose();

    private void SetSize(int forced, int plain, int bytes)
    {
        if (LibC.SetSockOpt(_handle.Fd, LibC.SolSocket, forced, &bytes, sizeof(int)) != 0)
        {
            _ = LibC.SetSockOpt(_handle.Fd, LibC.SolSocket, plain, &bytes, sizeof(int));
        }
    }
}
