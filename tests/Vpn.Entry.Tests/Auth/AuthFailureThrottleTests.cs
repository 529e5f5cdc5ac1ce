using System.Text.RegularExpressions;
using Vpn.Entry.Audit;

namespace Vpn.Entry.Tests.Auth;

/// <summary>
/// Guessable credentials (the admin token, session keys) spend a budget of failures per client address: the partition
/// of the rate limiter (connection address, X-Forwarded-For only through trusted proxies, IPv6 by /64).
/// </summary>
public sealed class AuthFailureThrottleTests
{
    private const string WrongToken = "guess-0123456789abcdef-not-the-admin-token";

    private static Task<TestStack> StartAsync(int adminFailures = 10, int sessionKeyFailures = 3, string? trustedProxies = null) =>
        TestStack.StartAsync(StoreKind.InMemory, new Dictionary<string, string?>
        {
            ["APP_RATE_LIMIT_ADMIN_FAILURES_PER_MIN"] = adminFailures.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["APP_RATE_LIMIT_SESSION_KEY_FAILURES_PER_MIN"] = sessionKeyFailures.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["APP_TRUSTED_PROXIES"] = trustedProxies,
        });

    private static HttpRequestMessage AdminGet(string peer, string? token, string? forwardedFor = null, string path = "/v1/admin/nodes")
    {
        var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Add(TestStack.PeerAddressHeader, peer);
        if (token is not null)
        {
            request.Headers.Add("x-admin-token", token);
        }
        if (forwardedFor is not null)
        {
            request.Headers.Add("X-Forwarded-For", forwardedFor);
        }
        return request;
    }

    private static async Task<(int Status, string Body, string? RetryAfter)> SendAsync(TestStack stack, HttpRequestMessage request)
    {
        using (request)
        {
            using var response = await stack.Client.SendAsync(request, TestContext.Current.CancellationToken);
            var body = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
            return ((int)response.StatusCode, body, response.Headers.TryGetValues("Retry-After", out var values) ? values.Single() : null);
        }
    }

    private static void AssertRateLimited((int Status, string Body, string? RetryAfter) answer)
    {
        Assert.True(answer.Status == 429, $"{answer.Status} {answer.Body}");
        Assert.Equal("rate_limited", JsonDocument.Parse(answer.Body).RootElement.GetProperty("code").GetString());
        Assert.NotNull(answer.RetryAfter);
        Assert.InRange(int.Parse(answer.RetryAfter, System.Globalization.CultureInfo.InvariantCulture), 1, 60);
    }

    [Fact]
    public async Task AdminToken_300WrongFromOneAddress_BudgetThen429_CountedAndAudited_OtherAddressUnaffected()
    {
        await using var stack = await StartAsync(adminFailures: 10);
        var clock = Stopwatch.StartNew();
        var answers = await Task.WhenAll(Enumerable.Range(0, 300).Select(_ => SendAsync(stack, AdminGet("203.0.113.50", WrongToken))));
        TestContext.Current.SendDiagnosticMessage($"300 wrong admin tokens answered in {clock.ElapsedMilliseconds} ms");

        Assert.Equal(10, answers.Count(a => a.Status == 401));
        Assert.Equal(290, answers.Count(a => a.Status == 429));
        AssertRateLimited(answers.First(a => a.Status == 429));
        // Spent: even the right token from that address is refused (otherwise 200 vs 429 would still tell a guess apart).
        AssertRateLimited(await SendAsync(stack, AdminGet("203.0.113.50", TestStack.AdminToken)));
        // Another address is unaffected, with the right token and with a wrong one.
        Assert.Equal(200, (await SendAsync(stack, AdminGet("203.0.113.51", TestStack.AdminToken))).Status);
        Assert.Equal(401, (await SendAsync(stack, AdminGet("203.0.113.51", WrongToken))).Status);

        var metrics = await stack.Client.GetStringAsync(new Uri("/metrics", UriKind.Relative), TestContext.Current.CancellationToken);
        Assert.Equal(11, Counter(metrics, "admin_token", "rejected"));
        Assert.Equal(291, Counter(metrics, "admin_token", "throttled"));

        var audit = await stack.EntryServices.GetRequiredService<IAuditLog>().RecentAsync(1000, TestContext.Current.CancellationToken);
        var failures = audit.Where(e => e.Action == "admin.auth_failed").ToList();
        Assert.Equal(11, failures.Count);
        Assert.All(failures, e =>
        {
            Assert.Null(e.Subject);
            Assert.Equal("wrong", e.Details["reason"]);
            Assert.Equal("/v1/admin/nodes/", e.Details["route"]);
            var all = JsonSerializer.Serialize(e);
            Assert.DoesNotContain(WrongToken, all, StringComparison.Ordinal);
            Assert.DoesNotContain("203.0.113.5", all, StringComparison.Ordinal);
        });
    }

