namespace Vpn.Core.Tests.Dataplane;

/// <summary>
/// The dataplane's coalescing peer writer (a thread of its own doing blocking UAPI sets) against a real wireguard-go in
/// its own network namespace. Peers go over UAPI only, so the device is never initialized (no address, link, forwarding
/// or NAT). What the device holds is read back with a <see cref="UapiClient"/> of the test's own.
/// </summary>
public class LinuxDataplaneWireGuardGoTests(ITestOutputHelper output)
{
    // Bounds on waits for the writer, so a dead or stuck writer fails a test instead of hanging the run.
    private static readonly TimeSpan WriterBound = TimeSpan.FromSeconds(60);

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task AddPeerAsync_TwoThousandConcurrentCalls_AllPeersOnDeviceWrittenInFewerSets()
    {
        const int calls = 2_000;
        await using var node = await Node.StartAsync(countSets: true);
        var peers = Enumerable.Range(0, calls).Select(i => (Key: WireGuardKey.Generate(), Address: Address(i))).ToArray();

        await Task.WhenAll(peers.Select(p => Task.Run(() => node.Dataplane.AddPeerAsync(p.Key, p.Address, Mirror(p.Address), Token), Token)))
            .WaitAsync(WriterBound, Token);

        var state = await node.Client.GetAsync(Token);
        Assert.Equal(calls, state.Peers.Count);
        var byKey = state.Peers.ToDictionary(p => p.PublicKey);
        foreach (var (key, address) in peers)
        {
            Assert.Equal([new IPNetwork(address, 32), new IPNetwork(Mirror(address), 128)], byKey[key].AllowedIps);
        }
        var sets = node.Proxy!.Connections;
        output.WriteLine($"{calls} AddPeerAsync calls were written in {sets} UAPI set(s)");
        Assert.InRange(sets, 1, calls - 1);
    }

    [Fact]
    public async Task RemovePeerAsync_OneOfThree_RemovesExactlyThatPeer()
    {
        await using var node = await Node.StartAsync();
        var peers = Enumerable.Range(0, 3).Select(i => (Key: WireGuardKey.Generate(), Address: Address(i))).ToArray();
        await Task.WhenAll(peers.Select(p => node.Dataplane.AddPeerAsync(p.Key, p.Address, Mirror(p.Address), Token))).WaitAsync(WriterBound, Token);
        Assert.Equal(3, (await node.Client.GetAsync(Token)).Peers.Count);

        await node.Dataplane.RemovePeerAsync(peers[1].Key, Token).WaitAsync(WriterBound, Token);

        Assert.Equal(Describe(peers[0], peers[2]), Describe(await node.Client.GetAsync(Token)));
    }

    [Fact]
    public async Task AddPeerAsync_DeviceKilled_FailsUntilADeviceIsBackThenTheSameWriterSucceeds()
    {
        await using var node = await Node.StartAsync();
        var first = (Key: WireGuardKey.Generate(), Address: Address(0));
        await node.Dataplane.AddPeerAsync(first.Key, first.Address, Mirror(first.Address), Token).WaitAsync(WriterBound, Token);

        // SIGKILL, as a crash: the socket file stays behind and refuses connections.
        node.Go.Kill();
        var failing = Enumerable.Range(1, 100).Select(i => node.Dataplane.AddPeerAsync(WireGuardKey.Generate(), Address(i), Mirror(Address(i)), Token)).ToArray();

        foreach (var add in failing)
        {
            await Assert.ThrowsAsync<UapiUnavailableException>(() => add.WaitAsync(WriterBound, Token));
        }
        output.WriteLine($"100 failed adds saw {failing.Select(t => t.Exception!.InnerException).Distinct().Count()} distinct exception(s)");
        await Assert.ThrowsAsync<UapiUnavailableException>(
            () => node.Dataplane.AddPeerAsync(WireGuardKey.Generate(), Address(101), Mirror(Address(101)), Token).WaitAsync(WriterBound, Token));

        await node.RestartWireGuardAsync();
        var later = (Key: WireGuardKey.Generate(), Address: Address(102));
        await node.Dataplane.AddPeerAsync(later.Key, later.Address, Mirror(later.Address), Token).WaitAsync(WriterBound, Token);

        // A new device starts empty: only the peer added after it came up is there.
        Assert.Equal(Describe(later), Describe(await node.Client.GetAsync(Token)));
    }

