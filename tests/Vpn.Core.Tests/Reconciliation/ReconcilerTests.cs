using System.Diagnostics.Metrics;
using System.Net;
using Vpn.Core.Control;
using Vpn.Core.Dataplane;
using Vpn.Core.Reconciliation;
using Vpn.Core.WireGuard;
using static Vpn.Core.Tests.Reconciliation.ReconcileRig;

namespace Vpn.Core.Tests.Reconciliation;

/// <summary>The reconciler's decisions against the in-memory dataplane, a fake entry and a manual clock.</summary>
public class ReconcilerTests
{
    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task RunPass_FetchFailsBeforeFirstSync_PrunesNothingAndRefusesConnect()
    {
        using var rig = new ReconcileRig();
        var unknown = Key();
        await rig.ByHandAsync(Peer(unknown, "10.64.0.9/32", "fd64:6400::9/128"));
        rig.Desired.Fail();

        var outcome = await rig.PassAsync();

        Assert.Equal("entry_unavailable", outcome.FailureReason);
        Assert.Equal(Expected((unknown, "10.64.0.9")), await rig.DeviceAsync());
        Assert.False(rig.Registry.IsSynced);
        Assert.Equal(ConnectOutcome.NotSynced, (await rig.Registry.ConnectAsync(Guid.NewGuid(), Key(), 0, Token)).Outcome);
        Assert.Equal(new ReconcileStatus(false, 1, 1, 0, 0, 0, 0, 0), rig.Metrics.Snapshot());
    }

    [Fact]
    public async Task RunPass_FirstSuccessfulFetch_AddsRemovesCorrectsAndCounts()
    {
        using var rig = new ReconcileRig();
        var (missing, drifted, asDesired, rogue) = (Key(), Key(), Key(), Key());
        await rig.ByHandAsync(Peer(drifted, "10.64.0.77/32", "10.99.0.0/16"), Peer(asDesired, "10.64.0.4/32", "fd64:6400::4/128"), Peer(rogue, "10.64.0.5/32"));
        rig.Desired.Set(Active(missing, "10.64.0.2"), Active(drifted, "10.64.0.3"), Active(asDesired, "10.64.0.4"));

        var outcome = await rig.PassAsync();

        Assert.True(outcome.Succeeded);
        Assert.Equal(Expected((missing, "10.64.0.2"), (drifted, "10.64.0.3"), (asDesired, "10.64.0.4")), await rig.DeviceAsync());
        Assert.True(rig.Registry.IsSynced);
        Assert.Equal(3, rig.Registry.Count);
        var status = rig.Metrics.Snapshot();
        Assert.Equal((true, 1L, 0L, 1L, 1L, 1L), (status.Synced, status.Passes, status.Failures, status.PeersAdded, status.PeersRemoved, status.PeersCorrected));
        Assert.Equal(rig.Clock.GetUtcNow().ToUnixTimeMilliseconds(), status.LastSuccessUnixMs);
        Assert.Contains(rig.Log.Entries, e => e.Id.Id == 601 && e.Message.Contains(rogue.ToBase64(), StringComparison.Ordinal));
        Assert.Empty(rig.Log.Errors);
    }

    [Fact]
    public async Task RunPass_NothingDrifted_WritesNothing()
    {
        var writes = 0;
        var hooked = new HookedDataplane(new NoopDataplane()) { BeforeApply = c => { writes += c.Count; return null; } };
        using var rig = new ReconcileRig(hooked);
        var key = Key();
        rig.Desired.Set(Active(key, "10.64.0.2"));
        await rig.PassAsync();
        writes = 0;

        var outcome = await rig.PassAsync();

        Assert.Equal((true, 0, 0, 0), (outcome.Succeeded, outcome.Added, outcome.Removed, outcome.Corrected));
        Assert.Equal(0, writes);
    }

