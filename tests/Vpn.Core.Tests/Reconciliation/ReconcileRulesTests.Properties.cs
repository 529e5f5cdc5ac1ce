using System.Collections.Frozen;
using CsCheck;
using Vpn.Domain.Reconciliation;

namespace Vpn.Core.Tests.Reconciliation;

// The rules' invariants over random scenarios (CsCheck), beside the examples in ReconcileRulesTests.cs.
public partial class ReconcileRulesTests
{
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
