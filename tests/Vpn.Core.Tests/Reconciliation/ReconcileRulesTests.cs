using System.Collections.Frozen;
using Vpn.Domain.Reconciliation;

namespace Vpn.Core.Tests.Reconciliation;

/// <summary>The reconcile rules as plain inputs → decision: no registry, dataplane or clock.</summary>
public partial class ReconcileRulesTests
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
    public void Decide_ConfirmedLeaseReplacedByALaterProvisioningClaimOfItsKey_KeptForTheTakeover()
    {
        // replace_existing committed (old session terminated, new one provisioning with the same device key and a later
        // claim) before its Connect reached this node: the peer stays for the takeover.
        var old = new LeaseState(new PeerLease(Session(1), Key(1), Host(2), Pool6.AddressFor(Host(2)), ClaimSeq: 7), Confirmed: true, Since: 0);
        DesiredSession takeover = new(Session(2), Key(1), null, DesiredSessionState.Provisioning, ClaimSeq: 8);

        var kept = Decide([takeover], [old], [Exact(1, 2)]);
        var earlier = Decide([takeover with { ClaimSeq = 6 }], [old], [Exact(1, 2)]);
        var otherKey = Decide([takeover with { PublicKey = Key(2) }], [old], [Exact(1, 2)]);

        Assert.Empty(kept.Dropped);
        Assert.Empty(kept.Removes);
        Assert.Equal([old.Lease], earlier.Dropped);
        Assert.Equal([Key(1)], earlier.Removes);
        Assert.Equal([old.Lease], otherKey.Dropped);
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
}