    [Fact]
    public async Task RunPass_EntryUnreachableAfterSync_KeepsLastKnownGoodRestoresAndPrunesNothing()
    {
        using var rig = new ReconcileRig();
        var (a, b, rogue) = (Key(), Key(), Key());
        rig.Desired.Set(Active(a, "10.64.0.2"), Active(b, "10.64.0.3"));
        await rig.PassAsync();
        await rig.ByHandAsync(Remove(a), Peer(b, "10.64.0.50/32"), Peer(rogue, "10.64.0.9/32", "fd64:6400::9/128"));
        rig.Desired.Fail();

        var outcome = await rig.PassAsync();

        Assert.Equal(("entry_unavailable", 1, 0, 1), (outcome.FailureReason, outcome.Added, outcome.Removed, outcome.Corrected));
        Assert.Equal(Expected((a, "10.64.0.2"), (b, "10.64.0.3"), (rogue, "10.64.0.9")), await rig.DeviceAsync());
        Assert.Equal(2, rig.Registry.Count);
        Assert.False(rig.Metrics.Snapshot().Synced);
        Assert.True(rig.Registry.IsSynced);
        Assert.Contains(rig.Log.Entries, e => e.Id.Id == 609);
    }

    [Fact]
    public async Task RunPass_EntryUnreachableLongerThanGrace_KeepsFreshConnects()
    {
        using var rig = new ReconcileRig();
        rig.Desired.Set();
        await rig.PassAsync();
        var key = Key();
        var (_, lease) = await rig.Registry.ConnectAsync(Guid.NewGuid(), key, 0, Token);
        rig.Desired.Fail();
        rig.Clock.Advance(Grace * 3);

        await rig.PassAsync();

        Assert.Equal(Expected((key, lease!.Address.ToString())), await rig.DeviceAsync());
    }

    [Fact]
    public async Task RunPass_DuplicateAddressInDesiredSet_RejectsItWhole()
    {
        using var rig = new ReconcileRig();
        var (a, b, c) = (Key(), Key(), Key());
        rig.Desired.Set(Active(a, "10.64.0.2"), Active(b, "10.64.0.3"));
        await rig.PassAsync();
        rig.Desired.Set(Active(a, "10.64.0.2"), Active(c, "10.64.0.2"));

        var outcome = await rig.PassAsync();

        Assert.Equal("desired_state_rejected", outcome.FailureReason);
        Assert.Equal(Expected((a, "10.64.0.2"), (b, "10.64.0.3")), await rig.DeviceAsync());
        Assert.Equal(2, rig.Registry.Count);
        Assert.Contains(rig.Log.Errors, m => m.Contains("10.64.0.2 is given to more than one peer", StringComparison.Ordinal));
    }

    [Fact]
    public async Task RunPass_DuplicateKeyInDesiredSet_RejectsItWhole()
    {
        using var rig = new ReconcileRig();
        var (a, rogue) = (Key(), Key());
        await rig.ByHandAsync(Peer(rogue, "10.64.0.9/32", "fd64:6400::9/128"));
        rig.Desired.Set(Active(a, "10.64.0.2"), Active(a, "10.64.0.3"));

        var outcome = await rig.PassAsync();

        Assert.Equal("desired_state_rejected", outcome.FailureReason);
        Assert.Equal(Expected((rogue, "10.64.0.9")), await rig.DeviceAsync());
        Assert.False(rig.Registry.IsSynced);
    }

    [Fact]
    public async Task RunPass_FreshConnectNotYetInDesiredSet_KeptForGraceThenRemovedAndAddressQuarantined()
    {
        using var rig = new ReconcileRig();
        rig.Desired.Set();
        await rig.PassAsync();
        var key = Key();
        var session = Guid.NewGuid();
        var (_, lease) = await rig.Registry.ConnectAsync(session, key, 0, Token);

        rig.Clock.Advance(Grace - TimeSpan.FromSeconds(1));
        await rig.PassAsync();
        Assert.Equal(Expected((key, "10.64.0.2")), await rig.DeviceAsync());

        rig.Clock.Advance(TimeSpan.FromSeconds(1));
        var outcome = await rig.PassAsync();

        Assert.Equal(1, outcome.Removed);
        Assert.Empty(await rig.DeviceAsync());
        Assert.Null(rig.Registry.Find(session));
        Assert.Contains(rig.Log.Entries, e => e.Id.Id == 603 && e.Message.Contains(session.ToString(), StringComparison.Ordinal));
        var (_, next) = await rig.Registry.ConnectAsync(Guid.NewGuid(), Key(), 0, Token);
        Assert.NotEqual(lease!.Address, next!.Address);
    }

