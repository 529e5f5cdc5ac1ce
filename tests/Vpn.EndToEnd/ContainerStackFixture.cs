namespace Vpn.EndToEnd;

/// <summary>
/// The end-to-end stack with the node's two parts from the images: the wireguard-go image and the core image in
/// containers joined to the lab's node namespace (podman <c>--network ns:</c>), each with all capabilities dropped but
/// NET_ADMIN, as the core pod runs them (core also read-only with a /tmp). Entry, PostgreSQL, the client and the inet
/// server are the <see cref="VpnStackFixture"/>'s. The images are built first (<see cref="LocalImages"/>) and removed
/// with the fixture; <see cref="ContainerImageTests"/> runs entry's image on them too.
/// <para>
/// Both containers see the host's /var/run/wireguard (the UAPI socket, as the pod's shared emptyDir) and the lab's
/// scratch directory at the same path (core's gRPC socket and the node's key file). IPv4 and IPv6 forwarding are
/// switched on in the node namespace beforehand, as a node's own configuration must: /proc/sys is read-only in a
/// container (Kubernetes too, unless privileged), and core writes a forwarding switch only when it is off.
/// </para>
/// </summary>
public sealed class ContainerStackFixture : VpnStackFixture
{
    private readonly string _coreContainer = Podman.UniqueName("core");
    private Exception? _imageFailure;

    internal LocalImages? Images { get; private set; }

    /// <summary>The node's wireguard-go container (its name).</summary>
    public string DeviceContainer { get; } = Podman.UniqueName("wg");

    /// <summary>The core container (its name).</summary>
    public string CoreContainer => _coreContainer;

    protected override IEnumerable<string> RequiredTools => [.. base.RequiredTools, "podman", "runc", "debootstrap"];

    // The images first, before PostgreSQL and entry start: the build (two self-contained publishes) is the heaviest
    // step, and an entry left waiting through it answered its first request past the client's timeout on a busy machine.
    protected override async Task StartDependenciesAsync(CancellationToken cancellationToken)
    {
        await base.StartDependenciesAsync(cancellationToken);
        try
        {
            Images = await LocalImages.BuildAsync();
        }
        catch (Exception e)
        {
            _imageFailure = e;
            throw;
        }
        Step($"images built in {Seconds(Images.BuildTime)}:\n{Images.BuildLog}");
    }

    protected override async Task<INodeLab> CreateLabAsync()
    {
        var lab = await VpnLab.CreateAsync(StartDeviceContainerAsync);
        // Both families (the node's pools are dual-stack): core would write them, and /proc/sys is read-only in its container.
        await lab.Node.ExecCheckedAsync("sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1");
        return lab;
    }

    private async Task<WireGuardGo> StartDeviceContainerAsync(NetworkNamespace node, string interfaceName)
    {
        var process = Podman.Start(DeviceContainer,
            [
                "--network", $"ns:/run/netns/{node.Name}", "--cap-drop", "ALL", "--cap-add", "NET_ADMIN", "--device", "/dev/net/tun",
                "--read-only", "--volume", "/var/run/wireguard:/var/run/wireguard", "--env", "LOG_LEVEL=error",
            ],
            Images!.WireGuardGo, [interfaceName]);
        Step($"wireguard-go container {DeviceContainer} started for {interfaceName} in {node.Name}");
        return await WireGuardGo.AttachAsync(process, interfaceName, async () => await Podman.RemoveAsync(DeviceContainer));
    }

    protected override void AddCoreEnvironment(IDictionary<string, string?> environment)
    {
        // The image says production; this node runs as the dev overlay's (cleartext gRPC on a unix socket, no TLS files).
        environment["APP_ENV"] = "development";
        environment["WG_UPLINK_INTERFACE"] = Lab.NodeUplink;
    }

    protected override BackgroundProcess StartCoreProcess(Dictionary<string, string?> environment)
    {
        var work = NodeLab.WorkDirectory;
        return Podman.Start(_coreContainer,
            [
                "--network", $"ns:/run/netns/{NodeLab.Node.Name}", "--cap-drop", "ALL", "--cap-add", "NET_ADMIN",
                "--security-opt", "no-new-privileges", "--read-only", "--tmpfs", "/tmp",
                "--volume", "/var/run/wireguard:/var/run/wireguard", "--volume", $"{work}:{work}",
                .. Podman.EnvironmentOptions(environment),
            ],
            Images!.Core, []);
    }

    protected override Task CoreStoppedAsync() => Podman.RemoveAsync(_coreContainer);

    /// <summary>First line of a test that needs only the images (not the node): fails with the build's output if it failed.</summary>
    internal LocalImages EnsureImages()
    {
        Podman.Require();
        if (Images is not null)
        {
            return Images;
        }
        if (_imageFailure is not null)
        {
            throw new Xunit.Sdk.XunitException($"image build failed: {_imageFailure.Message}", _imageFailure);
        }
        EnsureReady(); // setup failed before the build: that failure, with its diagnostics
        throw new InvalidOperationException("images not built");
    }

    protected override async ValueTask StopDependenciesAsync()
    {
        await base.StopDependenciesAsync();
        if (Images is not null)
        {
            await Images.DisposeAsync();
        }
    }
}
