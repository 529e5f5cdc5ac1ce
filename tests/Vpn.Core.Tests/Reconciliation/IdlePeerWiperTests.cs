using static Vpn.Core.Tests.Reconciliation.ReconcileRig;

namespace Vpn.Core.Tests.Reconciliation;

/// <summary>
/// The idle wipe's decisions through whole reconciliation passes, against a device that learns endpoints and handshakes
/// as the test says, with a manual clock: which peers lose their endpoint, which keep it, and how a failed wipe heals.
/// </summary>
public class IdlePeerWiperTests
{
    private static readonly TimeSpan Window = TimeSpan.FromSeconds(180);

    private static CancellationToken Token => TestContext.Current.CancellationToken;

    [Fact]
    public async Task RunPass_HandshakeOlderThanWindow_PeerReAddedWithoutEndpointOthersKeepTheirs()
    {
        var device = new EndpointDataplane();
        using var rig = new ReconcileRig(device, Options(Window));
        var (idle, active, silent) = (Key(), Key(), Key());
        rig.Desired.Set(Active(idle, "10.64.0.2"), Active(active, "10.64.0.3"), Active(silent, "10.64.0.4"));
        await rig.PassAsync();
        var now = rig.Clock.GetUtcNow();
        device.Learn(idle, "198.51.100.7:40001", now - Window);
        device.Learn(active, "198.51.100.8:40002", now - TimeSpan.FromSeconds(179));
        var writesBefore = device.Writes.Count;

        var outcome = await rig.PassAsync();

        Assert.True(outcome.Succeeded);
        Assert.Equal([idle], outcome.WipedKeys);
        Assert.Equal(1, outcome.Wiped);
        Assert.Null(device.EndpointOf(idle));
        Assert.Equal(IPEndPoint.Parse("198.51.100.8:40002"), device.EndpointOf(active));
        // Still there with exactly its lease's /32 and /128, and so are the others.
        Assert.Equal(Expected((idle, "10.64.0.2"), (active, "10.64.0.3"), (silent, "10.64.0.4")), await rig.DeviceAsync());
        // One write for the wipe: remove, then add back.
        var wipe = Assert.Single(device.Writes.Skip(writesBefore));
        Assert.Equal([(idle, true), (idle, false)], wipe.Select(c => (c.PublicKey, c.Remove)));
        Assert.Equal(["10.64.0.2/32", "fd64:6400::2/128"], wipe[1].AllowedIps!.Select(n => n.ToString()));
        Assert.Equal(1, rig.Metrics.Snapshot().EndpointsWiped);
        var logged = Assert.Single(rig.WiperLog.Entries);
        Assert.Equal((LogLevel.Information, 630, "Wiped the endpoints of 1 idle peer(s)"), (logged.Level, logged.Id.Id, logged.Message));
    }

    [Fact]
    public async Task RunPass_SeveralIdlePeers_OneWriteWithEachRemoveFollowedByItsAdd()
    {
        var device = new EndpointDataplane();
        using var rig = new ReconcileRig(device, Options(Window));
        var keys = Enumerable.Range(0, 5).Select(_ => Key()).ToArray();
        rig.Desired.Set([.. keys.Select((k, i) => Active(k, $"10.64.0.{i + 2}"))]);
        await rig.PassAsync();
        foreach (var (key, i) in keys.Select((k, i) => (k, i)))
        {
            device.Learn(key, $"198.51.100.{i + 1}:5000", rig.Clock.GetUtcNow() - TimeSpan.FromHours(1));
        }
        var writesBefore = device.Writes.Count;

        var outcome = await rig.PassAsync();

        Assert.Equal(keys.ToHashSet(), outcome.WipedKeys.ToHashSet());
        Assert.Equal(keys.Length, outcome.Wiped);
        var wipe = Assert.Single(device.Writes.Skip(writesBefore));
        Assert.Equal(outcome.WipedKeys.SelectMany(k => new[] { (k, true), (k, false) }), wipe.Select(c => (c.PublicKey, c.Remove)));
        Assert.All(keys, k => Assert.Null(device.EndpointOf(k)));
        Assert.Equal(Expected([.. keys.Select((k, i) => (k, $"10.64.0.{i + 2}"))]), await rig.DeviceAsync());
    }

