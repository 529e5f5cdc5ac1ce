using System.Collections.Frozen;
using System.Net;
using CsCheck;
using Vpn.Core.Control;
using Vpn.Core.Reconciliation;
using Vpn.Domain.Addressing;
using Vpn.Domain.Reconciliation;
using Vpn.Domain.WireGuard;

namespace Vpn.Core.Tests.Reconciliation;

/// <summary>The reconcile rules as plain inputs → decision: no registry, dataplane or clock.</summary>
public class ReconcileRulesTests
{
    private const long Grace = 120;
    private const long Now = 1_000;

    private static readonly Ipv4Network Pool = Ipv4Network.Parse("10.64.0.0/24");
    private static readonly Ipv6ClientNetwork Pool6 =
        Ipv6ClientNetwork.TryCreate("fd64:6400::/64", Pool, out var network, out var error) ? network : throw new InvalidOperationException(error);

    // Keys, sessions and addresses come from small ranges so that leases, snapshot and device overlap often.
    private static WireGuardKey Key(int index)
    {
        var bytes = new byte[WireGuardKey.Length];
        BitConverter.TryWriteBytes(bytes, index + 1);
        bytes[31] = 0x5a;
        return WireGuardKey.FromBytes(bytes);
    }

    private static Guid Session(int index) => new(index + 1, 0, 0, new byte[8]);

    private static IPAddress Host(int offset) => Ipv4Network.ToAddress(Pool.Base + (uint)offset);

    private static LeaseState Lease(int session, int key, int address, bool confirmed, long since = Now) =>
        new(new PeerLease(Session(session), Key(key), Host(address), Pool6.AddressFor(Host(address))), confirmed, since);

    private static DesiredSession Active(int session, int key, int address) =>
        new(Session(session), Key(key), Host(address), DesiredSessionState.Active, Pool6.AddressFor(Host(address)));

    private static DesiredSession Provisioning(int session, int key) => new(Session(session), Key(key), null, DesiredSessionState.Provisioning);

    private static LivePeer Live(int key, params string[] allowed) => new(Key(key), [.. allowed.Select(IPNetwork.Parse)]);

    /// <summary>A live peer exactly as a lease of <paramref name="address"/> wants it: its /32 and paired /128.</summary>
    private static LivePeer Exact(int key, int address) => new(Key(key), [new IPNetwork(Host(address), 32), new IPNetwork(Pool6.AddressFor(Host(address)), 128)]);

    /// <param name="desired">The snapshot's sessions; null for no snapshot (entry unreachable).</param>
    private static ReconcileDecision Decide(DesiredSession[]? desired, LeaseState[]? leases = null, LivePeer[]? live = null, long now = Now,
        bool firstSync = false, Dictionary<Guid, long>? disconnected = null, IReadOnlySet<WireGuardKey>? unsettled = null) =>
        ReconcileRules.Decide(new ReconcileInput(
            (leases ?? []).ToDictionary(l => l.Lease.SessionId),
            disconnected ?? [],
            desired is null ? null : new DesiredSnapshot(DateTimeOffset.UnixEpoch, desired),
            live ?? [],
            now,
            Grace,
            firstSync,
            Pool,
            Pool6,
            unsettled ?? FrozenSet<WireGuardKey>.Empty));

    [Fact]
    public void Decide_UnconfirmedConnectNotListed_KeptUntilGracePasses()
    {
        LeaseState[] leases = [Lease(1, 1, 2, confirmed: false, since: Now)];
        LivePeer[] live = [Exact(1, 2)];

        var within = Decide([], leases, live, now: Now + Grace - 1);
        var after = Decide([], leases, live, now: Now + Grace);

        Assert.Empty(within.Dropped);
        Assert.Equal((0, 1, 1), (within.ChangeCount, within.Unchanged, within.LeaseCount));
        Assert.Equal([leases[0].Lease], after.Dropped);
        Assert.Equal([Key(1)], after.Removes);
        Assert.Equal(0, after.LeaseCount);
    }

