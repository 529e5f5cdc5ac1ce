using System.Buffers;
using Vpn.Core.Nat;
using Vpn.Core.Netlink;
using Vpn.Core.WireGuard;

namespace Vpn.Core.Dataplane;

/// <summary>
/// The real packet path: a userspace wireguard-go device driven over its UAPI socket, the interface configured over
/// rtnetlink, IPv4 forwarding via /proc and NAT via nftables. Peer changes from concurrent calls are coalesced into
/// one UAPI set per batch: one socket round trip and one device lock for many peers. The batches are written by a
/// thread of their own with blocking socket calls: under a burst the thread pool's queue holds thousands of requests,
/// and a writer that needed a pool thread after every await would start the first set only once most of them had run
/// (bench p1: the device sat idle for the first ~0.75 s of a burst of 10,000 Connects).
/// </summary>
public sealed partial class LinuxDataplane : IDataplane, IAsyncDisposable
{
    // Bounded so a single set stays small enough to re-read and retry cheaply.
    private const int MaxBatch = 4096;

    // A hung device must fail the batch rather than stall every later change; a healthy set of MaxBatch takes well under a second.
    private static readonly TimeSpan WriteTimeout = TimeSpan.FromSeconds(60);

    private readonly CoreOptions _options;
    private readonly UapiClient _uapi;
    private readonly ILogger<LinuxDataplane> _logger;
    private readonly ILoggerFactory _loggerFactory;
    private readonly TimeProvider _time;
    private readonly Queue<PendingChange> _changes = new();
    private readonly object _changesLock = new(); // a monitor: the writer waits on it
    private readonly TaskCompletionSource _writerStopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly INatDriver? _nat;
    private readonly string? _namespacePath;
    private bool _closed;

    public LinuxDataplane(CoreOptions options, ILoggerFactory loggerFactory, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(loggerFactory);
        ArgumentNullException.ThrowIfNull(time);
        _options = options;
        _loggerFactory = loggerFactory;
        _time = time;
        _logger = loggerFactory.CreateLogger<LinuxDataplane>();
        _uapi = new UapiClient(Path.Combine(options.UapiSocketDirectory, options.InterfaceName + ".sock"));
        // A core may drive a device in another namespace (tests): netlink and /proc/sys are per namespace, the UAPI socket is not.
        _namespacePath = options.NetworkNamespace is { } name ? $"/var/run/netns/{name}" : null;
        _nat = NatDrivers.Create(options, loggerFactory);
        new Thread(WriteLoop) { IsBackground = true, Name = "uapi-writer" }.Start();
    }

    public string Mode => "linux";

    public string NatDriver => _options.NatDriver;

    public IReadOnlyList<string> NativeFeatures => _nat?.NativeFeatures ?? [];

    public async Task InitializeAsync(CancellationToken cancellationToken)
    {
        await WaitForDeviceAsync(cancellationToken);
        await _uapi.SetAsync(new DeviceConfig { PrivateKey = _options.PrivateKey, ListenPort = _options.ListenPort }, cancellationToken);
        var gateway = Domain.Addressing.Ipv4Network.ToAddress(_options.ClientPool.Base + 1);
        using (var netlink = _namespacePath is null ? RtNetlinkClient.Open() : RtNetlinkClient.OpenInNamespace(_namespacePath))
        {
            netlink.AddAddress(_options.InterfaceName, gateway, _options.ClientPool.PrefixLength);
            // No duplicate address detection: the resolver binds the address at once, and nothing else on a point-to-point
            // tunnel can hold it.
            netlink.AddAddress(_options.InterfaceName, _options.ClientPool6.Gateway, _options.ClientPool6.PrefixLength, noDad: true);
            netlink.SetLinkUp(_options.InterfaceName);
        }
        // The filter first: forwarding without it would let clients reach each other and the node's networks.
        if (_nat is not null)
        {
            await _nat.ApplyAsync(cancellationToken);
        }
        InNamespace(() =>
        {
            new IpForwarding().Enable();
            new IpForwarding(IpForwarding.Ipv6Path).Enable();
        });
        LogInitialized(_logger, _options.InterfaceName);
    }

