namespace Vpn.EndToEnd;

/// <summary>
/// Invariant 1 (PostgreSQL is the truth) under real faults, with real processes: entry, core inside the node namespace
/// driving wireguard-go, a private PostgreSQL. Every test ends with the node's <c>wg show</c> equal to the database's
/// active sessions on the node (read from PostgreSQL directly) and the client, configured from an active session's
/// wg-quick text, reaching inet through the tunnel with the node's NATed source address.
/// <para>
/// The tests share one topology (<see cref="FaultStackFixture"/>, with <see cref="ControlPlaneFaultTests"/>); each
/// restores what it breaks (finally) and starts from a converged node with working client traffic, so their order does
/// not matter. Waits are polls with generous bounds; elapsed times are written to the test output.
/// </para>
/// This class: faults on the node (core killed during a burst of starts, wireguard-go restarted, hand edits of the
/// device, core restarted after failed starts).
/// </summary>
[Collection(FaultStackCollection.Name)]
public sealed class FaultToleranceTests(FaultStackFixture stack) : FaultTestBase(stack)
{
    // ------------------------------------------------------------------------------------------------------------ 1

    private sealed record BurstStart(int Index, string Phase, TestDevice Device, EntryResponse? Response, string? Error, TimeSpan Started, TimeSpan Finished)
    {
        public bool Created => Response?.Status == HttpStatusCode.Created;

        public string Describe() => $"#{Index} {Phase} [{Started.TotalSeconds:0.00}s→{Finished.TotalSeconds:0.00}s] " +
            (Response is null ? $"no answer: {Error}" : $"{(int)Response.Status} {(Created ? Response.Text("session_id") : VpnStackFixture.WithoutSessionKey(Response))}");
    }