    [Fact]
    public void Decide_RecentDisconnectListedByStaleSnapshot_NotReaddedUntilGracePasses()
    {
        DesiredSession[] stale = [Active(1, 1, 7)];
        var disconnected = new Dictionary<Guid, long> { [Session(1)] = Now };

        var within = Decide(stale, disconnected: disconnected, now: Now + Grace - 1);
        var after = Decide(stale, disconnected: disconnected, now: Now + Grace);

        Assert.True(within.Full);
        Assert.Empty(within.Adopted);
        Assert.Empty(within.Adds);
        Assert.Empty(within.ForgottenDisconnects);
        // Entry never committed the end of the session: the database is the truth once local knowledge is old.
        Assert.Equal([Session(1)], after.ForgottenDisconnects);
        Assert.Equal([Host(7)], after.Adopted.Select(l => l.Lease.Address));
        Assert.Equal([new DesiredPeer(Key(1), Host(7), Pool6.AddressFor(Host(7)))], after.Adds);
    }

    [Fact]
    public void Decide_RecentDisconnectReconnectedWithSameKey_NewLeaseKept()
    {
        // replace_existing: Disconnect(old) and Connect(new) with one device key; the snapshot still lists the old session.
        var disconnected = new Dictionary<Guid, long> { [Session(1)] = Now };

        var decision = Decide([Active(1, 1, 2)], [Lease(2, 1, 3, confirmed: false)], [Exact(1, 3)], disconnected: disconnected);

        Assert.Empty(decision.Dropped);
        Assert.Empty(decision.Adopted);
        Assert.Equal(0, decision.ChangeCount);
    }

    [Fact]
    public void Decide_DatabaseListsAnotherSessionWithALeasesAddress_DatabaseWins()
    {
        var fresh = Lease(1, 1, 2, confirmed: false);

        var decision = Decide([Active(2, 2, 2)], [fresh], [Exact(1, 2)]);

        Assert.Equal([fresh.Lease], decision.Dropped);
        var adopted = Assert.Single(decision.Adopted);
        Assert.Equal((Session(2), Key(2), Host(2), true), (adopted.Lease.SessionId, adopted.Lease.PublicKey, adopted.Lease.Address, adopted.Confirmed));
        Assert.Equal([Key(1)], decision.Removes);
        Assert.Equal([Key(2)], decision.Adds.Select(p => p.PublicKey));
        Assert.Equal(1, decision.LeaseCount);
    }

    [Fact]
    public void Decide_DatabaseListsAnotherSessionWithALeasesKey_DatabaseWins()
    {
        var fresh = Lease(1, 1, 2, confirmed: false);

        var decision = Decide([Active(2, 1, 3)], [fresh], [Exact(1, 2)]);

        Assert.Equal([fresh.Lease], decision.Dropped);
        Assert.Equal([(Session(2), Host(3))], decision.Adopted.Select(l => (l.Lease.SessionId, l.Lease.Address)));
        Assert.Equal([new DesiredPeer(Key(1), Host(3), Pool6.AddressFor(Host(3)))], decision.Corrections);
    }

    [Fact]
    public void Decide_ConfirmedLeaseNoLongerListed_Dropped()
    {
        var ended = Lease(1, 1, 2, confirmed: true, since: Now);

        var decision = Decide([], [ended], [Exact(1, 2)]);

        Assert.Equal([ended.Lease], decision.Dropped);
        Assert.Equal([Key(1)], decision.Removes);
    }

    [Fact]
    public void Decide_UnconfirmedLeaseListed_ConfirmedAndKeptPastGrace()
    {
        var decision = Decide([Active(1, 1, 2), Active(2, 2, 3)], [Lease(1, 1, 2, confirmed: false, since: 0), Lease(2, 2, 3, confirmed: true, since: 0)],
            [Exact(1, 2), Exact(2, 3)]);

        Assert.Equal([Session(1)], decision.Confirmed);
        Assert.Empty(decision.Dropped);
        Assert.Empty(decision.Adopted);
        Assert.Equal((0, 2), (decision.ChangeCount, decision.Unchanged));
    }