    public Task AddPeerAsync(WireGuardKey publicKey, IPAddress clientAddress, IPAddress clientAddress6, CancellationToken cancellationToken) =>
        EnqueueAsync([new PeerConfig
        {
            PublicKey = publicKey,
            ReplaceAllowedIps = true,
            AllowedIps = [new IPNetwork(clientAddress, 32), new IPNetwork(clientAddress6, 128)],
        }]);

    /// <summary>
    /// The table's counters. A table that vanished (e.g. <c>nft flush ruleset</c> when the host's nftables service
    /// restarts) is applied again first: without it clients would lose isolation and NAT silently. The metrics poller
    /// reads every few seconds, so that is also how soon the table comes back.
    /// </summary>
    public async Task<IReadOnlyList<FirewallCounter>> ReadFilterCountersAsync(CancellationToken cancellationToken)
    {
        if (_nat is null)
        {
            return [];
        }
        IReadOnlyList<FirewallCounter> counters = [];
        NatException? failure = null;
        try
        {
            counters = await _nat.ReadCountersAsync(cancellationToken);
        }
        catch (NatException e)
        {
            // cli: listing a missing table fails; native: it reads as empty.
            failure = e;
        }
        if (counters.Count > 0 || await _nat.IsPresentAsync(cancellationToken))
        {
            return failure is null ? counters : throw failure;
        }
        LogFilterMissing(_logger, _options.InterfaceName);
        await _nat.ApplyAsync(cancellationToken);
        return await _nat.ReadCountersAsync(cancellationToken);
    }

    public Task RemovePeerAsync(WireGuardKey publicKey, CancellationToken cancellationToken) =>
        EnqueueAsync([new PeerConfig { PublicKey = publicKey, Remove = true }]);

    public Task ApplyPeerChangesAsync(IReadOnlyList<PeerConfig> changes, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(changes);
        if (changes.Count <= MaxBatch)
        {
            return changes.Count == 0 ? Task.CompletedTask : EnqueueAsync(changes);
        }
        // All chunks are queued before returning, so their order relative to later changes is fixed now.
        return Task.WhenAll(changes.Chunk(MaxBatch).Select(EnqueueAsync).ToArray());
    }

    public async Task<DeviceSnapshot> ReadAsync(CancellationToken cancellationToken)
    {
        var state = await _uapi.GetAsync(cancellationToken);
        // A recreated wireguard-go device starts without a key and on port 0. wireguard-go clamps the key it is given.
        var configured = state.PrivateKey is { IsZero: false } key && key == _options.PrivateKey?.ClampPrivateKey()
            && state.ListenPort == _options.ListenPort;
        return new DeviceSnapshot(!configured, state.Peers);
    }

    public Task ProbeAsync(CancellationToken cancellationToken) => _uapi.PingAsync(cancellationToken);

    public async ValueTask DisposeAsync()
    {
        lock (_changesLock)
        {
            _closed = true;
            Monitor.PulseAll(_changesLock);
        }
        // Changes already queued are still written.
        await _writerStopped.Task;
        if (_nat is not null && _options.RemoveNatOnShutdown)
        {
            try
            {
                using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                await _nat.RemoveAsync(deadline.Token);
            }
            catch (Exception e) when (e is NatException or OperationCanceledException)
            {
                LogNatRemoveFailed(_logger, e.Message);
            }
        }
    }

    private void InNamespace(Action action)
    {
        if (_namespacePath is null)
        {
            action();
        }
        else
        {
            NetworkNamespaceThread.Run(_namespacePath, action);
        }
    }

