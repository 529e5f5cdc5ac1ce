using static Vpn.Core.Tests.Reconciliation.ReconcileRig;

namespace Vpn.Core.Tests.Reconciliation;

/// <summary>The reconciler's decisions against the in-memory dataplane, a fake entry and a manual clock: what a pass adds, removes and refuses.</summary>
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
}