    [Fact]
    public void Decide_FirstSyncProvisioningPeerOnDevice_AdoptedWithBothAddressesOnlyOnFirstSync()
    {
        DesiredSession[] desired = [Provisioning(1, 1)];
        LivePeer[] live = [Live(1, "10.64.0.5/32", "fd64:6400::5/128")];

        var first = Decide(desired, live: live, firstSync: true);
        var later = Decide(desired, live: live, firstSync: false);

        var adopted = Assert.Single(first.Adopted);
        Assert.Equal(new LeaseState(new PeerLease(Session(1), Key(1), IPAddress.Parse("10.64.0.5"), IPAddress.Parse("fd64:6400::5")), false, Now),
            adopted);
        Assert.Equal((0, 1, 1), (first.ChangeCount, first.Unchanged, first.LeaseCount));
        Assert.Empty(later.Adopted);
        Assert.Equal([Key(1)], later.Removes);
    }

    [Fact]
    public void Decide_FirstSyncProvisioningPeerWithIpv4Only_AdoptedAndItsIpv6Added()
    {
        var decision = Decide([Provisioning(1, 1)], live: [Live(1, "10.64.0.5/32")], firstSync: true);

        Assert.Single(decision.Adopted);
        Assert.Equal([new DesiredPeer(Key(1), Host(5), IPAddress.Parse("fd64:6400::5"))], decision.Corrections);
    }

    [Theory]
    [InlineData("10.64.0.1/32")]
    [InlineData("10.64.0.255/32")]
    [InlineData("10.65.0.5/32")]
    [InlineData("10.64.0.5/32,10.64.0.6/32")]
    [InlineData("10.64.0.4/31")]
    [InlineData("10.64.0.9/32")]
    public void Decide_FirstSyncProvisioningPeerWithoutOneFreeClientAddress_NotAdopted(string allowed)
    {
        // 10.64.0.9 belongs to an active session of the same snapshot: the pool could not reserve it twice.
        var decision = Decide([Provisioning(1, 1), Active(2, 2, 9)], live: [Live(1, allowed.Split(','))], firstSync: true);

        Assert.Equal([Session(2)], decision.Adopted.Select(l => l.Lease.SessionId));
        Assert.Contains(Key(1), decision.Removes);
    }

    [Fact]
    public void Decide_FirstSyncProvisioningPeerRecentlyDisconnected_NotAdopted()
    {
        var decision = Decide([Provisioning(1, 1)], live: [Live(1, "10.64.0.5/32")], firstSync: true,
            disconnected: new Dictionary<Guid, long> { [Session(1)] = Now });

        Assert.Empty(decision.Adopted);
    }

    [Fact]
    public void Decide_NoSnapshot_PrunesNothingAndRepairsFromTheLeases()
    {
        LeaseState[] leases = [Lease(1, 1, 2, confirmed: true, since: 0), Lease(2, 2, 3, confirmed: false, since: 0)];
        LivePeer[] live = [Live(2, "10.64.0.50/32"), Live(9, "10.64.0.9/32")];
        var disconnected = new Dictionary<Guid, long> { [Session(5)] = 0 };

        var decision = Decide(null, leases, live, now: Now + (Grace * 10), disconnected: disconnected);

        Assert.False(decision.Full);
        Assert.Empty(decision.Problems);
        Assert.Empty(decision.Dropped);
        Assert.Empty(decision.ForgottenDisconnects);
        Assert.Empty(decision.Removes);
        Assert.Empty(decision.Quarantined);
        Assert.Equal(1, decision.SkippedRemoves);
        Assert.Equal([Key(1)], decision.Adds.Select(p => p.PublicKey));
        Assert.Equal([Key(2)], decision.Corrections.Select(p => p.PublicKey));
        Assert.Equal(2, decision.LeaseCount);
    }

