using System.Collections.Concurrent;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace Vpn.Bench.Fleet;

/// <summary>
/// storm: N customers start sessions within a window across 2 entry replicas and 3 nodes (real processes, real
/// wireguard-go), each retrying as a well-behaved app does: the same Idempotency-Key, after the answer's Retry-After
/// (or 1 s when a request got no answer). Then the invariants, read from the database and the devices: no customer with
/// two live sessions, no address held twice on a node, every 201 still active, and after one reconcile interval every
/// node's <c>wg show</c> equal to the database. Modes: plain; core-kill (one core SIGKILLed a third of the way in and
/// restarted 5 s later, as a supervisor would); switchover (the PostgreSQL primary killed a third of the way in and
/// the synchronous standby promoted a second later).
/// </summary>
internal static class StormBenchmark
{
    private const int Replicas = 2;
    private const int Cores = 3;
    private const int ReconcileSeconds = 10;
    private static readonly TimeSpan GiveUpAfter = TimeSpan.FromMinutes(4);

    public static async Task<int> RunAsync(int customers, string mode, int windowSeconds)
    {
        var modes = mode == "all" ? new[] { "plain", "core-kill", "switchover" } : [mode];
        var failed = 0;
        foreach (var m in modes)
        {
            failed += await RunModeAsync(customers, m, windowSeconds) ? 0 : 1;
        }
        return failed == 0 ? 0 : 1;
    }

    private static async Task<bool> RunModeAsync(int customers, string mode, int windowSeconds)
    {
        await using var rig = await FleetRig.StartAsync(Replicas, Cores, entrySettings: null, replicated: mode == "switchover",
            coreReconcileSeconds: ReconcileSeconds);
        var uris = rig.Entries.Select(e => e.BaseAddress).ToArray();
        var work = await rig.SeedCustomersAsync(customers);
        Console.WriteLine($"storm {mode}: {customers} customers arriving over {windowSeconds} s, {Replicas} entry replicas, {Cores} nodes; load {Load()}");

        var clock = Stopwatch.StartNew();
        var fault = mode switch
        {
            "core-kill" => Task.Run(async () =>
            {
                await Task.Delay(TimeSpan.FromSeconds(windowSeconds / 3.0));
                rig.Cores[1].KillCore();
                Console.WriteLine($"storm {mode}: core-1 killed at {clock.Elapsed.TotalSeconds:F1} s");
                await Task.Delay(TimeSpan.FromSeconds(5));
                await rig.Cores[1].RestartCoreAsync();
                Console.WriteLine($"storm {mode}: core-1 restarted at {clock.Elapsed.TotalSeconds:F1} s");
            }),
            "switchover" => Task.Run(async () =>
            {
                await Task.Delay(TimeSpan.FromSeconds(windowSeconds / 3.0));
                await rig.Pair!.KillPrimaryAsync();
                Console.WriteLine($"storm {mode}: primary killed at {clock.Elapsed.TotalSeconds:F1} s");
                await Task.Delay(TimeSpan.FromSeconds(1));
                await rig.Pair.PromoteAsync();
                Console.WriteLine($"storm {mode}: standby promoted at {clock.Elapsed.TotalSeconds:F1} s");
            }),
            "plain" => Task.CompletedTask,
            _ => throw new ArgumentException($"unknown storm mode {mode} (plain, core-kill, switchover, all)"),
        };
        var result = await StormLoad.RunAsync(uris, work, TimeSpan.FromSeconds(windowSeconds), GiveUpAfter);
        await fault;
        Console.WriteLine($"storm {mode}: {result.Describe()}");

        // The invariants, from the database (the new primary after a switchover) and from every device.
        var twoSessions = await rig.ScalarAsync(
            "select count(*) from (select customer_id from sessions where state in ('active', 'provisioning') group by customer_id having count(*) > 1) t");
        var duplicateV4 = await rig.ScalarAsync(
            "select count(*) from (select 1 from sessions where state = 'active' group by node_id, assigned_address having count(*) > 1) t");
        var duplicateV6 = await rig.ScalarAsync(
            "select count(*) from (select 1 from sessions where state = 'active' and assigned_address_v6 is not null group by node_id, assigned_address_v6 having count(*) > 1) t");
        var active = await rig.ScalarAsync("select count(*) from sessions where state = 'active'");
        var lost = result.SessionIds.Count - await CountActiveAsync(rig, result.SessionIds.Values);
        Console.WriteLine($"storm {mode}: {active} active sessions; customers with two live sessions {twoSessions}; duplicate addresses v4 {duplicateV4} v6 {duplicateV6}; " +
            $"sessions answered 201 but no longer active {lost}");

        // One reconcile interval (plus a heartbeat) after the storm, every node's device equals the database.
        await Task.Delay(TimeSpan.FromSeconds(ReconcileSeconds + 3));
        var converged = true;
        foreach (var core in rig.Cores)
        {
            var (equal, detail) = await CompareAsync(rig, core);
            converged &= equal;
            Console.WriteLine($"storm {mode}: node {core.NodeId}: {detail}");
        }
        var ok = result.Unfinished == 0 && result.Status500 == 0 && twoSessions == 0 && duplicateV4 == 0 && duplicateV6 == 0 && lost == 0 && converged;
        Console.WriteLine($"storm {mode} result: {(ok ? "PASS" : "FAIL")} — every customer started {result.Unfinished == 0}, no 500 {result.Status500 == 0}, " +
            $"one session each {twoSessions == 0}, unique addresses {duplicateV4 + duplicateV6 == 0}, none lost {lost == 0}, wg show == database {converged}; load {Load()}");
        return ok;
    }

