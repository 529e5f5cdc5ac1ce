using System.Net;
using System.Threading.Channels;
using Vpn.Core.Configuration;
using Vpn.Core.Nat;
using Vpn.Core.Netlink;
using Vpn.Core.WireGuard;
using Vpn.Domain.WireGuard;

namespace Vpn.Core.Dataplane;

/// <summary>
/// The real packet path: a userspace wireguard-go device driven over its UAPI socket, the interface configured over
/// rtnetlink, IPv4 forwarding via /proc and NAT via nftables. Peer changes from concurrent calls are coalesced into
/// one UAPI set per batch: one socket round trip and one device lock for many peers.
/// </summary>
public sealed partial class LinuxDataplane : IDataplane, IAsyncDisposable
{
    // Bounded so a single set stays small enough to re-read and retry cheaply.
    private const int MaxBatch = 4096;

    private readonly CoreOptions _options;
    private readonly UapiClient _uapi;
    private readonly ILogger<LinuxDataplane> _logger;
    private readonly ILoggerFactory _loggerFactory;
    private readonly Channel<PendingChange> _changes = Channel.CreateUnbounded<PendingChange>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Task _writer;

    public LinuxDataplane(CoreOptions options, ILoggerFactory loggerFactory)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(loggerFactory);
        _options = options;
        _loggerFactory = loggerFactory;
        _logger = loggerFactory.CreateLogger<LinuxDataplane>();
        _uapi = new UapiClient(Path.Combine(options.UapiSocketDirectory, options.InterfaceName + ".sock"));
        _writer = Task.Run(WriteLoopAsync);
    }

    public string Mode => "linux";

    public string NatDriver => _options.NatDriver;

    public async Task InitializeAsync(CancellationToken cancellationToken)
    {
        await WaitForDeviceAsync(cancellationToken);
        await _uapi.SetAsync(new DeviceConfig { PrivateKey = _options.PrivateKey, ListenPort = _options.ListenPort }, cancellationToken);
        var gateway = Domain.Addressing.Ipv4Network.ToAddress(_options.ClientPool.Base + 1);
        using (var netlink = RtNetlinkClient.Open())
        {
            netlink.AddAddress(_options.InterfaceName, gateway, _options.ClientPool.PrefixLength);
            netlink.SetLinkUp(_options.InterfaceName);
        }
        new IpForwarding().Enable();
        if (_options.NatDriver == "cli")
        {
            var nat = new NftNatDriver(new NatOptions { ClientPool = _options.ClientPool.ToString(), InterfaceName = _options.InterfaceName },
                _loggerFactory.CreateLogger<NftNatDriver>());
            await nat.ApplyAsync(cancellationToken);
        }
        LogInitialized(_logger, _options.InterfaceName);
    }

    public Task AddPeerAsync(WireGuardKey publicKey, IPAddress clientAddress, CancellationToken cancellationToken) =>
        EnqueueAsync(new PeerConfig
        {
            PublicKey = publicKey,
            ReplaceAllowedIps = true,
            AllowedIps = [new IPNetwork(clientAddress, 32)],
        });

    public Task RemovePeerAsync(WireGuardKey publicKey, CancellationToken cancellationToken) =>
        EnqueueAsync(new PeerConfig { PublicKey = publicKey, Remove = true });

    public async Task<int> CountPeersAsync(CancellationToken cancellationToken) => (await _uapi.GetAsync(cancellationToken)).Peers.Count;

    public async ValueTask DisposeAsync()
    {
        _changes.Writer.TryComplete();
        await _writer;
    }

    private Task EnqueueAsync(PeerConfig peer)
    {
        var change = new PendingChange(peer, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        ObjectDisposedException.ThrowIf(!_changes.Writer.TryWrite(change), this);
        return change.Completion.Task;
    }

    private async Task WriteLoopAsync()
    {
        var batch = new List<PendingChange>(MaxBatch);
        while (await _changes.Reader.WaitToReadAsync())
        {
            while (batch.Count < MaxBatch && _changes.Reader.TryRead(out var change))
            {
                batch.Add(change);
            }
            try
            {
                await _uapi.SetAsync(new DeviceConfig { Peers = [.. batch.Select(c => c.Peer)] }, CancellationToken.None);
                foreach (var change in batch)
                {
                    change.Completion.TrySetResult();
                }
            }
            catch (Exception e) when (e is IOException or TimeoutException)
            {
                // A failed set may be applied in part; callers undo their own change and reconciliation converges the rest.
                LogBatchFailed(_logger, batch.Count, e.GetType().Name);
                foreach (var change in batch)
                {
                    change.Completion.TrySetException(e);
                }
            }
            batch.Clear();
        }
    }

    private async Task WaitForDeviceAsync(CancellationToken cancellationToken)
    {
        var path = Path.Combine(_options.UapiSocketDirectory, _options.InterfaceName + ".sock");
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!File.Exists(path))
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new InvalidOperationException($"The WireGuard device {_options.InterfaceName} has no UAPI socket at {path}; is wireguard-go running?");
            }
            await Task.Delay(100, cancellationToken);
        }
    }

    private sealed record PendingChange(PeerConfig Peer, TaskCompletionSource Completion);

    [LoggerMessage(EventId = 300, Level = LogLevel.Information, Message = "WireGuard device {Interface} initialized (keys, port, address, forwarding, NAT)")]
    private static partial void LogInitialized(ILogger logger, string @interface);

    [LoggerMessage(EventId = 301, Level = LogLevel.Warning, Message = "UAPI set of {Count} peer change(s) failed: {Reason}")]
    private static partial void LogBatchFailed(ILogger logger, int count, string reason);
}