    [Fact]
    public void Decide_SnapshotRejected_PrunesNothingAndSaysWhy()
    {
        var decision = Decide([Active(1, 1, 2), Active(2, 2, 2)], [Lease(3, 3, 4, confirmed: true)], [Live(9, "10.64.0.9/32")]);

        Assert.False(decision.Full);
        Assert.Contains(decision.Problems, p => p.Contains("10.64.0.2 is given to more than one peer", StringComparison.Ordinal));
        Assert.Empty(decision.Dropped);
        Assert.Empty(decision.Adopted);
        Assert.Empty(decision.Removes);
        Assert.Equal(1, decision.SkippedRemoves);
    }

    [Fact]
    public void Decide_ChangesOfEveryKind_QueuedRemovesThenCorrectionsThenAdds()
    {
        DesiredSession[] desired = [Active(1, 1, 2), Active(2, 2, 3), Active(3, 3, 4), Active(4, 4, 5)];
        LivePeer[] live = [Live(1, "10.64.0.2/32"), Live(9, "10.64.0.9/32"), Live(3, "10.64.0.99/32"), Live(8, "10.64.0.8/32")];

        var changes = Decide(desired, live: live).PeerChanges();

        Assert.Equal([Key(9), Key(8), Key(1), Key(3), Key(2), Key(4)], changes.Select(c => c.PublicKey));
        Assert.All(changes.Take(2), c => Assert.True(c.Remove));
        Assert.All(changes.Skip(2), c =>
        {
            Assert.False(c.Remove);
            Assert.True(c.ReplaceAllowedIps);
            Assert.Equal(2, c.AllowedIps!.Count);
        });
        Assert.Equal(["10.64.0.2/32", "fd64:6400::2/128"], changes[2].AllowedIps!.Select(n => n.ToString()));
    }

    [Fact]
    public void Decide_LivePeersRemoved_TheirIpv4AddressesQuarantined()
    {
        LivePeer[] live = [Live(9, "10.64.0.9/32", "fd64:6400::9/128", "10.99.0.0/16"), Live(8, "10.64.0.8/32"), Exact(1, 2)];

        var decision = Decide([Active(1, 1, 2)], live: live);

        Assert.Equal([Key(9), Key(8)], decision.Removes);
        Assert.Equal([Host(9), Host(8)], decision.Quarantined);
    }

    [Fact]
    public void Decide_UnsettledKeys_LeftToTheirOwnChange()
    {
        LivePeer[] live = [Live(9, "10.64.0.9/32"), Live(2, "10.64.0.99/32")];

        var decision = Decide([Active(1, 1, 2), Active(2, 2, 3)], live: live, unsettled: new HashSet<WireGuardKey> { Key(9), Key(1), Key(2) });

        Assert.Equal(0, decision.ChangeCount);
        Assert.Empty(decision.Quarantined);
        Assert.Equal(2, decision.Adopted.Count);
    }

    /// <summary>Leases, recent Disconnects, a snapshot (or none) and a device drawn so that they clash often.</summary>
    private sealed record Scenario(
        LeaseState[] Leases,
        Dictionary<Guid, long> Disconnected,
        DesiredSession[]? Desired,
        LivePeer[] Live,
        long Grace,
        bool FirstSync,
        WireGuardKey[] Unsettled);

    private const long PropertyNow = 300;

    private static readonly Gen<LeaseState[]> LeasesGen =
        Gen.Select(Gen.Int[0, 11].ArrayUnique[0, 8], Gen.Int[0, 11].ArrayUnique[8], Gen.Int[2, 17].ArrayUnique[8], Gen.Bool.Array[8], Gen.Int[0, 300].Array[8])
            .Select((sessions, keys, addresses, confirmed, since) =>
                sessions.Select((s, i) => Lease(s, keys[i], addresses[i], confirmed[i], since[i])).ToArray());