    private static async Task<long> CountActiveAsync(FleetRig rig, IEnumerable<Guid> ids)
    {
        await using var connection = new Npgsql.NpgsqlConnection(rig.ConnectionString);
        await connection.OpenAsync();
        await using var command = new Npgsql.NpgsqlCommand("select count(*) from sessions where state = 'active' and id = any(@ids)", connection);
        command.Parameters.AddWithValue("ids", ids.ToArray());
        return (long)(await command.ExecuteScalarAsync())!;
    }

    /// <summary>The node's peers (key → allowed IPs) against its active sessions in the database (device key → /32 and /128).</summary>
    private static async Task<(bool Equal, string Detail)> CompareAsync(FleetRig rig, CoreNode core)
    {
        var peers = await core.ReadPeersAsync();
        var expected = new Dictionary<string, string>(StringComparer.Ordinal);
        await using (var connection = new Npgsql.NpgsqlConnection(rig.ConnectionString))
        {
            await connection.OpenAsync();
            await using var command = new Npgsql.NpgsqlCommand(
                "select device_public_key, assigned_address::text, assigned_address_v6::text from sessions where state = 'active' and node_id = @node", connection);
            command.Parameters.AddWithValue("node", core.NodeId);
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
            {
                var ips = new List<string> { reader.GetString(1).Split('/')[0] + "/32" };
                if (!reader.IsDBNull(2))
                {
                    ips.Add(reader.GetString(2).Split('/')[0] + "/128");
                }
                expected[reader.GetString(0)] = string.Join(' ', ips.Order(StringComparer.Ordinal));
            }
        }
        var actual = peers.ToDictionary(p => p.Key, p => string.Join(' ', p.Value.Split(' ', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal)),
            StringComparer.Ordinal);
        var missing = expected.Keys.Count(k => !actual.ContainsKey(k));
        var extra = actual.Keys.Count(k => !expected.ContainsKey(k));
        var wrong = expected.Count(e => actual.TryGetValue(e.Key, out var a) && a != e.Value);
        var equal = missing == 0 && extra == 0 && wrong == 0;
        return (equal, $"database {expected.Count} active, device {actual.Count} peers, missing {missing}, extra {extra}, wrong addresses {wrong}{(equal ? " — equal" : "")}");
    }

    private static string Load() => File.ReadAllText("/proc/loadavg").Trim();
}

/// <summary>What one storm measured: every attempt's status, each customer's time to a session.</summary>
internal sealed record StormResult(int Customers, IReadOnlyDictionary<string, int> Attempts, IReadOnlyDictionary<Guid, Guid> SessionIds, int Unfinished,
    TimeSpan Elapsed, double P50Ms, double P99Ms, double MaxMs, int MaxAttempts, int Replaced)
{
    public int Status500 => Attempts.Where(a => a.Key.StartsWith("500", StringComparison.Ordinal)).Sum(a => a.Value);

    public string Describe() => string.Create(CultureInfo.InvariantCulture,
        $"{SessionIds.Count}/{Customers} customers got a session in {Elapsed.TotalSeconds:F1} s ({Unfinished} gave up); time to session p50 {P50Ms:F0} ms, " +
        $"p99 {P99Ms:F0} ms, max {MaxMs:F0} ms; most attempts by one customer {MaxAttempts}; customers who replaced a session whose answer was lost {Replaced}; attempts by answer: {AttemptText}");

    private string AttemptText => string.Join(", ", Attempts.OrderByDescending(a => a.Value).Select(a => $"{a.Key} x{a.Value}"));
}

