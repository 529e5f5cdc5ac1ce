namespace Vpn.Entry.Tests.Auth;

/// <summary>ASP.NET Core's rate limiter on sign-in (per client address) and session start/reconnect (per customer).</summary>
public sealed class RateLimitTests
{
    private static Task<TestStack> StartAsync(string? trustedProxies = null) => TestStack.StartAsync(StoreKind.InMemory, new Dictionary<string, string?>
    {
        ["APP_RATE_LIMIT_SIGNIN_PER_MIN"] = "2",
        ["APP_RATE_LIMIT_SESSIONS_PER_MIN"] = "3",
        ["APP_TRUSTED_PROXIES"] = trustedProxies,
    });

    private static HttpRequestMessage SignIn(string peer, string? forwardedFor = null)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/auth/oauth/google/callback") { Content = new StringContent("{}", System.Text.Encoding.UTF8, "application/json") };
        request.Headers.Add(TestStack.PeerAddressHeader, peer);
        if (forwardedFor is not null)
        {
            request.Headers.Add("X-Forwarded-For", forwardedFor);
        }
        return request;
    }

    private static async Task AssertLimitedAsync(TestStack stack, HttpRequestMessage request)
    {
        using var response = await stack.Client.SendAsync(request, TestContext.Current.CancellationToken);
        var body = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        Assert.True((int)response.StatusCode == 429, body);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains("\"code\":\"rate_limited\"", body, StringComparison.Ordinal);
        var retryAfter = Assert.Single(response.Headers.GetValues("Retry-After"));
        Assert.InRange(int.Parse(retryAfter, System.Globalization.CultureInfo.InvariantCulture), 1, 60);
    }

    /// <summary>
    /// The sign-in budget (two a minute) shared: <paramref name="first"/> and <paramref name="second"/> pass (400: their body
    /// is empty), <paramref name="third"/> is refused with 429 — the three count against one client's budget.
    /// </summary>
    private static async Task AssertBudgetOfTwoAsync(TestStack stack, HttpRequestMessage first, HttpRequestMessage second, HttpRequestMessage third)
    {
        await stack.SendJsonAsync(first, 400);
        await stack.SendJsonAsync(second, 400);
        await AssertLimitedAsync(stack, third);
    }

    [Fact]
    public async Task SignIn_PerClientAddress_429WithRetryAfter()
    {
        await using var stack = await StartAsync();
        await AssertBudgetOfTwoAsync(stack, SignIn("203.0.113.10"), SignIn("203.0.113.10"), SignIn("203.0.113.10"));
        // Another client keeps its own budget.
        await stack.SendJsonAsync(SignIn("203.0.113.11"), 400);
    }

    [Fact]
    public async Task SignIn_Ipv6_OneBudgetPerSlash64()
    {
        await using var stack = await StartAsync();
        await AssertBudgetOfTwoAsync(stack, SignIn("2001:db8:1:2::1"), SignIn("2001:db8:1:2:ffff:1:2:3"), SignIn("2001:db8:1:2::99"));
        await stack.SendJsonAsync(SignIn("2001:db8:1:3::1"), 400);
        // An IPv4 client seen through a dual-stack socket is still that IPv4 address.
        await AssertBudgetOfTwoAsync(stack, SignIn("::ffff:203.0.113.30"), SignIn("203.0.113.30"), SignIn("::ffff:203.0.113.30"));
    }

    [Fact]
    public async Task ForwardedFor_WithNoTrustedProxies_IgnoredFromEveryone()
    {
        await using var stack = await StartAsync(trustedProxies: null);
        await AssertBudgetOfTwoAsync(stack,
            SignIn("127.0.0.1", "198.51.100.1"), SignIn("127.0.0.1", "198.51.100.2"), SignIn("127.0.0.1", "198.51.100.3"));
    }

    [Fact]
    public async Task SpoofedForwardedFor_FromUntrustedAddress_Ignored()
    {
        await using var stack = await StartAsync(trustedProxies: "10.0.0.1");
        // Each request claims a fresh origin; none comes from the proxy, so all share the sender's budget.
        await AssertBudgetOfTwoAsync(stack,
            SignIn("203.0.113.20", "198.51.100.1"), SignIn("203.0.113.20", "198.51.100.2"), SignIn("203.0.113.20", "198.51.100.3"));
        await AssertLimitedAsync(stack, SignIn("203.0.113.20", "10.0.0.1"));
    }

    [Fact]
    public async Task ForwardedFor_FromTrustedProxy_PartitionsByClient()
    {
        await using var stack = await StartAsync(trustedProxies: "10.0.0.1,192.168.0.0/16");
        await AssertBudgetOfTwoAsync(stack,
            SignIn("10.0.0.1", "198.51.100.1"), SignIn("10.0.0.1", "198.51.100.1"), SignIn("10.0.0.1", "198.51.100.1"));
        // Same proxy, another client behind it: its own budget; a proxy in a trusted network too.
        await stack.SendJsonAsync(SignIn("10.0.0.1", "198.51.100.2"), 400);
        await stack.SendJsonAsync(SignIn("192.168.4.4", "198.51.100.3"), 400);
        // Only the last hop is believed: a client cannot prepend its own chain to escape.
        await AssertLimitedAsync(stack, SignIn("10.0.0.1", "1.2.3.4, 198.51.100.1"));
    }

    [Fact]
    public async Task SessionStartAndReconnect_PerCustomer()
    {
        await using var stack = await StartAsync();
        var a = Guid.NewGuid();
        var b = Guid.NewGuid();
        var tokenA = stack.TokenFor(a);
        await stack.SendJsonAsync(TestStack.WithBearer(tokenA, HttpMethod.Post, "/v1/sessions/reconnect", new { session_key = "x" }), 401);
        await stack.SendJsonAsync(TestStack.WithBearer(tokenA, HttpMethod.Post, "/v1/sessions", new { device_id = Guid.NewGuid() }), 400);
        await stack.SendJsonAsync(TestStack.WithBearer(tokenA, HttpMethod.Post, "/v1/sessions/reconnect", new { session_key = "x" }), 401);
        // Budget shared by start and reconnect, and bound to the customer whatever token or header is used.
        await AssertLimitedAsync(stack, TestStack.WithBearer(stack.TokenFor(a), HttpMethod.Post, "/v1/sessions", new { device_id = Guid.NewGuid() }));
        await AssertLimitedAsync(stack, TestStack.AsCustomer(a, HttpMethod.Post, "/v1/sessions/reconnect", new { session_key = "x" }));
        // Other endpoints and other customers are not limited by it.
        await stack.SendJsonAsync(TestStack.WithBearer(tokenA, HttpMethod.Get, "/v1/me"), 200);
        await stack.SendJsonAsync(TestStack.WithBearer(stack.TokenFor(b), HttpMethod.Post, "/v1/sessions/reconnect", new { session_key = "x" }), 401);
    }
}
