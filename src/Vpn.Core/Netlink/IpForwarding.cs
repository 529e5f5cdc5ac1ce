using System.Globalization;

namespace Vpn.Core.Netlink;

/// <summary>
/// A forwarding switch (IPv4 by default). The sysctl is per network namespace: the file is resolved for the
/// namespace of the thread that opens it (see <see cref="NetworkNamespaceThread"/>).
/// </summary>
public sealed class IpForwarding(string path = IpForwarding.DefaultPath)
{
    public const string DefaultPath = "/proc/sys/net/ipv4/ip_forward";

    /// <summary>IPv6 forwarding for every interface. Note: with it on, the kernel ignores router advertisements on
    /// interfaces whose accept_ra is 1; a node that learns its IPv6 default route by RA needs accept_ra=2 on its uplink.</summary>
    public const string Ipv6Path = "/proc/sys/net/ipv6/conf/all/forwarding";

    public string Path { get; } = path;

    public bool IsEnabled()
    {
        var text = File.ReadAllText(Path).Trim();
        return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value)
            ? value != 0
            : throw new InvalidDataException($"Unexpected content in {Path}: '{text}'.");
    }

    /// <summary>
    /// Turns forwarding on; returns false when it already was. The write is skipped in that case because
    /// changing ip_forward also resets related per-interface settings such as accept_redirects.
    /// </summary>
    public bool Enable()
    {
        if (IsEnabled())
        {
            return false;
        }
        try
        {
            File.WriteAllText(Path, "1\n");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A container's /proc/sys is read-only unless privileged: the node (or the pod's namespace) must have it on.
            throw new InvalidOperationException(
                $"Forwarding is off and {Path} cannot be written ({e.GetType().Name}): turn it on for the node's network namespace "
                + "(sysctl -w on the host; a container cannot) before core starts.", e);
        }
        return true;
    }
}