/// <summary>
/// The storm's clients: customer i arrives at i/N of the window and starts its session; on 429, 502, 503 or 409
/// idempotency_key_in_progress it waits the answer's Retry-After (1 s without one; 1 s after no answer at all) and sends
/// the same request with the same Idempotency-Key again, until it gets its 201 or gives up. A 409 session_conflict means
/// a session of its own whose answer it never got (committed while the store went away): it starts again with
/// replace_existing, as an app does, under a new key.
/// </summary>
internal static class StormLoad
{
    public static async Task<StormResult> RunAsync(IReadOnlyList<Uri> replicas, IReadOnlyList<(Guid Customer, Guid Device)> work, TimeSpan window,
        TimeSpan giveUpAfter)
    {
        var clients = replicas.Select(r => new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 2048, PooledConnectionLifetime = Timeout.InfiniteTimeSpan })
        {
            BaseAddress = r,
            Timeout = TimeSpan.FromSeconds(30),
        }).ToArray();
        var attempts = new ConcurrentDictionary<string, int>(StringComparer.Ordinal);
        var sessions = new ConcurrentDictionary<Guid, Guid>();
        var times = new ConcurrentBag<double>();
        var maxAttempts = 0;
        var unfinished = 0;
        var replaced = 0;
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(work.Select((w, i) => Task.Run(async () =>
        {
            await Task.Delay(window * ((double)i / work.Count));
            var arrived = Stopwatch.GetTimestamp();
            var key = Guid.NewGuid().ToString("N");
            var replace = false;
            for (var attempt = 1; ; attempt++)
            {
                var (status, code, retryAfter, sessionId) = await SendAsync(clients[(i + attempt) % clients.Length], w, key, replace);
                attempts.AddOrUpdate(code is null ? status.ToString(CultureInfo.InvariantCulture) : $"{status} {code}", 1, (_, n) => n + 1);
                if (status == 201)
                {
                    sessions[w.Customer] = sessionId!.Value;
                    times.Add(Stopwatch.GetElapsedTime(arrived).TotalMilliseconds);
                    InterlockedMax(ref maxAttempts, attempt);
                    return;
                }
                if (status == 409 && code == "session_conflict" && !replace)
                {
                    // A session of ours exists whose answer never reached us (its start committed, the answer was lost in
                    // the outage): as an app does, start again replacing it — a new request, so a new Idempotency-Key.
                    Interlocked.Increment(ref replaced);
                    replace = true;
                    key = Guid.NewGuid().ToString("N");
                    continue;
                }
                // After replacing, session_conflict means a start of ours still holds the slot (provisioning): one the
                // outage cut off, whose row entry could not mark failed, stays until the sweeper
                // (APP_PROVISIONING_TIMEOUT_SECS). Retried every few seconds, as an app would.
                var retryable = status is 429 or 502 or 503 or -1 || (status == 409 && code is "idempotency_key_in_progress" or "session_conflict");
                if (!retryable || Stopwatch.GetElapsedTime(arrived) > giveUpAfter)
                {
                    Interlocked.Increment(ref unfinished);
                    InterlockedMax(ref maxAttempts, attempt);
                    return;
                }
                if (status == 409 && code == "session_conflict")
                {
                    // A 4xx answer is recorded under its Idempotency-Key (a retry with it replays the same 409): the next
                    // try is a new request.
                    key = Guid.NewGuid().ToString("N");
                }
                await Task.Delay(TimeSpan.FromSeconds(retryAfter ?? (status == 409 ? 5 : 1)) + TimeSpan.FromMilliseconds(Random.Shared.Next(0, 250)));
            }
        })));
        var elapsed = clock.Elapsed;
        foreach (var client in clients)
        {
            client.Dispose();
        }
        var sorted = times.Order().ToArray();
        return new StormResult(work.Count, attempts, sessions, unfinished, elapsed, Percentile(sorted, 0.50), Percentile(sorted, 0.99),
            sorted.Length == 0 ? 0 : sorted[^1], maxAttempts, replaced);
    }

    private static async Task<(int Status, string? Code, int? RetryAfter, Guid? SessionId)> SendAsync(HttpClient client, (Guid Customer, Guid Device) w, string key,
        bool replace)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/sessions")
        {
            Content = new StringContent($"{{\"device_id\":\"{w.Device}\",\"region\":\"{FleetRig.Region}\",\"replace_existing\":{(replace ? "true" : "false")}}}",
                Encoding.UTF8, new MediaTypeHeaderValue("application/json")),
        };
        request.Headers.Add("x-customer-id", w.Customer.ToString());
        request.Headers.Add("Idempotency-Key", key);
        try
        {
            using var response = await client.SendAsync(request);
            var body = await response.Content.ReadAsStringAsync();
            var status = (int)response.StatusCode;
            int? retryAfter = response.Headers.RetryAfter?.Delta is { } delta ? (int)delta.TotalSeconds : null;
            if (body.Length == 0 || !body.TrimStart().StartsWith('{'))
            {
                return (status, null, retryAfter, null);
            }
            using var json = JsonDocument.Parse(body);
            var code = json.RootElement.TryGetProperty("code", out var c) ? c.GetString() : null;
            Guid? id = status == 201 ? json.RootElement.GetProperty("session_id").GetGuid() : null;
            return (status, code, retryAfter, id);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return (-1, e is TaskCanceledException ? "client_timeout" : "no_answer", null, null);
        }
    }

    private static void InterlockedMax(ref int target, int value)
    {
        for (var current = Volatile.Read(ref target); value > current; current = Volatile.Read(ref target))
        {
            if (Interlocked.CompareExchange(ref target, value, current) == current)
            {
                return;
            }
        }
    }

    private static double Percentile(double[] sorted, double p) => sorted.Length == 0 ? 0 : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)];
}