    private static readonly Gen<DesiredSession[]?> DesiredGen =
        Gen.Select(Gen.Int[0, 11].ArrayUnique[0, 10], Gen.Int[0, 11].ArrayUnique[10], Gen.Int[2, 17].ArrayUnique[10], Gen.Int[0, 11].Array[10],
                Gen.Int[0, 3].Array[10], Gen.Int[0, 11])
            .Select((sessions, keys, addresses, provisioningKeys, kinds, flaw) =>
            {
                if (flaw == 0)
                {
                    return null;
                }
                var desired = sessions.Select((s, i) => kinds[i] == 0
                    ? Provisioning(s, provisioningKeys[i])
                    : new DesiredSession(Session(s), Key(keys[i]), Host(addresses[i]), DesiredSessionState.Active,
                        kinds[i] == 1 ? null : Pool6.AddressFor(Host(addresses[i])))).ToArray();
                // Now and then a snapshot that must be rejected as a whole: two active sessions on one address.
                if (flaw == 1 && desired.Count(d => d.State == DesiredSessionState.Active) >= 2)
                {
                    var active = desired.Where(d => d.State == DesiredSessionState.Active).ToArray();
                    desired[Array.IndexOf(desired, active[1])] = active[1] with { Address = active[0].Address, Address6 = active[0].Address6 };
                }
                return (DesiredSession[]?)desired;
            });

    private static readonly Gen<LivePeer[]> LiveGen =
        Gen.Select(Gen.Int[0, 11].ArrayUnique[0, 10], Gen.Int[0, 6].Array[10], Gen.Int[1, 18].Array[10], Gen.Int[1, 18].Array[10])
            .Select((keys, shapes, address, other) => keys.Select((k, i) => new LivePeer(Key(k), shapes[i] switch
            {
                0 => [new IPNetwork(Host(address[i]), 32), new IPNetwork(Pool6.AddressFor(Host(address[i])), 128)],
                1 => [new IPNetwork(Host(address[i]), 32)],
                2 => [],
                3 => [new IPNetwork(Host(address[i]), 32), IPNetwork.Parse("10.99.0.0/16")],
                4 => [IPNetwork.Parse($"10.65.0.{address[i]}/32")],
                5 => [new IPNetwork(Host(address[i]), 32), new IPNetwork(Host(other[i]), 32)],
                _ => [new IPNetwork(Pool6.AddressFor(Host(address[i])), 128), new IPNetwork(Host(address[i]), 32)],
            })).ToArray());

    private static readonly Gen<Dictionary<Guid, long>> DisconnectedGen =
        Gen.Select(Gen.Int[0, 11].ArrayUnique[0, 5], Gen.Int[0, 300].Array[5])
            .Select((sessions, at) => sessions.Select((session, i) => (session, at[i])).ToDictionary(d => Session(d.session), d => (long)d.Item2));

    private static readonly Gen<Scenario> ScenarioGen =
        Gen.Select(LeasesGen, DisconnectedGen, DesiredGen, LiveGen, Gen.Int[1, 200], Gen.Bool, Gen.Int[0, 11].ArrayUnique[0, 3])
            .Select((leases, disconnected, desired, live, grace, firstSync, unsettled) => new Scenario(
                leases,
                disconnected,
                desired,
                live,
                grace,
                firstSync,
                [.. unsettled.Select(Key)]));

    private static string Describe(Vpn.Core.WireGuard.PeerConfig change) =>
        $"{change.PublicKey} remove={change.Remove} {string.Join(',', change.AllowedIps?.Select(n => n.ToString()) ?? [])}";

    private static ReconcileInput InputOf(Scenario s, IEnumerable<LeaseState> leases, IReadOnlyDictionary<Guid, long> disconnected, IReadOnlyList<LivePeer> live,
        bool firstSync, IReadOnlySet<WireGuardKey> unsettled) =>
        new(leases.ToDictionary(l => l.Lease.SessionId), disconnected, s.Desired is null ? null : new DesiredSnapshot(DateTimeOffset.UnixEpoch, s.Desired),
            live, PropertyNow, s.Grace, firstSync, Pool, Pool6, unsettled);

