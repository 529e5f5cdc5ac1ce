namespace Vpn.EndToEnd;

/// <summary>
/// A node drained and replaced through real processes (entry, PostgreSQL, two cores on wireguard-go, a client): with
/// migrate, every session of node A moves to node B, node A's device ends empty and node B's equals the database, the
/// client's reconnect brings node B's config and its tunnel works through B; a drained node takes no new session, is
/// deleted only once empty; a core stopped by SIGTERM leaves selection at once.
/// </summary>
public sealed class NodeDrainTests(DrainStackFixture stack) : IClassFixture<DrainStackFixture>
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60); // a cap for a loaded machine, not a measurement

    private static void Out(string line) => TestContext.Current.TestOutputHelper?.WriteLine($"[{DateTime.UtcNow:HH:mm:ss.fff}] {line}");

    private static Guid NodeOf(EntryResponse session) => Guid.Parse(session.Json["node"]!["id"]!.GetValue<string>());

    private Task<EntryResponse> AdminAsync(HttpMethod method, string path, object? body, CancellationToken ct) =>
        stack.EntryClient.AdminAsync(method, path, body, ct);

    [Fact(Timeout = 240_000)]
    public async Task Drain_with_migrate_moves_every_session_to_another_node_and_the_empty_node_is_deleted()
    {
        stack.EnsureReady();
        var ct = TestContext.Current.CancellationToken;
        var (a, b) = (stack.NodeId, stack.NodeBId);
        var watch = Stopwatch.StartNew();

        // Sessions on A only: B is drained while they start (a drained node is no candidate).
        await stack.ExpectStatusAsync(await AdminAsync(HttpMethod.Post, $"/v1/admin/nodes/{b}/drain", null, ct), HttpStatusCode.OK);
        var devices = await stack.CreateCustomersWithDevicesAsync(5, ct);
        var sessions = new List<EntryResponse>();
        foreach (var device in devices.Take(4))
        {
            var (session, _) = await stack.StartSessionUntilCreatedAsync(device, Bound, ct);
            await stack.CheckAsync(NodeOf(session) == a, $"a start landed on drained node B: {session.Describe()}");
            sessions.Add(session);
        }
        // Undrained, B is a candidate again: the least loaded one.
        var undrained = await stack.ExpectStatusAsync(await AdminAsync(HttpMethod.Post, $"/v1/admin/nodes/{b}/undrain", null, ct), HttpStatusCode.OK);
        await stack.CheckAsync(undrained.Json["draining"]!.GetValue<bool>() == false, undrained.Describe());
        var (onB, _) = await stack.StartSessionUntilCreatedAsync(devices[4], Bound, ct);
        await stack.CheckAsync(NodeOf(onB) == b, $"after undrain the start did not land on the idle node B: {onB.Describe()}");
        await stack.UseClientSessionAsync(devices[0], sessions[0]);
        await stack.ExpectClientTrafficAsync("client on node A", TimeSpan.FromSeconds(30), ct);
        Out($"4 sessions on A, 1 on B, client tunnels through A ({VpnStackFixture.Seconds(watch.Elapsed)})");

        // Delete is refused while A is not draining, and while it has sessions.
        var notDraining = await stack.ExpectStatusAsync(await AdminAsync(HttpMethod.Delete, $"/v1/admin/nodes/{a}", null, ct), HttpStatusCode.Conflict);
        await stack.CheckAsync(notDraining.Text("code") == "node_not_draining", notDraining.Describe());
        await stack.ExpectStatusAsync(await AdminAsync(HttpMethod.Post, $"/v1/admin/nodes/{a}/drain", new { Migrate = false }, ct), HttpStatusCode.OK);
        var notEmpty = await stack.ExpectStatusAsync(await AdminAsync(HttpMethod.Delete, $"/v1/admin/nodes/{a}", null, ct), HttpStatusCode.Conflict);
        await stack.CheckAsync(notEmpty.Text("code") == "node_not_empty", notEmpty.Describe());
        var newcomer = (await stack.CreateCustomersWithDevicesAsync(1, ct))[0];
        var (late, _) = await stack.StartSessionUntilCreatedAsync(newcomer, Bound, ct);
        await stack.CheckAsync(NodeOf(late) == b, $"a start landed on draining node A: {late.Describe()}");

        // Migrate: entry moves A's sessions itself, in batches.
        var migrating = await stack.ExpectStatusAsync(await AdminAsync(HttpMethod.Post, $"/v1/admin/nodes/{a}/drain", new { Migrate = true }, ct),
            HttpStatusCode.OK);
        await stack.CheckAsync(migrating.Json["drain_migrate"]!.GetValue<bool>(), migrating.Describe());
        IReadOnlySet<string> liveOnA = new HashSet<string>();
        await VpnLab.WaitUntilAsync(async () => (liveOnA = await stack.DatabaseLiveKeysAsync(a, ct)).Count == 0, Bound,
            () => $"node A still has {liveOnA.Count} live session(s) in the database", ct);
        Out($"migration done in the database ({VpnStackFixture.Seconds(watch.Elapsed)})");
        IReadOnlyList<string> peersOnA = [];
        await VpnLab.WaitUntilAsync(async () => (peersOnA = await stack.NodeWgShowPeersAsync()).Count == 0, Bound,
            () => $"node A's device still has peers: {string.Join(", ", peersOnA)}", ct);
        IReadOnlySet<string> truthB = new HashSet<string>();
        IReadOnlyList<string> peersOnB = [];
        await VpnLab.WaitUntilAsync(async () =>
        {
            truthB = await stack.DatabaseLiveKeysAsync(b, ct);
            peersOnB = await stack.NodeBWgShowPeersAsync();
            return truthB.SetEquals(peersOnB);
        }, Bound, () => $"node B's device [{string.Join(", ", peersOnB)}] is not the database's [{string.Join(", ", truthB)}]", ct);
        var expectedOnB = devices.Append(newcomer).Select(d => d.Keys.PublicKey).ToList();
        await stack.CheckAsync(expectedOnB.All(truthB.Contains), $"node B should hold every session of the test, holds [{string.Join(", ", truthB)}]");

        // The client's reconnect (with the key it holds) brings B's config; its tunnel then goes through B.
        var reconnected = await stack.ExpectStatusAsync(await stack.EntryClient.CustomerAsync(devices[0].CustomerId, HttpMethod.Post,
            "/v1/sessions/reconnect", new { SessionKey = sessions[0].Text("session_key") }, cancellationToken: ct), HttpStatusCode.OK);
        await stack.CheckAsync(NodeOf(reconnected) == b && reconnected.Json["peer"]!["endpoint"]!.GetValue<string>() == DrainStackFixture.NodeBEndpoint,
            $"reconnect after migration: {reconnected.Describe()}");
        await stack.CheckAsync(reconnected.Text("session_id") == sessions[0].Text("session_id"), reconnected.Describe());
        await stack.UseClientSessionAsync(devices[0], reconnected);
        var (ok, body, attempts) = await stack.Lab.ClientCurlUntilSuccessAsync(TimeSpan.FromSeconds(30), ct);
        await stack.CheckAsync(ok && body == DrainStackFixture.NodeBInetSideIp,
            $"client through node B: ok={ok} source seen by inet '{body}' (expected {DrainStackFixture.NodeBInetSideIp})\n{attempts}");
        Out($"client tunnels through B after reconnect ({VpnStackFixture.Seconds(watch.Elapsed)})");

        // Drained and empty: deleted.
        var deleted = await AdminAsync(HttpMethod.Delete, $"/v1/admin/nodes/{a}", null, ct);
        await stack.ExpectStatusAsync(deleted, HttpStatusCode.NoContent);
        var nodes = await stack.ExpectStatusAsync(await AdminAsync(HttpMethod.Get, "/v1/admin/nodes", null, ct), HttpStatusCode.OK);
        var ids = nodes.Json["items"]!.AsArray().Select(n => Guid.Parse(n!["id"]!.GetValue<string>())).ToList();
        await stack.CheckAsync(ids.SequenceEqual([b]), $"nodes after delete: {nodes.Describe()}");
        Out($"node A deleted ({VpnStackFixture.Seconds(watch.Elapsed)})");
    }

    [Fact(Timeout = 180_000)]
    public async Task Core_stopped_by_SIGTERM_reports_itself_unhealthy_and_starts_avoid_it()
    {
        stack.EnsureReady();
        var ct = TestContext.Current.CancellationToken;
        var b = stack.NodeBId;
        try
        {
            var (healthyBefore, _) = await stack.NodeHealthAsync(b, ct);
            await stack.CheckAsync(healthyBefore, "node B is not healthy before its core is stopped");

            await stack.TerminateCoreBAsync();

            // Only the stopping core's own last heartbeat writes false: a killed core leaves true until it goes stale (60 s).
            var (healthy, _) = await stack.NodeHealthAsync(b, ct);
            await stack.CheckAsync(!healthy, $"node B still healthy after its core exited on SIGTERM; core output:\n{stack.CoreBOutput}");
            var device = (await stack.CreateCustomersWithDevicesAsync(1, ct))[0];
            var start = await stack.StartSessionAsync(device, ct);
            // Node A takes it when it still exists (the other test deletes it); never node B.
            if (start.Status == HttpStatusCode.Created)
            {
                await stack.CheckAsync(NodeOf(start) == stack.NodeId, $"a start landed on the stopped node B: {start.Describe()}");
            }
            else
            {
                await stack.CheckAsync(start.Status == HttpStatusCode.ServiceUnavailable && start.Text("code") == "no_nodes_available_in_region"
                    && start.Json["rejected"]!["unhealthy"]!.GetValue<int>() == 1, start.Describe());
            }
        }
        finally
        {
            if (!stack.CoreBRunning)
            {
                await stack.StartCoreBAsync(ct);
            }
        }
    }
}
