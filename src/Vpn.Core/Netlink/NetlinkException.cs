using System.Runtime.InteropServices;

namespace Vpn.Core.Netlink;

/// <summary>A netlink request or socket call failed; <see cref="Errno"/> is the positive Linux errno (e.g. 19 = ENODEV).</summary>
public sealed class NetlinkException : Exception
{
    public NetlinkException()
    {
    }

    public NetlinkException(string message)
        : base(message)
    {
    }

    public NetlinkException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public NetlinkException(string message, int errno)
        : base(message) => Errno = errno;

    public int Errno { get; }

    internal static NetlinkException FromErrno(string operation, int errno, string? kernelMessage = null) =>
        new($"{operation} failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})"
            + (kernelMessage is null ? "" : $": {kernelMessage}"), errno);
}