    [Fact]
    public async Task AdminToken_SuccessesDoNotSpendTheFailureBudget()
    {
        await using var stack = await StartAsync(adminFailures: 3);
        for (var i = 0; i < 20; i++)
        {
            Assert.Equal(200, (await SendAsync(stack, AdminGet("198.51.100.7", TestStack.AdminToken))).Status);
        }
        for (var i = 0; i < 3; i++)
        {
            var missing = await SendAsync(stack, AdminGet("198.51.100.7", token: null));
            Assert.Equal(401, missing.Status);
            Assert.Contains("\"code\":\"unauthorized\"", missing.Body, StringComparison.Ordinal);
        }
        AssertRateLimited(await SendAsync(stack, AdminGet("198.51.100.7", WrongToken)));
    }

    [Fact]
    public async Task AdminToken_Ipv6_OneBudgetPerSlash64()
    {
        await using var stack = await StartAsync(adminFailures: 2);
        Assert.Equal(401, (await SendAsync(stack, AdminGet("2001:db8:5:6::1", WrongToken))).Status);
        Assert.Equal(401, (await SendAsync(stack, AdminGet("2001:db8:5:6:ffff::2", WrongToken))).Status);
        AssertRateLimited(await SendAsync(stack, AdminGet("2001:db8:5:6::3", WrongToken)));
        Assert.Equal(401, (await SendAsync(stack, AdminGet("2001:db8:5:7::1", WrongToken))).Status);
    }

    [Fact]
    public async Task AdminToken_ForwardedFor_OnlyThroughTrustedProxies()
    {
        await using var stack = await StartAsync(adminFailures: 2, trustedProxies: "10.0.0.1");
        // Behind the trusted proxy each client has its own budget.
        Assert.Equal(401, (await SendAsync(stack, AdminGet("10.0.0.1", WrongToken, "198.51.100.1"))).Status);
        Assert.Equal(401, (await SendAsync(stack, AdminGet("10.0.0.1", WrongToken, "198.51.100.1"))).Status);
        AssertRateLimited(await SendAsync(stack, AdminGet("10.0.0.1", WrongToken, "198.51.100.1")));
        Assert.Equal(200, (await SendAsync(stack, AdminGet("10.0.0.1", TestStack.AdminToken, "198.51.100.2"))).Status);
        // From an untrusted sender the header is ignored: inventing origins buys no fresh budget.
        Assert.Equal(401, (await SendAsync(stack, AdminGet("203.0.113.9", WrongToken, "198.51.100.3"))).Status);
        Assert.Equal(401, (await SendAsync(stack, AdminGet("203.0.113.9", WrongToken, "198.51.100.4"))).Status);
        AssertRateLimited(await SendAsync(stack, AdminGet("203.0.113.9", WrongToken, "198.51.100.5")));
    }