    [Fact(Timeout = 420_000)]
    public async Task Core_sigkilled_during_a_burst_of_starts_converges_after_restart()
    {
        var ct = TestContext.Current.CancellationToken;
        await Stack.PrepareAsync(ct);
        const int phaseA = 14;
        const int phaseB = 6;
        const int killAfterSuccesses = 3;
        var devices = await Stack.CreateCustomersWithDevicesAsync(phaseA + phaseB, ct);

        var watch = Stopwatch.StartNew();
        var successes = 0;
        var killTrigger = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        async Task<BurstStart> StartAsync(int index, string phase)
        {
            await Task.Yield();
            var started = watch.Elapsed;
            EntryResponse? response = null;
            string? error = null;
            try
            {
                response = await Stack.StartSessionAsync(devices[index], ct);
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException && !ct.IsCancellationRequested)
            {
                error = e.Message;
            }
            if (response?.Status == HttpStatusCode.Created && Interlocked.Increment(ref successes) >= killAfterSuccesses)
            {
                killTrigger.TrySetResult();
            }
            return new BurstStart(index, phase, devices[index], response, error, started, watch.Elapsed);
        }

        // Phase A: 14 customers start concurrently (launched 10 ms apart); core is SIGKILLed as soon as 3 of them have
        // succeeded, so the rest are in flight (claimed, in Connect, activating) or not yet sent. Phase B: 6 more start right
        // after the kill, while core is down.
        var phaseATasks = new List<Task<BurstStart>>();
        var launcher = Task.Run(async () =>
        {
            for (var i = 0; i < phaseA; i++)
            {
                lock (phaseATasks)
                {
                    phaseATasks.Add(StartAsync(i, "A"));
                }
                await Task.Delay(10, ct);
            }
        }, ct);
        var allA = Task.Run(async () =>
        {
            await launcher;
            Task<BurstStart>[] tasks;
            lock (phaseATasks)
            {
                tasks = [.. phaseATasks];
            }
            await Task.WhenAll(tasks);
        }, ct);
        await Task.WhenAny(killTrigger.Task, allA, Task.Delay(TimeSpan.FromSeconds(90), ct));
        var killAt = watch.Elapsed;
        await Stack.StopCoreAsync();
        Stack.Step($"core SIGKILLed {VpnStackFixture.Seconds(killAt)} into the burst ({Volatile.Read(ref successes)} start(s) had succeeded)");
        var phaseBTasks = Enumerable.Range(phaseA, phaseB).Select(i => StartAsync(i, "B")).ToList();
        await launcher;
        var results = (await Task.WhenAll(phaseATasks.Concat(phaseBTasks))).OrderBy(r => r.Index).ToList();

        var inFlightAtKill = results.Count(r => r.Phase == "A" && r.Started < killAt && r.Finished > killAt);
        var sentAfterKill = results.Count(r => r.Started >= killAt);
        var summary = new StringBuilder()
            .AppendLine($"kill at {VpnStackFixture.Seconds(killAt)}; {inFlightAtKill} phase-A start(s) in flight at the kill, {sentAfterKill} sent after it")
            .AppendLine(string.Join('\n', results.Select(r => r.Describe())))
            .ToString();
        Out(summary);

        var unexpected = results.Where(r => r.Response?.Status is not (HttpStatusCode.Created or HttpStatusCode.BadGateway or HttpStatusCode.ServiceUnavailable)).ToList();
        await Stack.CheckAsync(unexpected.Count == 0, $"every start must answer 201, or 502/503 while core is down; unexpected:\n{summary}");
        var created = results.Where(r => r.Created).ToList();
        var failed = results.Where(r => !r.Created).ToList();
        await Stack.CheckAsync(created.Count > 0, $"no start succeeded before the kill, so no session can survive it:\n{summary}");
        await Stack.CheckAsync(results.Where(r => r.Phase == "B").All(r => !r.Created),
            $"a start sent after core was SIGKILLed answered 201 (nothing can have added its peer):\n{summary}");
        await Stack.CheckAsync(failed.Count > 0, $"no start failed although core was SIGKILLed during the burst:\n{summary}");

        // Each start completed (row active) or left nothing behind (no live row) — checked while core is still down.
        var truthProblems = new StringBuilder();
        foreach (var r in results)
        {
            var sessions = await Stack.SessionsOfCustomerAsync(r.Device.CustomerId, ct);
            var live = sessions.Where(s => s.State is "active" or "provisioning").ToList();
            if (r.Created)
            {
                var id = Guid.Parse(r.Response!.Text("session_id"));
                if (!sessions.Any(s => s.Id == id && s.State == "active"))
                {
                    truthProblems.AppendLine($"#{r.Index}: answered 201 with session {id}, but the database has [{string.Join(", ", sessions.Select(s => $"{s.Id}={s.State}"))}]");
                }
            }
            else if (live.Count > 0)
            {
                truthProblems.AppendLine($"#{r.Index}: answered {(int?)r.Response?.Status} but left live session(s) [{string.Join(", ", live.Select(s => $"{s.Id}={s.State}"))}]");
            }
        }
        await Stack.CheckAsync(truthProblems.Length == 0, $"after the burst (core down):\n{truthProblems}\n{summary}");
        // Peers whose Connect reached the device while its answer died with core: on the node, not active in the database.
        var (nodeWhileDown, downError) = await Stack.ReadNodePeersAsync();
        await Stack.CheckAsync(nodeWhileDown is not null, $"node unreadable with core down: {downError}");
        var activeWhileDown = await Stack.DatabaseActivePeersAsync(ct);
        var leftovers = nodeWhileDown!.Keys.Where(k => !activeWhileDown.ContainsKey(k)).ToList();
        Out($"while core is down: {nodeWhileDown.Count} peer(s) on the node, {activeWhileDown.Count} active in the database, " +
            $"{leftovers.Count} left over by the crash");

        // Core comes back: first sync, healthy heartbeat, and the device equals the database's active set.
        var restartedAt = DateTimeOffset.UtcNow;
        await Stack.StartCoreAsync(cancellationToken: ct);
        var synced = await Stack.WaitForNodeStatusAsync(s => s.Synced, "synced after restart", Converge, ct);
        await Stack.WaitForNodeHeartbeatAsync(restartedAt, Converge, ct);
        var (converged, took) = await Stack.WaitForConvergenceAsync("after core was SIGKILLed during a burst and restarted", Converge, ct);
        Out($"core restarted: {VpnStackFixture.Describe(synced)} (removed = peers the crash left without an active session); converged {VpnStackFixture.Seconds(took)} after the first check, {converged.Count} active peer(s)");
        await Stack.CheckAsync(synced.ReconcilePeersRemoved >= (ulong)leftovers.Count || (await Stack.GetNodeStatusAsync(ct)).ReconcilePeersRemoved >= (ulong)leftovers.Count,
            $"{leftovers.Count} peer(s) left over by the crash were pruned, but core's removed counter says {synced.ReconcilePeersRemoved}");
        foreach (var r in created)
        {
            await Stack.CheckAsync(converged.ContainsKey(r.Device.Keys.PublicKey), $"#{r.Index} answered 201 but its peer is not on the converged node.\n{summary}");
        }

        // The client, configured from a session that survived the crash, reaches inet through the node.
        var survivor = created[0];
        await Stack.UseClientSessionAsync(survivor.Device, survivor.Response!);
        var traffic = await Stack.ExpectClientTrafficAsync($"client from surviving session #{survivor.Index}", TimeSpan.FromSeconds(45), ct);
        Out($"client from surviving session #{survivor.Index} reached inet (NATed) in {VpnStackFixture.Seconds(traffic)}");

        // Customers whose start failed can start now; the node takes their peers.
        foreach (var r in failed.Take(3))
        {
            var (session, attempts) = await Stack.StartSessionUntilCreatedAsync(r.Device, TimeSpan.FromSeconds(60), ct);
            Out($"retry of #{r.Index} after the restart: 201 {session.Text("session_id")}{(attempts.Length > 0 ? $" after:\n{attempts}" : "")}");
        }
        await Stack.WaitForConvergenceAsync("after the retried starts", Converge, ct);
        await Stack.ExpectClientTrafficAsync("at the end", TimeSpan.FromSeconds(30), ct);
        Out($"final core status: {await Stack.DescribeNodeStatusAsync()}");
    }

