namespace Vpn.Core.Tests.Netlink;

/// <summary>The client against the real kernel, inside a namespace per test so nothing on the host changes.</summary>
public class RtNetlinkClientTests
{
    private const int Enodev = 19;
    private const int Enoent = 2;

    [Fact]
    public void GetInterfaceIndex_HostLoopback_ReturnsOne()
    {
        using var client = RtNetlinkClient.Open();

        Assert.Equal(1, client.GetInterfaceIndex("lo"));
    }

    [Fact]
    public async Task AddAddress_VethInterface_AddressShownByIp()
    {
        await using var ns = await CreateNamespaceWithVethAsync();
        using var client = RtNetlinkClient.OpenInNamespace(PathOf(ns));

        client.AddAddress("v0", IPAddress.Parse("10.64.0.1"), 16);

        Assert.Equal(["10.64.0.1/16"], await AddressesAsync(ns, "-4", "v0"));
    }

    [Fact]
    public async Task AddAddress_SameAddressTwice_SucceedsWithOneAddress()
    {
        await using var ns = await CreateNamespaceWithVethAsync();
        using var client = RtNetlinkClient.OpenInNamespace(PathOf(ns));

        client.AddAddress("v0", IPAddress.Parse("10.64.0.1"), 16);
        client.AddAddress("v0", IPAddress.Parse("10.64.0.1"), 16);

        Assert.Equal(["10.64.0.1/16"], await AddressesAsync(ns, "-4", "v0"));
    }

    [Fact]
    public async Task AddAddress_Ipv6_AddressShownByIp()
    {
        await using var ns = await CreateNamespaceWithVethAsync();
        using var client = RtNetlinkClient.OpenInNamespace(PathOf(ns));

        client.AddAddress("v0", IPAddress.Parse("fd00:64::1"), 64);

        Assert.Contains("fd00:64::1/64", await AddressesAsync(ns, "-6", "v0"));
    }

    [Fact]
    public async Task SetLinkUp_VethInterface_LinkIsUp()
    {
        await using var ns = await CreateNamespaceWithVethAsync();
        using var client = RtNetlinkClient.OpenInNamespace(PathOf(ns));
        Assert.DoesNotContain("UP", await LinkFlagsAsync(ns, "v0"));

        client.SetLinkUp("v0");
        client.SetLinkUp("v0");

        Assert.Contains("UP", await LinkFlagsAsync(ns, "v0"));
    }

    [Fact]
    public async Task SetMtu_VethInterface_MtuShownByIp()
    {
        await using var ns = await CreateNamespaceWithVethAsync();
        using var client = RtNetlinkClient.OpenInNamespace(PathOf(ns));

        client.SetMtu("v0", 1420);

        Assert.Contains(" mtu 1420 ", await ns.ExecCheckedAsync("ip", "-o", "link", "show", "v0"));
    }

    [Fact]
    public async Task AddAddress_UnknownInterface_ThrowsEnodev()
    {
        await using var ns = await CreateNamespaceWithVethAsync();
        using var client = RtNetlinkClient.OpenInNamespace(PathOf(ns));

        var error = Assert.Throws<NetlinkException>(() => client.AddAddress("nosuch0", IPAddress.Parse("10.64.0.1"), 16));

        Assert.Equal(Enodev, error.Errno);
        Assert.Contains("nosuch0", error.Message);
    }

    [Fact]
    public async Task SetLinkUp_UnknownInterface_ThrowsEnodev()
    {
        await using var ns = await CreateNamespaceWithVethAsync();
        using var client = RtNetlinkClient.OpenInNamespace(PathOf(ns));

        Assert.Equal(Enodev, Assert.Throws<NetlinkException>(() => client.SetLinkUp("nosuch0")).Errno);
    }

    [Fact]
    public async Task GetInterfaceIndex_HostOnlyInterfaceFromNamespace_ThrowsEnodev()
    {
        await using var ns = await CreateNamespaceWithVethAsync();
        using var client = RtNetlinkClient.OpenInNamespace(PathOf(ns));

        var veth = NetworkNamespace.UniqueName("vt");
        await ns.ExecCheckedAsync("ip", "link", "add", veth, "type", "veth", "peer", "name", "p" + veth);

        // The veth exists only in the namespace, so a host socket must not see it.
        Assert.True(client.GetInterfaceIndex(veth) > 1);
        using var host = RtNetlinkClient.Open();
        Assert.Equal(Enodev, Assert.Throws<NetlinkException>(() => host.GetInterfaceIndex(veth)).Errno);
    }

    [Fact]
    public async Task AddressAndLinkUp_WireGuardGoDevice_ConfiguresTunnel()
    {
        Prerequisites.RequireNetworkLab();
        await using var ns = await NetworkNamespace.CreateAsync("nl");
        await using var device = await WireGuardGo.StartAsync(ns, NetworkNamespace.UniqueName("wgn"));
        using var client = RtNetlinkClient.OpenInNamespace(PathOf(ns));

        client.SetMtu(device.InterfaceName, 1380);
        client.AddAddress(device.InterfaceName, IPAddress.Parse("10.64.0.1"), 16);
        client.AddAddress(device.InterfaceName, IPAddress.Parse("10.64.0.1"), 16);
        client.SetLinkUp(device.InterfaceName);

        Assert.Equal(["10.64.0.1/16"], await AddressesAsync(ns, "-4", device.InterfaceName));
        Assert.Contains("UP", await LinkFlagsAsync(ns, device.InterfaceName));
        Assert.Contains(" mtu 1380 ", await ns.ExecCheckedAsync("ip", "-o", "link", "show", device.InterfaceName));
    }

    [Fact]
    public void OpenInNamespace_MissingPath_ThrowsEnoent()
    {
        var error = Assert.Throws<NetlinkException>(() => RtNetlinkClient.OpenInNamespace("/var/run/netns/vpn-core-test-missing"));

        Assert.Equal(Enoent, error.Errno);
    }

    [Fact]
    public void GetInterfaceIndex_AfterDispose_ThrowsObjectDisposed()
    {
        var client = RtNetlinkClient.Open();
        client.Dispose();

        Assert.Throws<ObjectDisposedException>(() => client.GetInterfaceIndex("lo"));
    }

    internal static string PathOf(NetworkNamespace ns) => $"/var/run/netns/{ns.Name}";

    private static async Task<NetworkNamespace> CreateNamespaceWithVethAsync()
    {
        Prerequisites.RequireNetworkLab();
        var ns = await NetworkNamespace.CreateAsync("nl");
        try
        {
            await ns.ExecCheckedAsync("ip", "link", "add", "v0", "type", "veth", "peer", "name", "v1");
            return ns;
        }
        catch
        {
            await ns.DisposeAsync();
            throw;
        }
    }

    /// <summary>The CIDR column of <c>ip -o addr show</c>, e.g. "10.64.0.1/16".</summary>
    private static async Task<string[]> AddressesAsync(NetworkNamespace ns, string family, string interfaceName)
    {
        var output = await ns.ExecCheckedAsync("ip", "-o", family, "addr", "show", "dev", interfaceName);
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[3])
            .ToArray();
    }

    /// <summary>The flags between angle brackets of <c>ip -o link show</c>, e.g. BROADCAST, NOARP, UP.</summary>
    private static async Task<string[]> LinkFlagsAsync(NetworkNamespace ns, string interfaceName)
    {
        var output = await ns.ExecCheckedAsync("ip", "-o", "link", "show", interfaceName);
        var start = output.IndexOf('<', StringComparison.Ordinal) + 1;
        return output[start..output.IndexOf('>', start)].Split(',');
    }
}