    [Fact]
    public async Task RunPass_SessionStillProvisioning_KeptForGraceThenDropped()
    {
        using var rig = new ReconcileRig();
        rig.Desired.Set();
        await rig.PassAsync();
        var key = Key();
        var session = Guid.NewGuid();
        await rig.Registry.ConnectAsync(session, key, 0, Token);
        rig.Desired.Set(Provisioning(key, session));

        await rig.PassAsync();
        Assert.Equal(Expected((key, "10.64.0.2")), await rig.DeviceAsync());

        rig.Clock.Advance(Grace);
        await rig.PassAsync();
        Assert.Empty(await rig.DeviceAsync());
    }

    [Fact]
    public async Task RunPass_CoreRestartedBeforeEntryCommitted_KeepsTheProvisioningPeerAndItsAddress()
    {
        using var rig = new ReconcileRig();
        var key = Key();
        var session = Guid.NewGuid();
        // What the previous core process left on the device: a Connect entry has not committed yet.
        await rig.ByHandAsync(Peer(key, "10.64.0.2/32"));
        rig.Desired.Set(Provisioning(key, session));

        await rig.PassAsync();

        Assert.Equal(Expected((key, "10.64.0.2")), await rig.DeviceAsync());
        Assert.Equal("10.64.0.3", (await rig.Registry.ConnectAsync(Guid.NewGuid(), Key(), 0, Token)).Lease!.Address.ToString());
        Assert.Equal("10.64.0.2", rig.Registry.Find(session)!.Address.ToString());

        rig.Clock.Advance(Grace);
        rig.Desired.Set(Active(key, "10.64.0.2", session));
        var outcome = await rig.PassAsync();
        Assert.Equal((0, 0), (outcome.Added, outcome.Corrected));
        Assert.Equal(Expected((key, "10.64.0.2")), await rig.DeviceAsync());
    }

    [Fact]
    public async Task RunPass_ConnectConfirmedActive_SurvivesGraceAndGoesWhenTheSessionEnds()
    {
        using var rig = new ReconcileRig();
        rig.Desired.Set();
        await rig.PassAsync();
        var key = Key();
        var session = Guid.NewGuid();
        var (_, lease) = await rig.Registry.ConnectAsync(session, key, 0, Token);
        rig.Desired.Set(Active(key, $"{lease!.Address}", session));
        await rig.PassAsync();

        rig.Clock.Advance(Grace * 2);
        var kept = await rig.PassAsync();
        Assert.Equal(Expected((key, lease.Address.ToString())), await rig.DeviceAsync());
        Assert.Equal(0, kept.Removed);

        rig.Desired.Set();
        await rig.PassAsync();
        Assert.Empty(await rig.DeviceAsync());
    }

    [Fact]
    public async Task RunPass_StaleSnapshotListsJustDisconnectedSession_NotReaddedUntilGraceEnds()
    {
        using var rig = new ReconcileRig();
        var key = Key();
        var session = Guid.NewGuid();
        rig.Desired.Set(Active(key, "10.64.0.7", session));
        await rig.PassAsync();

        Assert.NotNull(await rig.Registry.DisconnectAsync(session, Token));
        await rig.PassAsync();
        Assert.Empty(await rig.DeviceAsync());

        // Entry never committed the end of the session: the database is the truth once local knowledge is old.
        rig.Clock.Advance(Grace);
        await rig.PassAsync();
        Assert.Equal(Expected((key, "10.64.0.7")), await rig.DeviceAsync());
    }

    [Fact]
    public async Task RunPass_ReplaceExistingOnSameDevice_KeepsTheNewSession()
    {
        // Entry's replace_existing: Disconnect(old) then Connect(new) with the same device key, committed afterwards.
        using var rig = new ReconcileRig();
        var key = Key();
        var old = Guid.NewGuid();
        rig.Desired.Set(Active(key, "10.64.0.2", old));
        await rig.PassAsync();
        await rig.Registry.DisconnectAsync(old, Token);
        var (outcome, lease) = await rig.Registry.ConnectAsync(Guid.NewGuid(), key, 0, Token);
        Assert.Equal(ConnectOutcome.Connected, outcome);

        await rig.PassAsync();

        Assert.Equal(Expected((key, lease!.Address.ToString())), await rig.DeviceAsync());
    }

