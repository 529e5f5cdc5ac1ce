using System.Globalization;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Vpn.Entry.Audit;
using Vpn.Entry.Data.Postgres;
using Vpn.Entry.Tests.Privacy;

namespace Vpn.Entry.Tests.Usage;

/// <summary>
/// Quotas through the HTTP API on a fake clock: a customer subscribed on 31 January 2028 (a leap year, so the period ends
/// on 29 February) reported over its plan's monthly_data_bytes loses its session and cannot start another until the
/// period resets or an operator resets the use; the internal report is validated whole before anything counts.
/// </summary>
public abstract partial class QuotaApiTests(StoreKind store)
{
    private static readonly DateTimeOffset Subscribed = new(2028, 1, 31, 9, 0, 0, TimeSpan.Zero);
    private static readonly DateTimeOffset PeriodStart = new(2028, 1, 31, 0, 0, 0, TimeSpan.Zero);
    private static readonly DateTimeOffset ResetsAt = new(2028, 2, 29, 0, 0, 0, TimeSpan.Zero);

    private const long Limit = 10_000;

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private sealed record Quota(TestStack Stack, FakeTimeProvider Clock, Customer Customer) : IAsyncDisposable
    {
        public ValueTask DisposeAsync() => Stack.DisposeAsync();
    }

    /// <summary>entry on a fake clock at <see cref="Subscribed"/> (no background retention pass), and a customer subscribed then.</summary>
    private async Task<Quota> StartAsync(long? monthlyDataBytes = Limit)
    {
        var clock = new FakeTimeProvider(Subscribed);
        var stack = await TestStack.StartAsync(store, configureServices: services =>
        {
            BackgroundCleanup.Remove(services);
            services.RemoveAll<TimeProvider>();
            services.AddSingleton<TimeProvider>(clock);
            // The revocation list's staleness (PostgreSQL) stays on real time: a jump of the fake clock would make it stale
            // before its loop reloads it, and it fails closed (503 revocation_unavailable).
            if (services.Any(d => d.ServiceType == typeof(PostgresTokenRevocations)))
            {
                services.RemoveAll<PostgresTokenRevocations>();
                services.AddSingleton(sp => ActivatorUtilities.CreateInstance<PostgresTokenRevocations>(sp, TimeProvider.System));
            }
        });
        await stack.SendJsonAsync(stack.Admin(HttpMethod.Post, "/v1/admin/plans", new
        {
            code = "metered", name = "Metered", max_devices = 5, allowed_regions = new[] { "eu-west" }, monthly_data_bytes = monthlyDataBytes,
        }), 200);
        var node = await stack.RegisterNodeAsync("node-eu-west", "eu-west");
        var customer = Guid.NewGuid();
        await stack.SendJsonAsync(stack.Admin(HttpMethod.Post, "/v1/admin/subscriptions", new { customer_id = customer, plan_code = "metered", status = "active" }), 200);
        var device = await stack.SendJsonAsync(TestStack.AsCustomer(customer, HttpMethod.Post, "/v1/devices", new { name = "laptop", public_key = TestStack.NewKey() }), 201);
        return new Quota(stack, clock, new Customer(customer, device.GetProperty("id").GetGuid(), node));
    }

    private static HttpRequestMessage Start(Customer c) =>
        TestStack.AsCustomer(c.Id, HttpMethod.Post, "/v1/sessions", new { device_id = c.DeviceId, region = "eu-west" });

    private static async Task<Guid> StartSessionAsync(Quota q) =>
        (await q.Stack.SendJsonAsync(Start(q.Customer), 201)).GetProperty("session_id").GetGuid();

    private static HttpRequestMessage Report(Quota q, params object[] sessions) =>
        q.Stack.Admin(HttpMethod.Post, $"/v1/internal/nodes/{q.Customer.NodeId:D}/usage", new { sessions });

    private static object Counters(Guid sessionId, long generation, long rx, long tx) =>
        new { session_id = sessionId, generation, rx_bytes = rx, tx_bytes = tx };

    /// <summary>Moves the clock and sends the node's heartbeat at the new time (the freshness window follows the clock).</summary>
    private static async Task AdvanceToAsync(Quota q, DateTimeOffset at)
    {
        q.Clock.SetUtcNow(at);
        await q.Stack.SendJsonAsync(q.Stack.Admin(HttpMethod.Post, "/v1/internal/nodes/health",
            new { node_id = q.Customer.NodeId, healthy = true, active_peer_count = 0 }), 204);
    }

