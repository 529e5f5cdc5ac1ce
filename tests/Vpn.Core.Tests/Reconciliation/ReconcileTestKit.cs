namespace Vpn.Core.Tests.Reconciliation;

/// <summary>A clock that moves only when told.</summary>
public sealed class ManualClock : TimeProvider
{
    private long _ticks = TimeSpan.FromDays(20_000).Ticks;

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public override long GetTimestamp() => Interlocked.Read(ref _ticks);

    public override DateTimeOffset GetUtcNow() => new(Interlocked.Read(ref _ticks), TimeSpan.Zero);

    public void Advance(TimeSpan by) => Interlocked.Add(ref _ticks, by.Ticks);
}

/// <summary>The desired state a test dictates; <see cref="Fail"/> makes fetches throw as an unreachable entry would.</summary>
public sealed class FakeDesiredState : IDesiredStateSource
{
    private DesiredSnapshot? _snapshot;
    private int _fetches;

    public int Fetches => Volatile.Read(ref _fetches);

    public void Set(params DesiredSession[] sessions) => Volatile.Write(ref _snapshot, new DesiredSnapshot(DateTimeOffset.UnixEpoch, sessions));

    public void Fail() => Volatile.Write(ref _snapshot, null);

    public Task<DesiredSnapshot> FetchAsync(CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _fetches);
        return Volatile.Read(ref _snapshot) is { } snapshot
            ? Task.FromResult(snapshot)
            : Task.FromException<DesiredSnapshot>(new DesiredStateUnavailableException("entry unreachable (test)"));
    }
}

public sealed class TestMeterFactory : IMeterFactory
{
    private readonly List<Meter> _meters = [];

    public Meter Create(MeterOptions options)
    {
        var meter = new Meter(options);
        lock (_meters)
        {
            _meters.Add(meter);
        }
        return meter;
    }

    public bool Owns(Meter meter)
    {
        lock (_meters)
        {
            return _meters.Contains(meter);
        }
    }

    public void Dispose()
    {
        lock (_meters)
        {
            _meters.ForEach(m => m.Dispose());
        }
    }
}

/// <summary>Collects log entries; <see cref="Errors"/> lets a test fail on unexpected error logs.</summary>
public sealed class ListLogger<T> : ILogger<T>
{
    private readonly List<(LogLevel Level, EventId Id, string Message)> _entries = [];

    public IReadOnlyList<(LogLevel Level, EventId Id, string Message)> Entries
    {
        get
        {
            lock (_entries)
            {
                return [.. _entries];
            }
        }
    }

    public IEnumerable<string> Errors => Entries.Where(e => e.Level >= LogLevel.Error).Select(e => e.Message);

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        lock (_entries)
        {
            _entries.Add((logLevel, eventId, formatter(state, exception)));
        }
    }
}

/// <summary>A dataplane whose reads and writes a test can intercept (to race them or make them fail).</summary>
public sealed class HookedDataplane(IDataplane inner) : IDataplane
{
    public IDataplane Inner => inner;

    public Func<Task>? AfterRead { get; set; }

    /// <summary>Returns an exception to fail the write with (before anything is applied), or null to let it through.</summary>
    public Func<IReadOnlyList<PeerConfig>, Exception?>? BeforeApply { get; set; }

    public Func<Exception?>? BeforeRead { get; set; }

    public string Mode => inner.Mode;

    public string NatDriver => inner.NatDriver;

    public IReadOnlyList<string> NativeFeatures => inner.NativeFeatures;

    public Task InitializeAsync(CancellationToken cancellationToken) => inner.InitializeAsync(cancellationToken);

    /// <summary>Returns an exception to fail a Connect's write with, or null to let it through.</summary>
    public Func<Exception?>? BeforeAdd { get; set; }