    [Fact]
    public async Task DisposeAsync_ChangesQueuedBefore_AreWrittenAndLaterChangesThrowObjectDisposed()
    {
        await using var node = await Node.StartAsync();
        var peers = Enumerable.Range(0, 500).Select(i => (Key: WireGuardKey.Generate(), Address: Address(i))).ToArray();
        // Queued synchronously by each call, none awaited; the removal comes after its peer's add and must win.
        var adds = peers.Select(p => node.Dataplane.AddPeerAsync(p.Key, p.Address, Mirror(p.Address), Token)).ToArray();
        Task[] pending = [.. adds, node.Dataplane.RemovePeerAsync(peers[0].Key, Token)];

        await node.Dataplane.DisposeAsync().AsTask().WaitAsync(WriterBound, Token);

        // DisposeAsync returns only after the queue was written.
        Assert.All(pending, t => Assert.Equal(TaskStatus.RanToCompletion, t.Status));
        Assert.Equal(Describe(peers[1..]), Describe(await node.Client.GetAsync(Token)));
        // Bounded: a change queued after the writer stopped would never complete.
        await Assert.ThrowsAsync<ObjectDisposedException>(
            () => node.Dataplane.AddPeerAsync(WireGuardKey.Generate(), Address(600), Mirror(Address(600)), Token).WaitAsync(WriterBound, Token));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => node.Dataplane.RemovePeerAsync(peers[1].Key, Token).WaitAsync(WriterBound, Token));
        await Assert.ThrowsAsync<ObjectDisposedException>(
            () => node.Dataplane.ApplyPeerChangesAsync([new PeerConfig { PublicKey = peers[1].Key, Remove = true }], Token).WaitAsync(WriterBound, Token));
        Assert.Equal(499, (await node.Client.GetAsync(Token)).Peers.Count);
    }

    private static IPAddress Address(int i) => new([10, 90, (byte)(i >> 8), (byte)i]);

    // The IPv6 address a node pairs with an IPv4 one (any /128 serves the writer; this keeps them unique).
    private static IPAddress Mirror(IPAddress v4)
    {
        var b = v4.GetAddressBytes();
        return new IPAddress([0xfd, 0x64, 0x64, 0, 0, 0, 0, 0, 0, 0, 0, 0, b[0], b[1], b[2], b[3]]);
    }

    /// <summary>"public-key allowed-ips" per peer, sorted.</summary>
    private static string[] Describe(params (WireGuardKey Key, IPAddress Address)[] peers) =>
        [.. peers.Select(p => $"{p.Key.ToHex()} {p.Address}/32,{Mirror(p.Address)}/128").Order(StringComparer.Ordinal)];

    private static string[] Describe(DeviceState state) =>
        [.. state.Peers.Select(p => $"{p.PublicKey.ToHex()} {string.Join(',', p.AllowedIps)}").Order(StringComparer.Ordinal)];

    /// <summary>A namespace with wireguard-go and a dataplane driving it from outside over UAPI.</summary>
    private sealed class Node : IAsyncDisposable
    {
        private Node(NetworkNamespace ns, string interfaceName, WireGuardGo go)
        {
            Namespace = ns;
            Interface = interfaceName;
            Go = go;
            Client = new UapiClient(UapiClient.SocketPathFor(interfaceName));
        }

        public NetworkNamespace Namespace { get; }

        public string Interface { get; }

        public WireGuardGo Go { get; private set; }

        /// <summary>The test's own view of the device, straight to its socket.</summary>
        public UapiClient Client { get; }

        public LinuxDataplane Dataplane { get; private set; } = null!;

        /// <summary>With countSets: the dataplane's socket, relayed to the device's.</summary>
        public CountingUapiProxy? Proxy { get; private set; }

        public static async Task<Node> StartAsync(bool countSets = false)
        {
            Prerequisites.RequireNetworkLab();
            var ns = await NetworkNamespace.CreateAsync("ldp");
            var interfaceName = NetworkNamespace.UniqueName("wgl");
            WireGuardGo go;
            try
            {
                go = await WireGuardGo.StartAsync(ns, interfaceName);
            }
            catch
            {
                await ns.DisposeAsync();
                throw;
            }
            var node = new Node(ns, interfaceName, go);
            try
            {
                if (countSets)
                {
                    node.Proxy = new CountingUapiProxy(interfaceName, go.SocketPath);
                }
                var options = new CoreOptions
                {
                    Dataplane = "linux",
                    InterfaceName = interfaceName,
                    UapiSocketDirectory = node.Proxy?.Directory ?? Path.GetDirectoryName(go.SocketPath)!,
                    NetworkNamespace = ns.Name,
                    NatDriver = "none",
                };
                node.Dataplane = new LinuxDataplane(options, NullLoggerFactory.Instance, TimeProvider.System);
                return node;
            }
            catch
            {
                await node.DisposeAsync();
                throw;
            }
        }

        /// <summary>Replaces a dead wireguard-go with a new, empty one under the same interface name.</summary>
        public async Task RestartWireGuardAsync()
        {
            await Go.DisposeAsync();
            Go = await WireGuardGo.StartAsync(Namespace, Interface);
        }

        public async ValueTask DisposeAsync()
        {
            if (Dataplane is not null)
            {
                await Dataplane.DisposeAsync();
            }
            if (Proxy is not null)
            {
                await Proxy.DisposeAsync();
            }
            await Go.DisposeAsync();
            await Namespace.DisposeAsync();
        }
    }

    /// <summary>
    /// A UAPI socket in front of a device's that relays every connection to it and counts them. The dataplane opens one
    /// connection per set and these tests read the device through their own client, so the count is the number of sets.
    /// </summary>
    private sealed class CountingUapiProxy : IAsyncDisposable
    {
        private readonly Socket _listener;
        private readonly UnixDomainSocketEndPoint _device;
        private readonly CancellationTokenSource _stop = new();
        private readonly List<Task> _relays = [];
        private readonly Task _accepting;
        private int _connections;

        public CountingUapiProxy(string interfaceName, string deviceSocketPath)
        {
            // Short path: sun_path holds at most 107 bytes.
            Directory = Path.Combine(Path.GetTempPath(), $"uapx-{Guid.NewGuid():N}"[..17]);
            System.IO.Directory.CreateDirectory(Directory);
            _device = new UnixDomainSocketEndPoint(deviceSocketPath);
            _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            _listener.Bind(new UnixDomainSocketEndPoint(Path.Combine(Directory, interfaceName + ".sock")));
            _listener.Listen(512);
            _accepting = AcceptAsync(_stop.Token);
        }

        public string Directory { get; }

        public int Connections => Volatile.Read(ref _connections);

        private async Task AcceptAsync(CancellationToken cancellationToken)
        {
            while (true)
            {
                Socket client;
                try
                {
                    client = await _listener.AcceptAsync(cancellationToken);
                }
                catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
                {
                    return;
                }
                Interlocked.Increment(ref _connections);
                lock (_relays)
                {
                    _relays.Add(RelayAsync(client, cancellationToken));
                }
            }
        }

        private async Task RelayAsync(Socket client, CancellationToken cancellationToken)
        {
            using (client)
            using (var device = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
            {
                try
                {
                    await device.ConnectAsync(_device, cancellationToken);
                }
                catch (Exception e) when (e is OperationCanceledException or SocketException)
                {
                    return;
                }
                await Task.WhenAll(CopyAsync(client, device, cancellationToken), CopyAsync(device, client, cancellationToken));
            }
        }

        /// <summary>Copies until end of stream, then passes the end on (the device answers a request, then waits for the next).</summary>
        private static async Task CopyAsync(Socket from, Socket to, CancellationToken cancellationToken)
        {
            var buffer = new byte[64 * 1024];
            try
            {
                int read;
                while ((read = await from.ReceiveAsync(buffer, SocketFlags.None, cancellationToken)) > 0)
                {
                    await to.SendAsync(buffer.AsMemory(0, read), SocketFlags.None, cancellationToken);
                }
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException)
            {
            }
            finally
            {
                try
                {
                    to.Shutdown(SocketShutdown.Send);
                }
                catch (SocketException)
                {
                }
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            await _accepting;
            Task[] relays;
            lock (_relays)
            {
                relays = [.. _relays];
            }
            await Task.WhenAll(relays);
            _listener.Dispose();
            _stop.Dispose();
            System.IO.Directory.Delete(Directory, recursive: true);
        }
    }
}
