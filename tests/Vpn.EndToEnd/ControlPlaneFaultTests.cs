namespace Vpn.EndToEnd;

/// <summary>
/// Invariant 1 (PostgreSQL is the truth) under faults of the control plane, on the shared fault stack (see
/// <see cref="FaultToleranceTests"/>): PostgreSQL restarted, entry stopped for a while, and parallel replace_existing
/// starts across two entry replicas. Each ends with the node equal to the database and the client's traffic flowing.
/// </summary>
[Collection(FaultStackCollection.Name)]
public sealed class ControlPlaneFaultTests(FaultStackFixture stack) : FaultTestBase(stack)
{
    // ------------------------------------------------------------------------------------------------------------ 3

    [Fact(Timeout = 300_000)]
    public async Task PostgreSQL_restart_keeps_peers_and_entry_recovers()
    {
        var ct = TestContext.Current.CancellationToken;
        await Stack.PrepareAsync(ct);
        var device = (await Stack.CreateCustomersWithDevicesAsync(1, ct))[0];
        var (before, _) = await Stack.WaitForConvergenceAsync("before PostgreSQL is stopped", Converge, ct);
        var statusBefore = await Stack.GetNodeStatusAsync(ct);

        await Stack.StopPostgresAsync();
        var outage = Stopwatch.StartNew();
        try
        {
            HttpStatusCode? ready = HttpStatusCode.OK;
            await VpnLab.WaitUntilAsync(async () => (ready = await Stack.ReadyzAsync(ct)) != HttpStatusCode.OK, TimeSpan.FromSeconds(30),
                () => "entry's /readyz still answers 200 with PostgreSQL stopped", ct);
            Out($"PostgreSQL stopped: /readyz → {(ready is null ? "no answer" : ((int)ready).ToString())} after {VpnStackFixture.Seconds(outage.Elapsed)}");

            // Core fails to fetch several times in a row; the node keeps every peer meanwhile and the client keeps working.
            var failuresWanted = statusBefore.ReconcileFailures + 3;
            var during = await HoldPeersWhileAsync(before, s => s.ReconcileFailures >= failuresWanted, "with PostgreSQL stopped", ct);
            Out($"during the outage: {VpnStackFixture.Describe(during)}");
            var traffic = await Stack.ExpectClientTrafficAsync("with PostgreSQL stopped", TimeSpan.FromSeconds(30), ct);
            Out($"client traffic during the outage: OK ({VpnStackFixture.Seconds(traffic)})");

            // A start cannot succeed without the database; whatever it answers, it must leave nothing behind (checked below:
            // the same customer starts normally after the restart).
            var duringStart = await Stack.StartSessionAsync(device, ct);
            Out($"start during the outage: {VpnStackFixture.WithoutSessionKey(duringStart)}");
            await Stack.CheckAsync(duringStart.Status != HttpStatusCode.Created,
                $"a session start answered 201 with PostgreSQL stopped: {VpnStackFixture.WithoutSessionKey(duringStart)}");
        }
        finally
        {
            await Stack.StartPostgresAsync();
        }
        var downFor = outage.Elapsed;

        var recovery = Stopwatch.StartNew();
        await VpnLab.WaitUntilAsync(async () => await Stack.ReadyzAsync(ct) == HttpStatusCode.OK, TimeSpan.FromSeconds(60),
            () => "entry's /readyz did not answer 200 again after PostgreSQL was started", ct);
        Out($"PostgreSQL down for {VpnStackFixture.Seconds(downFor)}; /readyz 200 again {VpnStackFixture.Seconds(recovery.Elapsed)} after the start");

        var (session, attempts) = await Stack.StartSessionUntilCreatedAsync(device, TimeSpan.FromSeconds(60), ct);
        Out($"new session after the restart: 201 {session.Text("session_id")}{(attempts.Length > 0 ? $" after:\n{attempts}" : " at the first attempt")}");
        var (after, _) = await Stack.WaitForConvergenceAsync("after PostgreSQL was restarted", Converge, ct);
        await Stack.CheckAsync(after.ContainsKey(device.Keys.PublicKey), "the session started after the restart has no peer on the node");
        await Stack.ExpectClientTrafficAsync("after PostgreSQL was restarted", TimeSpan.FromSeconds(30), ct);
    }

    // ------------------------------------------------------------------------------------------------------------ 5