    public Task AddPeerAsync(WireGuardKey publicKey, IPAddress clientAddress, IPAddress clientAddress6, CancellationToken cancellationToken) =>
        BeforeAdd?.Invoke() is { } failure ? Task.FromException(failure) : inner.AddPeerAsync(publicKey, clientAddress, clientAddress6, cancellationToken);

    public Task<IReadOnlyList<Vpn.Core.Nat.FirewallCounter>> ReadFilterCountersAsync(CancellationToken cancellationToken) =>
        inner.ReadFilterCountersAsync(cancellationToken);

    public Task RemovePeerAsync(WireGuardKey publicKey, CancellationToken cancellationToken) => inner.RemovePeerAsync(publicKey, cancellationToken);

    public Task ApplyPeerChangesAsync(IReadOnlyList<PeerConfig> changes, CancellationToken cancellationToken) =>
        BeforeApply?.Invoke(changes) is { } failure ? Task.FromException(failure) : inner.ApplyPeerChangesAsync(changes, cancellationToken);

    public async Task<DeviceSnapshot> ReadAsync(CancellationToken cancellationToken)
    {
        if (BeforeRead?.Invoke() is { } failure)
        {
            throw failure;
        }
        var snapshot = await inner.ReadAsync(cancellationToken);
        if (AfterRead is { } hook)
        {
            await hook();
        }
        return snapshot;
    }

    /// <summary>Returns an exception to fail the device probe with, or null to let it through.</summary>
    public Func<Exception?>? BeforeProbe { get; set; }

    public Task ProbeAsync(CancellationToken cancellationToken) =>
        BeforeProbe?.Invoke() is { } failure ? Task.FromException(failure) : inner.ProbeAsync(cancellationToken);
}

/// <summary>Registry, reconciler and counters over a dataplane, with a manual clock and a fake entry.</summary>
public sealed class ReconcileRig : IDisposable
{
    public static readonly TimeSpan Grace = TimeSpan.FromSeconds(120);
    public static readonly TimeSpan Quarantine = TimeSpan.FromSeconds(180);

    /// <param name="wipeClock">The idle wipe's clock (it compares with the device's handshake times); default <see cref="Clock"/>.</param>
    public ReconcileRig(IDataplane? dataplane = null, CoreOptions? options = null, TimeProvider? wipeClock = null)
    {
        Options = options ?? NoopOptions();
        Noop = dataplane as NoopDataplane ?? (dataplane as HookedDataplane)?.Inner as NoopDataplane ?? new NoopDataplane();
        Dataplane = dataplane ?? Noop;
        Registry = new PeerRegistry(Options, Dataplane, Clock, Signal);
        Metrics = new ReconcileMetrics(Meters, Clock);
        Wiper = new IdlePeerWiper(Options, Registry, Signal, wipeClock ?? Clock, Metrics, WiperLog);
        Reconciler = new Reconciler(Options, Desired, Dataplane, Registry, Metrics, Wiper, Log, Usage);
    }

    public static readonly Ipv4Network Pool = Ipv4Network.Parse("10.64.0.0/24");

    public static readonly Ipv6ClientNetwork Pool6 = Pool6For(Pool);

    /// <summary>The default IPv6 client network paired with <paramref name="pool"/>, as core pairs it with WG_CLIENT_POOL.</summary>
    public static Ipv6ClientNetwork Pool6For(Ipv4Network pool) =>
        Ipv6ClientNetwork.TryCreate("fd64:6400::/64", pool, out var network, out var error) ? network : throw new InvalidOperationException(error);

    /// <param name="peerIdleWipe">CORE_PEER_IDLE_WIPE_SECS as a span; null keeps core's default.</param>
    public static CoreOptions NoopOptions(TimeSpan? peerIdleWipe = null) => new()
    {
        ClientPool = Pool,
        ClientPool6 = Pool6,
        EntryUrl = new Uri("unix:/nonexistent/entry.sock"),
        NodeId = Guid.Parse("0195a8c4-0000-7000-8000-000000000001"),
        AdminToken = "test-admin-token",
        ReconcileGrace = Grace,
        AddressQuarantine = Quarantine,
        PeerIdleWipe = peerIdleWipe ?? new CoreOptions().PeerIdleWipe,
    };