    private Task EnqueueAsync(IReadOnlyList<PeerConfig> peers)
    {
        // Continuations run on the pool, never on the writer thread.
        var change = new PendingChange(peers, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        lock (_changesLock)
        {
            ObjectDisposedException.ThrowIf(_closed, this);
            _changes.Enqueue(change);
            if (_changes.Count == 1)
            {
                Monitor.Pulse(_changesLock);
            }
        }
        return change.Completion.Task;
    }

    private void WriteLoop()
    {
        var batch = new List<PendingChange>();
        var peers = new List<PeerConfig>(MaxBatch);
        // One request buffer for the life of the loop (about 160 bytes a peer), not a large-object array per write.
        var request = new ArrayBufferWriter<byte>(256 + (MaxBatch * 160));
        try
        {
            while (true)
            {
                lock (_changesLock)
                {
                    while (_changes.Count == 0 && !_closed)
                    {
                        Monitor.Wait(_changesLock);
                    }
                    if (_changes.Count == 0)
                    {
                        return;
                    }
                    // Items are at most MaxBatch peers each; one write takes whole items until it holds MaxBatch (so under twice that).
                    while (peers.Count < MaxBatch && _changes.TryDequeue(out var change))
                    {
                        batch.Add(change);
                        peers.AddRange(change.Peers);
                    }
                }
                try
                {
                    _uapi.Set(new DeviceConfig { Peers = peers }, request, WriteTimeout);
                    foreach (var change in batch)
                    {
                        change.Completion.TrySetResult();
                    }
                }
                catch (Exception e)
                {
                    // Whatever failed, the loop must live on. A failed set may be applied in part; callers undo their own
                    // change and reconciliation re-reads the device and converges the rest.
                    LogBatchFailed(_logger, peers.Count, e.GetType().Name);
                    foreach (var change in batch)
                    {
                        change.Completion.TrySetException(e);
                    }
                }
                batch.Clear();
                peers.Clear();
            }
        }
        finally
        {
            // Normally reached once closed and drained; if the loop itself failed, nothing may wait forever on a writer
            // that is gone: refuse new changes and fail the queued ones.
            List<PendingChange> orphans;
            lock (_changesLock)
            {
                _closed = true;
                orphans = [.. _changes, .. batch];
                _changes.Clear();
            }
            foreach (var change in orphans)
            {
                change.Completion.TrySetException(new ObjectDisposedException(nameof(LinuxDataplane), "The UAPI writer stopped."));
            }
            _writerStopped.TrySetResult();
        }
    }

    /// <summary>Waits until the device answers: wireguard-go creates its socket file a moment before it accepts connections.</summary>
    private async Task WaitForDeviceAsync(CancellationToken cancellationToken)
    {
        var deadline = _time.GetUtcNow().AddSeconds(30);
        while (true)
        {
            try
            {
                if (File.Exists(_uapi.SocketPath))
                {
                    await _uapi.GetAsync(cancellationToken);
                    return;
                }
            }
            catch (UapiUnavailableException) when (_time.GetUtcNow() <= deadline)
            {
            }
            if (_time.GetUtcNow() > deadline)
            {
                throw new InvalidOperationException(
                    $"The WireGuard device {_options.InterfaceName} does not answer at {_uapi.SocketPath}; is wireguard-go running?");
            }
            await Task.Delay(TimeSpan.FromMilliseconds(100), _time, cancellationToken);
        }
    }

    private sealed record PendingChange(IReadOnlyList<PeerConfig> Peers, TaskCompletionSource Completion);

    [LoggerMessage(EventId = 300, Level = LogLevel.Information, Message = "WireGuard device {Interface} initialized (keys, port, addresses, forwarding, filter and NAT)")]
    private static partial void LogInitialized(ILogger logger, string @interface);

    [LoggerMessage(EventId = 303, Level = LogLevel.Warning, Message = "The filter and NAT table of {Interface} was gone (flushed by another program?); applied it again")]
    private static partial void LogFilterMissing(ILogger logger, string @interface);

    [LoggerMessage(EventId = 302, Level = LogLevel.Warning, Message = "Removing the filter and NAT table at shutdown failed: {Reason}")]
    private static partial void LogNatRemoveFailed(ILogger logger, string reason);

    [LoggerMessage(EventId = 301, Level = LogLevel.Warning, Message = "UAPI set of {Count} peer change(s) failed: {Reason}")]
    private static partial void LogBatchFailed(ILogger logger, int count, string reason);
}
