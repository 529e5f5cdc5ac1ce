namespace Vpn.Core.Tests.Netlink;

public class IpForwardingTests : IDisposable
{
    private readonly string _path = Path.Combine(Path.GetTempPath(), $"ip_forward-{Guid.NewGuid():N}");

    [Fact]
    public void Enable_Disabled_WritesOneAndReportsChange()
    {
        File.WriteAllText(_path, "0\n");
        var forwarding = new IpForwarding(_path);

        Assert.False(forwarding.IsEnabled());
        Assert.True(forwarding.Enable());

        Assert.True(forwarding.IsEnabled());
        Assert.Equal("1\n", File.ReadAllText(_path));
    }

    [Fact]
    public void Enable_AlreadyEnabled_LeavesFileAlone()
    {
        File.WriteAllText(_path, "1\n");
        var before = File.GetLastWriteTimeUtc(_path);
        File.SetLastWriteTimeUtc(_path, before.AddHours(-1));

        Assert.False(new IpForwarding(_path).Enable());

        Assert.Equal(before.AddHours(-1), File.GetLastWriteTimeUtc(_path));
    }

    [Fact]
    public void IsEnabled_Garbage_ThrowsInvalidData()
    {
        File.WriteAllText(_path, "yes\n");

        Assert.Throws<InvalidDataException>(() => new IpForwarding(_path).IsEnabled());
    }

    [Fact]
    public async Task Enable_FromThreadInNamespace_ChangesOnlyThatNamespace()
    {
        Prerequisites.RequireNetworkLab();
        await using var ns = await NetworkNamespace.CreateAsync("fw");
        await ns.ExecCheckedAsync("sysctl", "-q", "-w", "net.ipv4.ip_forward=0");
        var hostBefore = File.ReadAllText(IpForwarding.DefaultPath);

        var changed = NetworkNamespaceThread.Run($"/var/run/netns/{ns.Name}", () => new IpForwarding().Enable());

        Assert.True(changed);
        Assert.Equal("1", (await ns.ExecCheckedAsync("cat", IpForwarding.DefaultPath)).Trim());
        Assert.Equal(hostBefore, File.ReadAllText(IpForwarding.DefaultPath));
    }

    public void Dispose()
    {
        File.Delete(_path);
        GC.SuppressFinalize(this);
    }
}