    public CoreOptions Options { get; }

    public ManualClock Clock { get; } = new();

    public FakeDesiredState Desired { get; } = new();

    /// <summary>Fed by every pass's device read, as in production (nothing reports it: there is no entry).</summary>
    public Vpn.Core.Usage.UsageMeter Usage { get; } = new();

    public ReconcileSignal Signal { get; } = new();

    public TestMeterFactory Meters { get; } = new();

    public ListLogger<Reconciler> Log { get; } = new();

    public ListLogger<IdlePeerWiper> WiperLog { get; } = new();

    public IdlePeerWiper Wiper { get; }

    public NoopDataplane Noop { get; }

    public IDataplane Dataplane { get; }

    public PeerRegistry Registry { get; }

    public ReconcileMetrics Metrics { get; }

    public Reconciler Reconciler { get; }

    public Task<ReconcileOutcome> PassAsync() => Reconciler.RunPassAsync(TestContext.Current.CancellationToken);

    /// <summary>A rig past a first pass with nothing desired: the leases reflect the database and Connect is accepted.</summary>
    public static async Task<ReconcileRig> SyncedAsync(IDataplane? dataplane = null)
    {
        var rig = new ReconcileRig(dataplane);
        rig.Desired.Set();
        await rig.PassAsync();
        return rig;
    }

    /// <summary>A Connect of a new session with a new device key (no claim order), which must connect.</summary>
    public async Task<(Guid Session, WireGuardKey Key, PeerLease Lease)> ConnectNewAsync()
    {
        var (session, key) = (Guid.NewGuid(), Key());
        var (outcome, lease) = await Registry.ConnectAsync(session, key, 0, TestContext.Current.CancellationToken);
        Assert.Equal(ConnectOutcome.Connected, outcome);
        return (session, key, lease!);
    }

    /// <summary>The device's peers as "key=allowed,ips", sorted, for comparing with <see cref="Expected"/>.</summary>
    public async Task<string[]> DeviceAsync() =>
        [.. (await Dataplane.ReadAsync(TestContext.Current.CancellationToken)).Peers
            .Select(p => $"{p.PublicKey}={string.Join(',', p.AllowedIps.Select(n => n.ToString()).Order(StringComparer.Ordinal))}")
            .Order(StringComparer.Ordinal)];

    /// <summary>Each peer with exactly its /32 and the /128 paired with it.</summary>
    public static string[] Expected(params (WireGuardKey Key, string Address)[] peers) =>
        [.. peers.Select(p => $"{p.Key}={p.Address}/32,{Pool6.AddressFor(IPAddress.Parse(p.Address))}/128").Order(StringComparer.Ordinal)];

    public void Dispose()
    {
        Meters.Dispose();
        Signal.Dispose();
    }

    public static DesiredSession Active(WireGuardKey key, string address, Guid? sessionId = null) =>
        new(sessionId ?? Guid.NewGuid(), key, IPAddress.Parse(address), DesiredSessionState.Active);

    public static DesiredSession Provisioning(WireGuardKey key, Guid sessionId) => new(sessionId, key, null, DesiredSessionState.Provisioning);

    public static WireGuardKey Key() => WireGuardKey.Generate();

    public Task ByHandAsync(params PeerConfig[] changes) => Noop.ApplyPeerChangesAsync(changes, TestContext.Current.CancellationToken);

    public static PeerConfig Peer(WireGuardKey key, params string[] allowed) =>
        new() { PublicKey = key, ReplaceAllowedIps = true, AllowedIps = [.. allowed.Select(IPNetwork.Parse)] };

    public static PeerConfig Remove(WireGuardKey key) => new() { PublicKey = key, Remove = true };
}