    [Fact]
    public async Task RunPass_ActiveSessionsAdopted_ConnectGetsAFreeAddress()
    {
        using var rig = new ReconcileRig();
        rig.Desired.Set(Active(Key(), "10.64.0.2"), Active(Key(), "10.64.0.3"), Active(Key(), "10.64.0.5"));
        await rig.PassAsync();

        var addresses = new List<IPAddress>();
        for (var i = 0; i < 3; i++)
        {
            addresses.Add((await rig.Registry.ConnectAsync(Guid.NewGuid(), Key(), 0, Token)).Lease!.Address);
        }

        Assert.Equal(["10.64.0.4", "10.64.0.6", "10.64.0.7"], addresses.Select(a => a.ToString()));
    }

    [Fact]
    public async Task RunPass_DatabaseAddressClashesWithFreshLease_DatabaseWins()
    {
        using var rig = new ReconcileRig();
        rig.Desired.Set();
        await rig.PassAsync();
        var fresh = Key();
        var (_, lease) = await rig.Registry.ConnectAsync(Guid.NewGuid(), fresh, 0, Token);
        var owner = Key();
        rig.Desired.Set(Active(owner, lease!.Address.ToString()));

        await rig.PassAsync();

        Assert.Equal(Expected((owner, lease.Address.ToString())), await rig.DeviceAsync());
        Assert.Equal(1, rig.Registry.Count);
    }

    [Fact]
    public async Task RunPass_DeviceRecreated_ReinitializesAndRestoresEveryPeer()
    {
        using var rig = new ReconcileRig();
        var (a, b) = (Key(), Key());
        rig.Desired.Set(Active(a, "10.64.0.2"), Active(b, "10.64.0.3"));
        await rig.PassAsync();

        rig.Noop.Reset();
        var outcome = await rig.PassAsync();

        Assert.Equal((true, 2), (outcome.Succeeded, outcome.Added));
        Assert.False((await rig.Noop.ReadAsync(Token)).NeedsInitialization);
        Assert.Equal(Expected((a, "10.64.0.2"), (b, "10.64.0.3")), await rig.DeviceAsync());
        Assert.Equal(1, rig.Metrics.Snapshot().DeviceReinitializations);
    }

    [Fact]
    public async Task RunPass_DeviceRecreatedWhileEntryDown_RestoresLastKnownGood()
    {
        using var rig = new ReconcileRig();
        var a = Key();
        rig.Desired.Set(Active(a, "10.64.0.2"));
        await rig.PassAsync();
        rig.Desired.Fail();

        rig.Noop.Reset();
        await rig.PassAsync();

        Assert.Equal(Expected((a, "10.64.0.2")), await rig.DeviceAsync());
    }

    [Fact]
    public async Task RunPass_ConnectAndDisconnectWhileDeviceIsRead_LeftToTheirOwnChange()
    {
        var hooked = new HookedDataplane(new NoopDataplane());
        using var rig = new ReconcileRig(hooked);
        var leaving = Guid.NewGuid();
        var leavingKey = Key();
        rig.Desired.Set(Active(leavingKey, "10.64.0.2", leaving));
        await rig.PassAsync();
        var joiningKey = Key();
        hooked.AfterRead = async () =>
        {
            hooked.AfterRead = null;
            await rig.Registry.DisconnectAsync(leaving, Token);
            await rig.Registry.ConnectAsync(Guid.NewGuid(), joiningKey, 0, Token);
        };

        // The snapshot predates both changes: it still lists the leaving session and not the joining one.
        var outcome = await rig.PassAsync();

        Assert.Equal((0, 0, 0), (outcome.Added, outcome.Removed, outcome.Corrected));
        Assert.Equal(Expected((joiningKey, "10.64.0.3")), await rig.DeviceAsync());
    }

    [Fact]
    public async Task RunPass_DeviceWriteFailsOnce_RereadsAndRetries()
    {
        var hooked = new HookedDataplane(new NoopDataplane());
        using var rig = new ReconcileRig(hooked);
        var failures = 0;
        hooked.BeforeApply = changes => changes.Count > 0 && failures++ == 0 ? new UapiException(-22) : null;
        var key = Key();
        rig.Desired.Set(Active(key, "10.64.0.2"));

        var outcome = await rig.PassAsync();

        Assert.True(outcome.Succeeded);
        Assert.Equal(Expected((key, "10.64.0.2")), await rig.DeviceAsync());
        Assert.Contains(rig.Log.Entries, e => e.Id.Id == 611 && e.Message.Contains("errno=-22", StringComparison.Ordinal));
    }