    [Fact(Timeout = 300_000)]
    public async Task Entry_stopped_for_a_while_peers_are_kept_and_traffic_flows()
    {
        var ct = TestContext.Current.CancellationToken;
        await Stack.PrepareAsync(ct);
        var (before, _) = await Stack.WaitForConvergenceAsync("before entry is stopped", Converge, ct);
        var statusBefore = await Stack.GetNodeStatusAsync(ct);

        await Stack.StopEntryAsync();
        var outage = Stopwatch.StartNew();
        try
        {
            // Well beyond a few reconcile periods: at least 5 failed fetches and 8 s, the node keeping every peer throughout.
            var failuresWanted = statusBefore.ReconcileFailures + 5;
            var minimum = TimeSpan.FromSeconds(Math.Max(8, 5 * Stack.CoreIntervalSeconds));
            var during = await HoldPeersWhileAsync(before, s => s.ReconcileFailures >= failuresWanted && outage.Elapsed >= minimum, "with entry stopped", ct);
            Out($"entry down for {VpnStackFixture.Seconds(outage.Elapsed)}: {VpnStackFixture.Describe(during)}");
            var traffic = await Stack.ExpectClientTrafficAsync("with entry stopped", TimeSpan.FromSeconds(30), ct);
            Out($"client traffic with entry down: OK ({VpnStackFixture.Seconds(traffic)})");
            var (still, _) = await Stack.ReadNodePeersAsync();
            await Stack.CheckAsync(still is not null && VpnStackFixture.DescribeDifference(before, still) is null,
                $"the node's peers changed while entry was down:\n{(still is null ? "unreadable" : VpnStackFixture.DescribeDifference(before, still))}");
        }
        finally
        {
            await Stack.StartEntryAsync(ct);
        }
        Out($"entry back after {VpnStackFixture.Seconds(outage.Elapsed)}");

        var restartedAt = DateTimeOffset.UtcNow;
        await Stack.WaitForNodeHeartbeatAsync(restartedAt, Converge, ct);
        var synced = await Stack.WaitForNodeStatusAsync(s => s.Synced, "synced again", Converge, ct);
        await Stack.WaitForConvergenceAsync("after entry was started again", Converge, ct);
        Out($"core after entry's return: {VpnStackFixture.Describe(synced)}");
        await Stack.ExpectClientTrafficAsync("after entry was started again", TimeSpan.FromSeconds(30), ct);
    }

    // ------------------------------------------------------------------------------------------------------------ 7

    /// <summary>
    /// Issue 11 item 2 on real parts: the client's own customer sends 10 parallel replace_existing starts, half to each
    /// of two entry replicas, with core on real wireguard-go reconciling every second. Each round the customer must end
    /// with exactly one live session, the node must hold exactly its peer at once (read before reconciliation could mend
    /// anything, and with reconciliation's counters unchanged: nothing needed mending), and the client, configured from
    /// that session's wg-quick file, must reach inet through it.
    /// </summary>
    [Fact(Timeout = 300_000)]
    public async Task Parallel_replace_existing_across_two_replicas_leaves_one_session_one_peer_and_a_working_tunnel()
    {
        var ct = TestContext.Current.CancellationToken;
        await Stack.PrepareAsync(ct);
        await using var replica = await Stack.StartEntryReplicaAsync(ct);
        var replicas = new[] { Stack.EntryClient, replica.Client };
        var device = Stack.CurrentClient!.Device;
        const int Rounds = 3;
        const int Parallel = 10;
        for (var round = 1; round <= Rounds; round++)
        {
            var before = await Stack.GetNodeStatusAsync(ct);
            var answers = await Task.WhenAll(Enumerable.Range(0, Parallel).Select(i => replicas[i % 2].CustomerAsync(device.CustomerId, HttpMethod.Post,
                "/v1/sessions", new { device.DeviceId, Region = VpnStackFixture.Region, ReplaceExisting = true }, cancellationToken: ct)));
            var after = await Stack.GetNodeStatusAsync(ct);
            var (node, error) = await Stack.ReadNodePeersAsync();
            var database = await Stack.DatabaseActivePeersAsync(ct);
            var sessions = await Stack.SessionsOfCustomerAsync(device.CustomerId, ct);
            var summary = string.Join(", ", answers.GroupBy(a => (int)a.Status).OrderBy(g => g.Key).Select(g => $"{g.Count()} x {g.Key}"));
            Out($"round {round}: {summary}");

            var unexpected = answers.Where(a => a.Status is not (HttpStatusCode.Created or HttpStatusCode.Conflict)
                || (a.Status == HttpStatusCode.Conflict && a.Text("code") != "session_conflict")).ToList();
            await Stack.CheckAsync(unexpected.Count == 0, $"round {round}: answers other than 201 / 409 session_conflict:\n" +
                string.Join("\n", unexpected.Select(VpnStackFixture.WithoutSessionKey)) + $"\nentry replica:\n{VpnStackFixture.Tail(replica.Output)}");
            var created = answers.Where(a => a.Status == HttpStatusCode.Created).ToDictionary(a => Guid.Parse(a.Text("session_id")));
            var live = sessions.Where(s => s.State is "active" or "provisioning").ToList();
            await Stack.CheckAsync(live is [{ State: "active" }] && created.ContainsKey(live[0].Id),
                $"round {round}: the customer's live sessions are [{string.Join(", ", live.Select(s => $"{s.Id} {s.State}"))}], " +
                $"expected exactly one active among the 201s [{string.Join(", ", created.Keys)}]");
            await Stack.CheckAsync(node is not null, $"round {round}: wg show unreadable: {error}");
            await Stack.CheckAsync(VpnStackFixture.DescribeDifference(database, node!) is null,
                $"round {round}: right after the storm the node differs from the database:\n{VpnStackFixture.DescribeDifference(database, node!)}");
            await Stack.CheckAsync(node!.TryGetValue(device.Keys.PublicKey, out var allowed) && allowed == database[device.Keys.PublicKey],
                $"round {round}: the device's peer is not the final session's");
            await Stack.CheckAsync((after.ReconcilePeersAdded, after.ReconcilePeersRemoved, after.ReconcilePeersCorrected)
                    == (before.ReconcilePeersAdded, before.ReconcilePeersRemoved, before.ReconcilePeersCorrected),
                $"round {round}: reconciliation had to mend the node during the storm: before {VpnStackFixture.Describe(before)}, after {VpnStackFixture.Describe(after)}");

            await Stack.UseClientSessionAsync(device, created[live[0].Id]);
            await Stack.ExpectClientTrafficAsync($"round {round}, through the final session", TimeSpan.FromSeconds(30), ct);
        }
    }
}
