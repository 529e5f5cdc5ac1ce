using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;

namespace Vpn.Core.Netlink;

/// <summary>
/// Runs code inside another network namespace without moving the process: setns(CLONE_NEWNET)
/// changes only the calling thread, so the work runs on a dedicated thread that exits afterwards.
/// Sockets opened there stay bound to that namespace for their whole life, from any thread,
/// and /proc/sys/net opened there shows that namespace's values. Requires CAP_SYS_ADMIN.
/// </summary>
public static class NetworkNamespaceThread
{
    /// <param name="netnsPath">A namespace file, e.g. <c>/var/run/netns/blue</c> or <c>/proc/1234/ns/net</c>.</param>
    public static T Run<T>(string netnsPath, Func<T> body)
    {
        ArgumentException.ThrowIfNullOrEmpty(netnsPath);
        ArgumentNullException.ThrowIfNull(body);
        T result = default!;
        ExceptionDispatchInfo? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                Enter(netnsPath);
                result = body();
            }
            catch (Exception e)
            {
                // Rethrown on the calling thread, with its original stack.
                failure = ExceptionDispatchInfo.Capture(e);
            }
        })
        {
            IsBackground = true,
            Name = "netns",
        };
        thread.Start();
        thread.Join();
        failure?.Throw();
        return result;
    }

    public static void Run(string netnsPath, Action body)
    {
        ArgumentNullException.ThrowIfNull(body);
        Run(netnsPath, () =>
        {
            body();
            return true;
        });
    }

    private static void Enter(string netnsPath)
    {
        var fd = LibC.Open(netnsPath, LibC.ORdonly | LibC.OCloexec);
        if (fd < 0)
        {
            throw NetlinkException.FromErrno($"open {netnsPath}", Marshal.GetLastPInvokeError());
        }
        using var handle = new FileDescriptorHandle(fd);
        if (LibC.SetNs(handle.Fd, LibC.CloneNewnet) != 0)
        {
            throw NetlinkException.FromErrno($"setns {netnsPath}", Marshal.GetLastPInvokeError());
        }
    }
}