    [Fact]
    public async Task RunPass_DeviceUnreachable_FailsWithoutTouchingLeases()
    {
        var hooked = new HookedDataplane(new NoopDataplane());
        using var rig = new ReconcileRig(hooked);
        var key = Key();
        rig.Desired.Set(Active(key, "10.64.0.2"));
        await rig.PassAsync();
        hooked.BeforeRead = () => new UapiUnavailableException("socket gone (test)", null);

        var outcome = await rig.PassAsync();

        Assert.Equal("device_error", outcome.FailureReason);
        Assert.Equal(1, rig.Registry.Count);
        Assert.Equal(1, rig.Metrics.Snapshot().Failures);
    }

    [Fact]
    public async Task ConnectAsync_DeviceWriteFails_ForgetsTheLeaseAndRequestsAPass()
    {
        using var signal = new ReconcileSignal();
        var options = new Vpn.Core.Configuration.CoreOptions { ClientPool = Domain.Addressing.Ipv4Network.Parse("10.64.0.0/24") };
        var registry = new PeerRegistry(options, new FailingAddDataplane(new NoopDataplane()), new ManualClock(), signal);

        await Assert.ThrowsAsync<UapiException>(() => registry.ConnectAsync(Guid.NewGuid(), Key(), 0, Token));

        Assert.True(await signal.WaitAsync(TimeSpan.Zero, Token));
        Assert.Equal(0, registry.Count);
    }

    [Fact]
    public async Task RunPass_Counters_PublishedOnTheVpnCoreMeter()
    {
        using var rig = new ReconcileRig();
        var measured = new Dictionary<string, long>();
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                // Other tests' rigs publish on meters of the same name at the same time.
                if (instrument.Meter.Name == ReconcileMetrics.MeterName && rig.Meters.Owns(instrument.Meter))
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, _, _) =>
        {
            lock (measured)
            {
                measured[instrument.Name] = measured.GetValueOrDefault(instrument.Name) + value;
            }
        });
        listener.Start();
        await rig.ByHandAsync(Peer(Key(), "10.64.0.9/32"));
        rig.Desired.Set(Active(Key(), "10.64.0.2"));
        await rig.PassAsync();
        rig.Desired.Fail();
        await rig.PassAsync();

        lock (measured)
        {
            Assert.Equal(2, measured["vpn.core.reconcile.passes"]);
            Assert.Equal(1, measured["vpn.core.reconcile.failures"]);
            Assert.Equal(1, measured["vpn.core.reconcile.peers_added"]);
            Assert.Equal(1, measured["vpn.core.reconcile.peers_removed"]);
        }
    }

    /// <summary>Every Connect write fails as a refused UAPI set would.</summary>
    private sealed class FailingAddDataplane(IDataplane inner) : IDataplane
    {
        public string Mode => inner.Mode;

        public string NatDriver => inner.NatDriver;

        public IReadOnlyList<string> NativeFeatures => inner.NativeFeatures;

        public Task InitializeAsync(CancellationToken cancellationToken) => inner.InitializeAsync(cancellationToken);

        public Task AddPeerAsync(Domain.WireGuard.WireGuardKey publicKey, IPAddress clientAddress, IPAddress clientAddress6, CancellationToken cancellationToken) =>
            Task.FromException(new UapiException(-22));

        public Task<IReadOnlyList<Vpn.Core.Nat.FirewallCounter>> ReadFilterCountersAsync(CancellationToken cancellationToken) =>
            inner.ReadFilterCountersAsync(cancellationToken);

        public Task RemovePeerAsync(Domain.WireGuard.WireGuardKey publicKey, CancellationToken cancellationToken) => inner.RemovePeerAsync(publicKey, cancellationToken);

        public Task ApplyPeerChangesAsync(IReadOnlyList<PeerConfig> changes, CancellationToken cancellationToken) =>
            inner.ApplyPeerChangesAsync(changes, cancellationToken);

        public Task<DeviceSnapshot> ReadAsync(CancellationToken cancellationToken) => inner.ReadAsync(cancellationToken);

        public Task ProbeAsync(CancellationToken cancellationToken) => inner.ProbeAsync(cancellationToken);
    }
}