    [Fact]
    public void Decide_RandomScenarios_LeasesStayUniqueAndApplyingLeavesNothingToChange()
    {
        ScenarioGen.Sample(s =>
        {
            var decision = ReconcileRules.Decide(InputOf(s, s.Leases, s.Disconnected, s.Live, s.FirstSync, FrozenSet<WireGuardKey>.Empty));

            // Apply as the registry does, over a real pool: every adopted address must be reservable.
            var pool = new Ipv4Pool(Pool);
            Assert.All(s.Leases, l => Assert.True(pool.TryReserve(l.Lease.Address)));
            var leases = s.Leases.ToDictionary(l => l.Lease.SessionId);
            var disconnected = new Dictionary<Guid, long>(s.Disconnected);
            foreach (var sessionId in decision.ForgottenDisconnects)
            {
                Assert.True(disconnected.Remove(sessionId));
            }
            foreach (var sessionId in decision.Confirmed)
            {
                leases[sessionId] = leases[sessionId] with { Confirmed = true };
            }
            foreach (var lease in decision.Dropped)
            {
                Assert.True(leases.Remove(lease.SessionId));
                Assert.True(pool.Release(lease.Address));
            }
            foreach (var held in decision.Adopted)
            {
                Assert.True(pool.TryReserve(held.Lease.Address), $"adopted {held.Lease.Address} cannot be reserved");
                Assert.True(leases.TryAdd(held.Lease.SessionId, held), "two leases for one session");
                Assert.Equal(Pool6.AddressFor(held.Lease.Address), held.Lease.Address6);
            }
            Assert.Equal(leases.Count, decision.LeaseCount);
            Assert.Equal(leases.Count, leases.Values.Select(l => l.Lease.PublicKey).Distinct().Count());
            Assert.Equal(leases.Count, leases.Values.Select(l => l.Lease.Address).Distinct().Count());

            var device = s.Live.ToDictionary(p => p.PublicKey, p => p.AllowedIps);
            foreach (var change in decision.PeerChanges())
            {
                if (change.Remove)
                {
                    Assert.True(device.Remove(change.PublicKey), "removed a peer the device does not hold");
                }
                else
                {
                    device[change.PublicKey] = change.AllowedIps!;
                }
            }
            var live = device.Select(p => new LivePeer(p.Key, p.Value)).ToList();
            var rest = PeerDiff.Compute(leases.Values.ToDictionary(l => l.Lease.PublicKey, l => l.Lease.Address), live, Pool6.AddressFor);
            Assert.Empty(rest.Adds);
            Assert.Empty(rest.Corrections);
            Assert.Equal(decision.Full ? 0 : decision.SkippedRemoves, rest.Removes.Count);

            // The same truth again decides nothing more: the decision was complete.
            var again = ReconcileRules.Decide(InputOf(s, leases.Values, disconnected, live, s.FirstSync && !decision.Full, FrozenSet<WireGuardKey>.Empty));
            Assert.Equal((0, 0, 0, 0, 0), (again.Dropped.Count, again.Adopted.Count, again.Confirmed.Count, again.ForgottenDisconnects.Count, again.Adds.Count + again.Corrections.Count + again.Removes.Count));

            // Keys in flight change nothing but their own peer changes, which are left out.
            var unsettled = s.Unsettled.ToHashSet();
            var partial = ReconcileRules.Decide(InputOf(s, s.Leases, s.Disconnected, s.Live, s.FirstSync, unsettled));
            Assert.Equal(decision.Dropped, partial.Dropped);
            Assert.Equal(decision.Adopted, partial.Adopted);
            Assert.Equal(decision.PeerChanges().Where(c => !unsettled.Contains(c.PublicKey)).Select(Describe), partial.PeerChanges().Select(Describe));
        }, iter: 3000);
    }
}