    // ------------------------------------------------------------------------------------------------------------ 2

    [Fact(Timeout = 300_000)]
    public async Task WireGuardGo_restart_gets_interface_address_nat_and_all_peers_back()
    {
        var ct = TestContext.Current.CancellationToken;
        var before = await PrepareWithSessionsAsync(3, "before wireguard-go is killed", ct);
        var statusBefore = await Stack.GetNodeStatusAsync(ct);
        var node = Stack.Lab.Node;
        var iface = Stack.Lab.NodeInterface;

        // A restarted wireguard-go alone leaves NAT and forwarding in place; remove both as well, so the test proves core
        // re-applies them rather than finding them intact.
        await node.ExecCheckedAsync("nft", "delete", "table", "inet", "vpn_core");
        await node.ExecCheckedAsync("sysctl", "-qw", "net.ipv4.ip_forward=0");
        var watch = Stopwatch.StartNew();
        await Stack.RestartNodeWireGuardAsync();
        Stack.Step("node wireguard-go SIGKILLed and started again (empty device); vpn_core table deleted; ip_forward=0");
        var (empty, _) = await Stack.ReadNodePeersAsync();
        Out($"wireguard-go restarted: {empty?.Count.ToString() ?? "?"} peer(s) right after (before: {before.Peers.Count})");

        var (after, took) = await Stack.WaitForConvergenceAsync("after wireguard-go was restarted", Converge, ct);
        Out($"all {after.Count} peer(s) back {VpnStackFixture.Seconds(took)} after wireguard-go was up again ({VpnStackFixture.Seconds(watch.Elapsed)} including the restart and the stability window)");
        var status = await Stack.WaitForNodeStatusAsync(s => s.DeviceReinitializations > statusBefore.DeviceReinitializations,
            "a device re-initialization counted", Converge, ct);
        Out($"core status: {VpnStackFixture.Describe(status)}");
        await Stack.CheckAsync(after.Keys.ToHashSet().SetEquals(before.Peers.Keys),
            $"the active set changed across the restart: before [{string.Join(", ", before.Peers.Keys)}], after [{string.Join(", ", after.Keys)}]");

        var address = await node.ExecAsync("ip", "-4", "-o", "addr", "show", "dev", iface);
        await Stack.CheckAsync(address.StandardOutput.Contains(VpnLab.PoolGateway, StringComparison.Ordinal),
            $"{iface} lacks its address {VpnLab.PoolGateway} after the re-initialization: {address.StandardOutput}{address.StandardError}");
        var link = await node.ExecAsync("ip", "-o", "link", "show", "dev", iface);
        await Stack.CheckAsync(link.StandardOutput.Contains(",UP", StringComparison.Ordinal) || link.StandardOutput.Contains("<UP", StringComparison.Ordinal),
            $"{iface} is not up after the re-initialization: {link.StandardOutput}{link.StandardError}");
        var forwarding = (await node.ExecAsync("sysctl", "-n", "net.ipv4.ip_forward")).StandardOutput.Trim();
        await Stack.CheckAsync(forwarding == "1", $"net.ipv4.ip_forward is '{forwarding}' after the re-initialization, expected 1");
        var nat = await node.ExecAsync("nft", "list", "table", "inet", "vpn_core");
        await Stack.CheckAsync(nat.ExitCode == 0 && nat.StandardOutput.Contains("masquerade", StringComparison.Ordinal),
            $"NAT table vpn_core not re-applied: exit {nat.ExitCode} {nat.StandardOutput}{nat.StandardError}");

        var traffic = await Stack.ExpectClientTrafficAsync("after wireguard-go was restarted", TrafficAfterStateLoss, ct);
        Out($"client traffic through the re-initialized device (NATed) after {VpnStackFixture.Seconds(traffic)}");
    }