    [Fact]
    public async Task AdminToken_CheckedBeforeTheBodyIsRead_MalformedBodyWithoutToken401()
    {
        await using var stack = await StartAsync();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/admin/plans")
        {
            Content = new StringContent("{not json", System.Text.Encoding.UTF8, "application/json"),
        };
        request.Headers.Add("x-admin-token", WrongToken);
        var answer = await SendAsync(stack, request);
        Assert.True(answer.Status == 401, answer.Body);
        Assert.Contains("\"code\":\"unauthorized\"", answer.Body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Reconnect_UnknownSessionKeys_ThrottledPerAddressAcrossCustomers()
    {
        await using var stack = await StartAsync(sessionKeyFailures: 3);
        HttpRequestMessage Reconnect(string peer, string token)
        {
            var request = TestStack.WithBearer(token, HttpMethod.Post, "/v1/sessions/reconnect", new { session_key = Convert.ToBase64String(Guid.NewGuid().ToByteArray()) });
            request.Headers.Add(TestStack.PeerAddressHeader, peer);
            return request;
        }
        // A fresh customer (and token) for every guess: the per-customer budget alone would never stop this.
        for (var i = 0; i < 3; i++)
        {
            var answer = await SendAsync(stack, Reconnect("203.0.113.70", stack.TokenFor(Guid.NewGuid())));
            Assert.True(answer.Status == 401, answer.Body);
            Assert.Contains("\"code\":\"invalid_session_key\"", answer.Body, StringComparison.Ordinal);
        }
        AssertRateLimited(await SendAsync(stack, Reconnect("203.0.113.70", stack.TokenFor(Guid.NewGuid()))));
        Assert.Equal(401, (await SendAsync(stack, Reconnect("203.0.113.71", stack.TokenFor(Guid.NewGuid())))).Status);

        var metrics = await stack.Client.GetStringAsync(new Uri("/metrics", UriKind.Relative), TestContext.Current.CancellationToken);
        Assert.Equal(4, Counter(metrics, "session_key", "rejected"));
        Assert.Equal(1, Counter(metrics, "session_key", "throttled"));
    }

    [Fact]
    public async Task Reconnect_ValidKey_DoesNotSpendTheBudget()
    {
        await using var stack = await StartAsync(sessionKeyFailures: 1);
        var customer = await stack.SeedCustomerAsync();
        var started = await stack.SendJsonAsync(TestStack.AsCustomer(customer.Id, HttpMethod.Post, "/v1/sessions",
            new { device_id = customer.DeviceId, region = "eu-west" }), 201);
        var key = started.GetProperty("session_key").GetString();
        for (var i = 0; i < 5; i++)
        {
            var reconnected = await stack.SendJsonAsync(TestStack.AsCustomer(customer.Id, HttpMethod.Post, "/v1/sessions/reconnect", new { session_key = key }), 200);
            key = reconnected.GetProperty("session_key").GetString();
        }
        await stack.SendJsonAsync(TestStack.AsCustomer(customer.Id, HttpMethod.Post, "/v1/sessions/reconnect", new { session_key = "AAAA" }), 401);
        using var limited = TestStack.AsCustomer(customer.Id, HttpMethod.Post, "/v1/sessions/reconnect", new { session_key = key });
        AssertRateLimited(await SendAsync(stack, limited));
    }

    // The counter's value with these labels; the exporter may add scope labels, in any order.
    private static long Counter(string metrics, string credential, string outcome)
    {
        foreach (Match line in Regex.Matches(metrics, @"^vpn_auth_failures_total\{(?<labels>[^}]*)\} (?<value>\d+)", RegexOptions.Multiline))
        {
            var labels = line.Groups["labels"].Value;
            if (labels.Contains($"credential=\"{credential}\"", StringComparison.Ordinal) && labels.Contains($"outcome=\"{outcome}\"", StringComparison.Ordinal))
            {
                return long.Parse(line.Groups["value"].Value, System.Globalization.CultureInfo.InvariantCulture);
            }
        }
        return 0;
    }
}
