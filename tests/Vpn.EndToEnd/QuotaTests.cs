namespace Vpn.EndToEnd;

/// <summary>Core reconciling with entry every second, so its usage reports follow traffic closely.</summary>
public sealed class QuotaStackFixture : VpnStackFixture
{
    protected override bool CoreReconcilesWithEntry => true;
}

/// <summary>
/// Fair-use quotas through real parts: wireguard-go's per-peer counters, read by core's reconciliation and reported to
/// entry on PostgreSQL, for traffic a client sends through its tunnel. The total survives a core restart (wireguard-go
/// keeps its counters, core continues the generation entry recorded instead of counting them again), and at 100 % the
/// session ends (reason quota_exceeded), its peer leaves the node, and a new start answers 403 quota_exceeded.
/// </summary>
public sealed class QuotaTests(QuotaStackFixture stack) : IClassFixture<QuotaStackFixture>
{
    private const string MeteredPlan = "e2e-metered";
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60); // a cap for a loaded machine, not a measurement

    private static void Out(string line) => TestContext.Current.TestOutputHelper?.WriteLine($"[{DateTime.UtcNow:HH:mm:ss.fff}] {line}");

    [Fact(Timeout = 240_000)]
    public async Task Tunnel_traffic_is_counted_once_across_a_core_restart_and_the_quota_ends_the_session()
    {
        stack.EnsureReady();
        var ct = TestContext.Current.CancellationToken;
        var entry = stack.EntryClient;
        await SetPlanQuotaAsync(1L << 40, ct);
        var keys = await WireGuardKeys.GenerateAsync();
        var device = await stack.CreateCustomerWithDeviceAsync(keys, ct);
        var customer = device.CustomerId;
        await stack.ExpectStatusAsync(await entry.AdminAsync(HttpMethod.Post, "/v1/admin/subscriptions",
            new { CustomerId = customer, PlanCode = MeteredPlan, Status = "active" }, ct), HttpStatusCode.OK);
        var (session, _) = await stack.StartSessionUntilCreatedAsync(device, Bound, ct);
        await stack.UseClientSessionAsync(device, session);
        await stack.ExpectClientTrafficAsync("metered client", TimeSpan.FromSeconds(30), ct);

        // ~600 KB through the tunnel (300 pings of 1,000 bytes each way), then the total as entry has it.
        await PingThroughTunnelAsync(300, ct);
        long used = 0;
        await VpnLab.WaitUntilAsync(async () => (used = await UsedBytesAsync(customer, ct)) >= 600_000, Bound,
            () => $"GET /v1/me shows {used} bytes used after ~600 KB of pings through the tunnel", ct);
        // Settled: one more report may still be on its way.
        await Task.Delay(TimeSpan.FromSeconds(3), ct);
        var beforeRestart = await UsedBytesAsync(customer, ct);
        Out($"after 300 pings: {beforeRestart} bytes counted");
        await stack.CheckAsync(beforeRestart < 1_000_000, $"{beforeRestart} bytes counted for ~640 KB of traffic (counted twice?)");

        // Core restarts, wireguard-go keeps running (and its counters): nothing is counted again.
        var since = DateTimeOffset.UtcNow;
        await stack.StopCoreAsync();
        await stack.StartCoreAsync(cancellationToken: ct);
        await stack.WaitForNodeHeartbeatAsync(since, Bound, ct);
        await Task.Delay(TimeSpan.FromSeconds(4), ct); // several passes and reports of the restarted core
        var afterRestart = await UsedBytesAsync(customer, ct);
        Out($"after the core restart: {afterRestart} bytes counted");
        await stack.CheckAsync(afterRestart - beforeRestart < 50_000,
            $"the core restart added {afterRestart - beforeRestart} bytes with no traffic ({beforeRestart} → {afterRestart}): the counters were counted again");

        // The quota just above what is used: the next ~600 KB cross it, the session ends, its peer leaves the node.
        await SetPlanQuotaAsync(afterRestart + 200_000, ct);
        await PingThroughTunnelAsync(300, ct);
        EntryResponse? current = null;
        await VpnLab.WaitUntilAsync(async () => (current = await entry.CustomerAsync(customer, HttpMethod.Get, "/v1/sessions/current",
            cancellationToken: ct)).Status == HttpStatusCode.NotFound, Bound, () => $"the session is still current: {current?.Describe()}", ct);
        var me = await stack.ExpectStatusAsync(await entry.CustomerAsync(customer, HttpMethod.Get, "/v1/me", cancellationToken: ct), HttpStatusCode.OK);
        var usage = me.Json["usage"]!;
        Out($"/v1/me usage at the end: {usage.ToJsonString()}");
        await stack.CheckAsync(usage["used_bytes"]!.GetValue<long>() >= usage["limit_bytes"]!.GetValue<long>(), me.Describe());
        var states = await stack.SessionsOfCustomerAsync(customer, ct);
        await stack.CheckAsync(states.All(s => s.State != "active"), $"an active session is left: {string.Join(", ", states)}");
        await stack.CheckAsync(await TerminateReasonAsync(session.Text("session_id"), ct) == "quota_exceeded", "terminate_reason is not quota_exceeded");
        IReadOnlyList<string> peers = [];
        await VpnLab.WaitUntilAsync(async () => !(peers = await stack.NodeWgShowPeersAsync()).Contains(keys.PublicKey), Bound,
            () => $"the node still has the peer: {string.Join(", ", peers)}", ct);

        var refused = await stack.ExpectStatusAsync(await stack.StartSessionAsync(device, ct), HttpStatusCode.Forbidden);
        await stack.CheckAsync(refused.Text("code") == "quota_exceeded" && refused.Json["resets_at"] is not null, refused.Describe());
        Out($"new start: {refused.Describe()}");

        // An operator's reset lets the customer back in before the period ends.
        await stack.ExpectStatusAsync(await entry.AdminAsync(HttpMethod.Post, $"/v1/admin/customers/{customer}/usage/reset", null, ct), HttpStatusCode.OK);
        var (again, _) = await stack.StartSessionUntilCreatedAsync(device, Bound, ct);
        await stack.CheckAsync(again.Status == HttpStatusCode.Created, again.Describe());
    }

    private async Task SetPlanQuotaAsync(long bytes, CancellationToken ct) =>
        await stack.ExpectStatusAsync(await stack.EntryClient.AdminAsync(HttpMethod.Post, "/v1/admin/plans",
            new { Code = MeteredPlan, Name = "E2E metered", MaxDevices = 5, AllowedRegions = new[] { VpnStackFixture.Region }, MonthlyDataBytes = bytes }, ct),
            HttpStatusCode.OK);

    private async Task<long> UsedBytesAsync(Guid customer, CancellationToken ct)
    {
        var me = await stack.ExpectStatusAsync(await stack.EntryClient.CustomerAsync(customer, HttpMethod.Get, "/v1/me", cancellationToken: ct), HttpStatusCode.OK);
        return me.Json["usage"]!["used_bytes"]!.GetValue<long>();
    }

    /// <summary>Pings inet from the client through its tunnel (the client routes everything into it), 1,000-byte payloads.</summary>
    private async Task PingThroughTunnelAsync(int count, CancellationToken ct)
    {
        var result = await stack.Lab.Client.ExecAsync("ping", ["-q", "-n", "-c", count.ToString(CultureInfo.InvariantCulture), "-i", "0.01", "-s", "1000",
            "-W", "2", VpnLab.InetIp], null, TimeSpan.FromSeconds(60));
        Out($"ping ×{count}: {result.StandardOutput.Trim().Split('\n').LastOrDefault()}");
        await stack.CheckAsync(result.ExitCode == 0, $"ping through the tunnel failed ({result.ExitCode}): {result.StandardOutput}{result.StandardError}");
        ct.ThrowIfCancellationRequested();
    }

    private async Task<string?> TerminateReasonAsync(string sessionId, CancellationToken ct)
    {
        await using var connection = stack.OpenDatabase();
        await connection.OpenAsync(ct);
        await using var command = new Npgsql.NpgsqlCommand("select terminate_reason from sessions where id = @id", connection);
        command.Parameters.AddWithValue("id", Guid.Parse(sessionId));
        return await command.ExecuteScalarAsync(ct) as string;
    }
}