    // ------------------------------------------------------------------------------------------------------------ 4

    [Fact(Timeout = 300_000)]
    public async Task Hand_edits_on_the_node_are_reverted_rogue_removed_deleted_restored_allowed_ips_fixed()
    {
        var ct = TestContext.Current.CancellationToken;
        var (truth, _) = await PrepareWithSessionsAsync(3, "before the hand edits", ct);
        var node = Stack.Lab.Node;
        var iface = Stack.Lab.NodeInterface;
        var bound = TimeSpan.FromSeconds(30);
        var client = Stack.CurrentClient!;
        var status0 = await Stack.GetNodeStatusAsync(ct);

        // 1. A rogue peer (an address no session holds) is removed.
        var rogueKey = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
        var rogueAddress = FreeAddresses(truth).First();
        await node.ExecCheckedAsync("wg", "set", iface, "peer", rogueKey, "allowed-ips", rogueAddress);
        Stack.Step($"hand edit: rogue peer {rogueKey} {rogueAddress} added");
        // No read-back here: with a 1 s period the reconciler may already have removed it; `wg set` succeeded, and the
        // removal counter below proves a removal happened after the edit.
        var took = await WaitForNodeAsync(p => !p.ContainsKey(rogueKey), $"the rogue peer {rogueKey} ({rogueAddress}) to be removed", bound, ct);
        var status1 = await Stack.WaitForNodeStatusAsync(s => s.ReconcilePeersRemoved > status0.ReconcilePeersRemoved, "the rogue removal counted", bound, ct);
        Out($"rogue peer removed after {VpnStackFixture.Seconds(took)}; {VpnStackFixture.Describe(status1)}");

        // 2. A desired peer removed by hand (the client's own) is restored, and the client gets through again.
        var clientKey = client.Device.Keys.PublicKey;
        await node.ExecCheckedAsync("wg", "set", iface, "peer", clientKey, "remove");
        Stack.Step($"hand edit: client peer {clientKey} removed");
        took = await WaitForNodeAsync(p => p.TryGetValue(clientKey, out var a) && a == client.AllowedIps, $"the client's peer {clientKey} to be restored with {client.AllowedIps}", bound, ct);
        var status2 = await Stack.WaitForNodeStatusAsync(s => s.ReconcilePeersAdded > status1.ReconcilePeersAdded, "the restore counted", bound, ct);
        Out($"deleted peer restored after {VpnStackFixture.Seconds(took)}; {VpnStackFixture.Describe(status2)}");
        var traffic = await Stack.ExpectClientTrafficAsync("after the client's peer was removed by hand and restored", TrafficAfterStateLoss, ct);
        Out($"client traffic again after {VpnStackFixture.Seconds(traffic)}");

        // 3. Allowed IPs changed by hand (another session's peer moved to a free address) are restored.
        var (victimKey, victimAddress) = truth.First(p => p.Key != clientKey);
        var wrongAddress = FreeAddresses(truth).Skip(1).First();
        await node.ExecCheckedAsync("wg", "set", iface, "peer", victimKey, "allowed-ips", wrongAddress);
        Stack.Step($"hand edit: allowed-ips of {victimKey} changed from {victimAddress} to {wrongAddress}");
        took = await WaitForNodeAsync(p => p.TryGetValue(victimKey, out var a) && a == victimAddress, $"{victimKey}'s allowed IPs to be restored to {victimAddress}", bound, ct);
        var status3 = await Stack.WaitForNodeStatusAsync(s => s.ReconcilePeersCorrected > status2.ReconcilePeersCorrected, "the correction counted", bound, ct);
        Out($"allowed IPs restored after {VpnStackFixture.Seconds(took)}; {VpnStackFixture.Describe(status3)}");

        // 4. The client's own allowed IPs changed by hand: cut off, then restored and through again.
        await node.ExecCheckedAsync("wg", "set", iface, "peer", clientKey, "allowed-ips", wrongAddress);
        Stack.Step($"hand edit: allowed-ips of the client's peer changed to {wrongAddress}");
        took = await WaitForNodeAsync(p => p.TryGetValue(clientKey, out var a) && a == client.AllowedIps, "the client's allowed IPs to be restored", bound, ct);
        Out($"client's allowed IPs restored after {VpnStackFixture.Seconds(took)}");

        await Stack.WaitForConvergenceAsync("after the hand edits", Converge, ct);
        traffic = await Stack.ExpectClientTrafficAsync("after the hand edits", TimeSpan.FromSeconds(45), ct);
        Out($"client traffic at the end after {VpnStackFixture.Seconds(traffic)}");
    }