    private static void AssertUsage(JsonElement usage, long used, long? limit, DateTimeOffset periodStart, DateTimeOffset resetsAt)
    {
        Assert.Equal(used, usage.GetProperty("used_bytes").GetInt64());
        if (limit is null)
        {
            Assert.Equal(JsonValueKind.Null, usage.GetProperty("limit_bytes").ValueKind);
        }
        else
        {
            Assert.Equal(limit, usage.GetProperty("limit_bytes").GetInt64());
        }
        Assert.Equal(periodStart, usage.GetProperty("period_start").GetDateTimeOffset());
        Assert.Equal(resetsAt, usage.GetProperty("resets_at").GetDateTimeOffset());
    }

    private static async Task<JsonElement> MeUsageAsync(Quota q) =>
        (await q.Stack.SendJsonAsync(TestStack.AsCustomer(q.Customer.Id, HttpMethod.Get, "/v1/me"), 200)).GetProperty("usage");

    private static async Task AssertQuotaExceededAsync(Quota q, DateTimeOffset resetsAt)
    {
        using var response = await q.Stack.Client.SendAsync(Start(q.Customer), Ct);
        var body = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.StatusCode == HttpStatusCode.Forbidden, body);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = JsonDocument.Parse(body).RootElement;
        Assert.Equal("quota_exceeded", problem.GetProperty("code").GetString());
        Assert.Equal(resetsAt, problem.GetProperty("resets_at").GetDateTimeOffset());
    }

    [Fact]
    public async Task Report_OverTheQuota_EndsTheSession_StartRefusedUntilThePeriodResets()
    {
        await using var q = await StartAsync();
        var sessionId = await StartSessionAsync(q);
        AssertUsage(await MeUsageAsync(q), 0, Limit, PeriodStart, ResetsAt);

        q.Clock.Advance(TimeSpan.FromHours(3));
        await q.Stack.SendJsonAsync(Report(q, Counters(sessionId, 7, 4000, 1000)), 204);
        // Under the quota: the session lives on, the node's desired peers carry the counters recorded.
        await q.Stack.SendJsonAsync(TestStack.AsCustomer(q.Customer.Id, HttpMethod.Get, "/v1/sessions/current"), 200);
        var peers = await q.Stack.SendJsonAsync(q.Stack.Admin(HttpMethod.Get, $"/v1/internal/nodes/{q.Customer.NodeId:D}/peers"), 200);
        var peer = Assert.Single(peers.GetProperty("peers").EnumerateArray());
        Assert.Equal((7L, 4000L, 1000L), (peer.GetProperty("usage_generation").GetInt64(), peer.GetProperty("usage_rx_bytes").GetInt64(),
            peer.GetProperty("usage_tx_bytes").GetInt64()));
        AssertUsage(await MeUsageAsync(q), 5000, Limit, PeriodStart, ResetsAt);
        Assert.Equal(1, await q.Stack.CoreDataplane.CountPeersAsync(Ct));

        await q.Stack.SendJsonAsync(Report(q, Counters(sessionId, 7, 9000, 1500)), 204);

        var gone = await q.Stack.SendJsonAsync(TestStack.AsCustomer(q.Customer.Id, HttpMethod.Get, "/v1/sessions/current"), 404);
        Assert.Equal("no_active_session", gone.GetProperty("code").GetString());
        Assert.Equal(0, await q.Stack.CoreDataplane.CountPeersAsync(Ct));
        var events = await q.Stack.EntryServices.GetRequiredService<IAuditLog>().RecentAsync(100, Ct);
        Assert.Contains(events, e => e.Action == "session.terminated" && e.Subject == sessionId.ToString() && e.Details["reason"] == "quota_exceeded");
        await AssertQuotaExceededAsync(q, ResetsAt);
        AssertUsage(await MeUsageAsync(q), 10_500, Limit, PeriodStart, ResetsAt);
        AssertUsage(await q.Stack.SendJsonAsync(q.Stack.Admin(HttpMethod.Get, $"/v1/admin/customers/{q.Customer.Id:D}/usage"), 200),
            10_500, Limit, PeriodStart, ResetsAt);

        // The last microsecond of the period: still refused. Its end (29 February 00:00Z): a new period, a new start.
        await AdvanceToAsync(q, ResetsAt.AddTicks(-TimeSpan.TicksPerMicrosecond));
        await AssertQuotaExceededAsync(q, ResetsAt);
        await AdvanceToAsync(q, ResetsAt);
        await StartSessionAsync(q);
        AssertUsage(await MeUsageAsync(q), 0, Limit, ResetsAt, new DateTimeOffset(2028, 3, 31, 0, 0, 0, TimeSpan.Zero));
    }

    [Fact]
    public async Task AdminReset_LetsAStartSucceedBeforeThePeriodEnds()
    {
        await using var q = await StartAsync();
        var sessionId = await StartSessionAsync(q);
        await q.Stack.SendJsonAsync(Report(q, Counters(sessionId, 1, Limit, 0)), 204);
        await AssertQuotaExceededAsync(q, ResetsAt);

        await AdvanceToAsync(q, new DateTimeOffset(2028, 2, 10, 12, 0, 0, TimeSpan.Zero));
        var reset = await q.Stack.SendJsonAsync(q.Stack.Admin(HttpMethod.Post, $"/v1/admin/customers/{q.Customer.Id:D}/usage/reset"), 200);
        AssertUsage(reset, 0, Limit, PeriodStart, ResetsAt);
        var events = await q.Stack.EntryServices.GetRequiredService<IAuditLog>().RecentAsync(100, Ct);
        Assert.Contains(events, e => e.Action == "usage.reset" && e.Subject == q.Customer.Id.ToString() && e.Actor == "admin");

        var second = await StartSessionAsync(q);
        AssertUsage(await MeUsageAsync(q), 0, Limit, PeriodStart, ResetsAt);
        // The new session's peer is a new one (the old one was removed when the quota ended it): a new generation,
        // counted from its first report.
        await q.Stack.SendJsonAsync(Report(q, Counters(second, 2, 300, 200)), 204);
        AssertUsage(await MeUsageAsync(q), 500, Limit, PeriodStart, ResetsAt);
    }

    [Fact]
    public async Task UnlimitedPlan_NeverBlocks()
    {
        await using var q = await StartAsync(monthlyDataBytes: null);
        var sessionId = await StartSessionAsync(q);

        await q.Stack.SendJsonAsync(Report(q, Counters(sessionId, 1, 1L << 50, 1L << 50)), 204);

        await q.Stack.SendJsonAsync(TestStack.AsCustomer(q.Customer.Id, HttpMethod.Get, "/v1/sessions/current"), 200);
        AssertUsage(await MeUsageAsync(q), 1L << 51, null, PeriodStart, ResetsAt);
        Assert.Equal(1, await q.Stack.CoreDataplane.CountPeersAsync(Ct));
        await q.Stack.SendJsonAsync(TestStack.AsCustomer(q.Customer.Id, HttpMethod.Post, "/v1/sessions",
            new { device_id = q.Customer.DeviceId, region = "eu-west", replace_existing = true }), 201);
    }

    [Fact]
    public async Task Report_InvalidEntries_400InvalidRequest_NothingRecorded()
    {
        await using var q = await StartAsync();
        var sessionId = await StartSessionAsync(q);
        var good = Counters(sessionId, 1, Limit, Limit);
        var tooMany = Enumerable.Range(0, 401).Select(_ => Counters(Guid.NewGuid(), 1, 1, 1)).Prepend(good).ToArray();
        var bodies = new (string Name, object Body)[]
        {
            ("duplicate session ids", new { sessions = new[] { good, Counters(sessionId, 2, 1, 1) } }),
            ("negative rx_bytes", new { sessions = new[] { good, Counters(Guid.NewGuid(), 1, -1, 0) } }),
            ("negative tx_bytes", new { sessions = new[] { good, Counters(Guid.NewGuid(), 1, 0, -5) } }),
            ("generation 0", new { sessions = new[] { good, Counters(Guid.NewGuid(), 0, 1, 1) } }),
            ("negative generation", new { sessions = new[] { good, Counters(Guid.NewGuid(), -3, 1, 1) } }),
            ("more than 400 entries", new { sessions = tooMany }),
            ("session_id not a UUID", new { sessions = new object[] { good, new { session_id = "nope", generation = 1, rx_bytes = 1, tx_bytes = 1 } } }),
            ("generation missing", new { sessions = new object[] { good, new { session_id = Guid.NewGuid(), rx_bytes = 1, tx_bytes = 1 } } }),
            ("a null entry", new { sessions = new object?[] { good, null } }),
            ("sessions missing", new { }),
        };
        foreach (var (name, body) in bodies)
        {
            using var response = await q.Stack.Client.SendAsync(q.Stack.Admin(HttpMethod.Post, $"/v1/internal/nodes/{q.Customer.NodeId:D}/usage", body), Ct);
            var text = await response.Content.ReadAsStringAsync(Ct);
            Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{name}: {(int)response.StatusCode} {text}");
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            Assert.Equal("invalid_request", JsonDocument.Parse(text).RootElement.GetProperty("code").GetString());
        }
        using (var raw = new HttpRequestMessage(HttpMethod.Post, $"/v1/internal/nodes/{q.Customer.NodeId:D}/usage"))
        {
            raw.Headers.Add("x-admin-token", TestStack.AdminToken);
            raw.Content = new StringContent("{\"sessions\": [", Encoding.UTF8, "application/json");
            var broken = await q.Stack.SendJsonAsync(raw, 400);
            Assert.Equal("invalid_request", broken.GetProperty("code").GetString());
        }

        // None of it counted, not even the good entry each bad report held: the session lives, the use is zero.
        AssertUsage(await MeUsageAsync(q), 0, Limit, PeriodStart, ResetsAt);
        await q.Stack.SendJsonAsync(TestStack.AsCustomer(q.Customer.Id, HttpMethod.Get, "/v1/sessions/current"), 200);
        // Exactly 400 is allowed (unknown sessions are ignored), and the good entry then counts.
        var full = Enumerable.Range(0, 399).Select(_ => Counters(Guid.NewGuid(), 1, 1, 1)).Prepend(Counters(sessionId, 1, 100, 0)).ToArray();
        await q.Stack.SendJsonAsync(Report(q, full), 204);
        AssertUsage(await MeUsageAsync(q), 100, Limit, PeriodStart, ResetsAt);
    }

    [Fact]
    public async Task Report_CountersNearTheTopOfTheRange_NoOverflow_TheUseSaturates()
    {
        await using var q = await StartAsync();
        var sessionId = await StartSessionAsync(q);

        // Both directions at the largest value allowed: their sum does not fit a 64-bit total; the total saturates.
        await q.Stack.SendJsonAsync(Report(q, Counters(sessionId, 1, long.MaxValue, long.MaxValue)), 204);
        AssertUsage(await MeUsageAsync(q), long.MaxValue, Limit, PeriodStart, ResetsAt);
        await AssertQuotaExceededAsync(q, ResetsAt);
    }

    [Fact]
    public async Task Report_NewGenerationsPastTheTopOfTheRange_TheUseSaturates_NoOverflow()
    {
        await using var q = await StartAsync(monthlyDataBytes: null);
        var sessionId = await StartSessionAsync(q);

        for (var generation = 1; generation <= 3; generation++)
        {
            await q.Stack.SendJsonAsync(Report(q, Counters(sessionId, generation, long.MaxValue / 2, 0)), 204);
        }
        AssertUsage(await MeUsageAsync(q), long.MaxValue, null, PeriodStart, ResetsAt);
    }

    [Fact]
    public async Task Report_WithoutTheAdminToken_Refused_NothingRecorded()
    {
        await using var q = await StartAsync();
        var sessionId = await StartSessionAsync(q);
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/v1/internal/nodes/{q.Customer.NodeId:D}/usage")
        {
            Content = System.Net.Http.Json.JsonContent.Create(new { sessions = new[] { Counters(sessionId, 1, Limit, 0) } }),
        };
        await q.Stack.SendJsonAsync(request, 401);
        AssertUsage(await MeUsageAsync(q), 0, Limit, PeriodStart, ResetsAt);
    }

    [Theory]
    [InlineData("0")]
    [InlineData("-1")]
    [InlineData("1125899906842625")] // 2^50 + 1
    public async Task CreatePlan_MonthlyDataBytesOutOfRange_400(string value)
    {
        await using var stack = await TestStack.StartAsync(store);
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/admin/plans")
        {
            Content = new StringContent(string.Create(CultureInfo.InvariantCulture,
                $"{{\"code\":\"p\",\"name\":\"P\",\"max_devices\":1,\"allowed_regions\":[\"eu-west\"],\"monthly_data_bytes\":{value}}}"), Encoding.UTF8, "application/json"),
        };
        request.Headers.Add("x-admin-token", TestStack.AdminToken);
        var problem = await stack.SendJsonAsync(request, 400);
        Assert.Equal("invalid_request", problem.GetProperty("code").GetString());
        await stack.SendJsonAsync(stack.Admin(HttpMethod.Post, "/v1/admin/plans",
            new { code = "p", name = "P", max_devices = 1, allowed_regions = new[] { "eu-west" }, monthly_data_bytes = 1L << 50 }), 200);
    }
}

public sealed class InMemoryQuotaApiTests() : QuotaApiTests(StoreKind.InMemory);

public sealed class PostgresQuotaApiTests() : QuotaApiTests(StoreKind.Postgres);