    [Fact]
    public async Task RunPass_WipeOff_IdlePeerKeepsItsEndpoint()
    {
        var device = new EndpointDataplane();
        using var rig = new ReconcileRig(device, Options(TimeSpan.Zero));
        var key = Key();
        rig.Desired.Set(Active(key, "10.64.0.2"));
        await rig.PassAsync();
        device.Learn(key, "198.51.100.7:40001", rig.Clock.GetUtcNow() - TimeSpan.FromDays(1));

        var outcome = await rig.PassAsync();

        Assert.Empty(outcome.WipedKeys);
        Assert.NotNull(device.EndpointOf(key));
        Assert.Empty(rig.WiperLog.Entries);
    }

    [Fact]
    public async Task RunPass_NoEndpoint_NothingWrittenForIt()
    {
        var device = new EndpointDataplane();
        using var rig = new ReconcileRig(device, Options(Window));
        rig.Desired.Set(Active(Key(), "10.64.0.2"));
        await rig.PassAsync();
        var writesBefore = device.Writes.Count;
        rig.Clock.Advance(TimeSpan.FromHours(1));

        var outcome = await rig.PassAsync();

        Assert.Empty(outcome.WipedKeys);
        Assert.Equal(writesBefore, device.Writes.Count);
    }

    [Fact]
    public async Task RunPass_EndpointWithoutCompletedHandshake_WipedOnceSeenSoForTheWindow()
    {
        var device = new EndpointDataplane();
        using var rig = new ReconcileRig(device, Options(Window));
        var key = Key();
        rig.Desired.Set(Active(key, "10.64.0.2"));
        await rig.PassAsync();
        device.Learn(key, "198.51.100.7:40001", handshake: null);

        Assert.Empty((await rig.PassAsync()).WipedKeys);
        rig.Clock.Advance(Window - TimeSpan.FromSeconds(1));
        Assert.Empty((await rig.PassAsync()).WipedKeys);
        rig.Clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal([key], (await rig.PassAsync()).WipedKeys);

        Assert.Null(device.EndpointOf(key));
    }

    [Fact]
    public async Task RunPass_KeyConnectedAgainDuringTheRead_NotWipedThisPassWipedTheNext()
    {
        var device = new EndpointDataplane();
        using var rig = new ReconcileRig(device, Options(Window));
        var (session, key, other) = (Guid.NewGuid(), Key(), Key());
        rig.Desired.Set(Active(key, "10.64.0.2", session), Active(other, "10.64.0.3"));
        await rig.PassAsync();
        device.Learn(key, "198.51.100.7:40001", rig.Clock.GetUtcNow() - TimeSpan.FromHours(1));
        device.Learn(other, "198.51.100.8:40001", rig.Clock.GetUtcNow() - TimeSpan.FromHours(1));
        // The same session's Connect again (entry retrying): the device read is stale for its key.
        device.AfterRead = async () =>
        {
            device.AfterRead = null;
            Assert.Equal(ConnectOutcome.Connected, (await rig.Registry.ConnectAsync(session, key, 0, Token)).Outcome);
        };

        var raced = await rig.PassAsync();

        Assert.Equal([other], raced.WipedKeys);
        Assert.NotNull(device.EndpointOf(key));
        Assert.Equal([key], (await rig.PassAsync()).WipedKeys);
        Assert.Null(device.EndpointOf(key));
    }

    [Fact]
    public async Task RunPass_KeyDisconnectedDuringTheRead_NotReAdded()
    {
        var device = new EndpointDataplane();
        using var rig = new ReconcileRig(device, Options(Window));
        var (session, key) = (Guid.NewGuid(), Key());
        rig.Desired.Set(Active(key, "10.64.0.2", session));
        await rig.PassAsync();
        device.Learn(key, "198.51.100.7:40001", rig.Clock.GetUtcNow() - TimeSpan.FromHours(1));
        device.AfterRead = async () =>
        {
            device.AfterRead = null;
            Assert.NotNull(await rig.Registry.DisconnectAsync(session, Token));
        };

        var outcome = await rig.PassAsync();

        Assert.Empty(outcome.WipedKeys);
        Assert.Empty(await rig.DeviceAsync());
    }