    // ------------------------------------------------------------------------------------------------------------ 6

    [Fact(Timeout = 300_000)]
    public async Task Core_restarted_after_failed_starts_the_first_start_after_it_succeeds()
    {
        var ct = TestContext.Current.CancellationToken;
        await Stack.PrepareAsync(ct);
        // Entry reaches core over TCP here, as in production: Grpc.Net.Client keeps a connectivity state (and a reconnect
        // backoff) only for TCP endpoints, which the fixture's unix socket would hide. A loopback port forwarded to core's
        // socket, closed and opened with the core process, is that TCP endpoint.
        await using var front = Vpn.TestSupport.TcpForwarder.ToUnixSocket(Stack.CoreSocketPath);
        front.Open();
        await SetCoreEndpointAsync($"http://127.0.0.1:{front.Port}", ct);
        try
        {
            var devices = await Stack.CreateCustomersWithDevicesAsync(4, ct);
            var before = await Stack.StartSessionAsync(devices[0], ct);
            await Stack.CheckAsync(before.Status == HttpStatusCode.Created, $"start over TCP before the restart: {VpnStackFixture.WithoutSessionKey(before)}");

            await Stack.StopCoreAsync();
            await front.CloseAsync();
            // Starts while core is down fail cleanly; they used to leave entry's channel in a reconnect backoff.
            foreach (var device in devices.Skip(1).Take(2))
            {
                var down = await Stack.StartSessionAsync(device, ct);
                Out($"start with core down: {VpnStackFixture.WithoutSessionKey(down)}");
                await Stack.CheckAsync(down.Status == HttpStatusCode.BadGateway, $"a start with core down: {VpnStackFixture.WithoutSessionKey(down)}");
            }
            var restartedAt = DateTimeOffset.UtcNow;
            await Stack.StartCoreAsync(cancellationToken: ct);
            // The node is a candidate again only once core has synced and said so in a heartbeat (until then starts
            // answer 503 by design); then its TCP port opens and the very next start must go through.
            await Stack.WaitForNodeStatusAsync(s => s.Synced, "synced after restart", Converge, ct);
            await Stack.WaitForNodeHeartbeatAsync(restartedAt, Converge, ct);
            front.Open();
            var watch = Stopwatch.StartNew();
            var after = await Stack.StartSessionAsync(devices[3], ct);
            Out($"first start after the restart ({VpnStackFixture.Seconds(watch.Elapsed)}): {VpnStackFixture.WithoutSessionKey(after)}");
            await Stack.CheckAsync(after.Status == HttpStatusCode.Created,
                $"the first start after core's restart did not answer 201: {VpnStackFixture.WithoutSessionKey(after)}");
            var (converged, _) = await Stack.WaitForConvergenceAsync("after the restart and the first start", Converge, ct);
            await Stack.CheckAsync(converged.ContainsKey(devices[3].Keys.PublicKey), "the session started after the restart has no peer on the node");
        }
        finally
        {
            await SetCoreEndpointAsync(Stack.CoreEndpoint, ct);
        }
    }
}