    [Fact]
    public async Task RunPass_IdlePeerNotALease_LeftAlone()
    {
        var device = new EndpointDataplane();
        using var rig = new ReconcileRig(device, Options(Window));
        rig.Desired.Set();
        await rig.PassAsync();
        // A peer the leases do not know, kept while entry is unreachable (nothing is pruned then).
        var stranger = Key();
        await device.ApplyPeerChangesAsync([Peer(stranger, "10.64.0.9/32")], Token);
        device.Learn(stranger, "198.51.100.9:40001", rig.Clock.GetUtcNow() - TimeSpan.FromHours(1));
        rig.Desired.Fail();

        var outcome = await rig.PassAsync();

        Assert.Empty(outcome.WipedKeys);
        Assert.NotNull(device.EndpointOf(stranger));
    }

    [Fact]
    public async Task RunPass_WipeFailsAfterTheRemove_KeysReportedPassRequestedAndTheNextPassRestoresThePeer()
    {
        var device = new EndpointDataplane();
        using var rig = new ReconcileRig(device, Options(Window));
        var key = Key();
        rig.Desired.Set(Active(key, "10.64.0.2"));
        await rig.PassAsync();
        device.Learn(key, "198.51.100.7:40001", rig.Clock.GetUtcNow() - TimeSpan.FromHours(1));
        // wireguard-go applied the remove line and refused the next.
        device.Fail = changes => changes is [{ Remove: true }, ..] ? (1, new UapiException(-22)) : null;
        rig.Signal.Clear();

        var failed = await rig.PassAsync();

        Assert.True(failed.Succeeded);
        Assert.Equal([key], failed.WipedKeys);
        Assert.Empty(await rig.DeviceAsync());
        Assert.True(await rig.Signal.WaitAsync(TimeSpan.Zero, Token));
        var warning = Assert.Single(rig.WiperLog.Entries);
        Assert.Equal((LogLevel.Warning, 631), (warning.Level, warning.Id.Id));
        Assert.DoesNotContain("198.51.100.7", warning.Message, StringComparison.Ordinal);
        Assert.Equal(0, rig.Metrics.Snapshot().EndpointsWiped);
        device.Fail = null;

        var healed = await rig.PassAsync();

        Assert.Equal((true, 1), (healed.Succeeded, healed.Added));
        Assert.Equal(Expected((key, "10.64.0.2")), await rig.DeviceAsync());
        Assert.Null(device.EndpointOf(key));
    }

    [Fact]
    public void RemoveAndReAdd_PresharedKeyAndKeepaliveOnTheDevice_KeptOnTheReAddedPeer()
    {
        var (key, psk) = (Key(), Key());
        var lease = new PeerLease(Guid.NewGuid(), key, IPAddress.Parse("10.64.0.2"), IPAddress.Parse("fd64:6400::2"));
        var peer = new PeerState
        {
            PublicKey = key,
            PresharedKey = psk,
            PersistentKeepaliveInterval = TimeSpan.FromSeconds(25),
            Endpoint = IPEndPoint.Parse("198.51.100.7:40001"),
            AllowedIps = [IPNetwork.Parse("10.64.0.2/32")],
        };

        var changes = IdlePeerWiper.RemoveAndReAdd(lease, peer);

        Assert.Equal(2, changes.Length);
        Assert.Equal(new PeerConfig { PublicKey = key, Remove = true }, changes[0]);
        var readd = changes[1];
        Assert.Equal((key, false, (WireGuardKey?)psk, (TimeSpan?)TimeSpan.FromSeconds(25), (IPEndPoint?)null, true),
            (readd.PublicKey, readd.Remove, readd.PresharedKey, readd.PersistentKeepaliveInterval, readd.Endpoint, readd.ReplaceAllowedIps));
        Assert.Equal(["10.64.0.2/32", "fd64:6400::2/128"], readd.AllowedIps!.Select(n => n.ToString()));
    }

    [Fact]
    public void RemoveAndReAdd_NeitherOnTheDevice_NeitherSet()
    {
        var key = Key();
        var lease = new PeerLease(Guid.NewGuid(), key, IPAddress.Parse("10.64.0.2"), IPAddress.Parse("fd64:6400::2"));

        var readd = IdlePeerWiper.RemoveAndReAdd(lease, new PeerState { PublicKey = key })[1];

        Assert.Equal(((WireGuardKey?)null, (TimeSpan?)null), (readd.PresharedKey, readd.PersistentKeepaliveInterval));
    }

    /// <summary><see cref="ReconcileRig.NoopOptions"/> with this idle window.</summary>
    internal static CoreOptions Options(TimeSpan window) => NoopOptions(window);
}
