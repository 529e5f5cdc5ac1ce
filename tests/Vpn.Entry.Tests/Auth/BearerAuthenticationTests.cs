using Vpn.Entry.Auth;

namespace Vpn.Entry.Tests.Auth;

/// <summary>
/// How an access token reaches entry and which keys verify it: the Authorization header only (not the query string),
/// the size cap, the scheme, Bearer over the legacy x-customer-id header, key rotation and retirement, and /v1/me.
/// </summary>
public sealed class BearerAuthenticationTests : AccessTokenTestBase
{
    [Fact]
    public async Task TokenInQueryString_Ignored()
    {
        var token = Stack.EntryServices.GetRequiredService<AccessTokenService>().Issue(Guid.NewGuid()).Token;
        var problem = await MeAsync(null, 401, "/v1/me?access_token=" + token);
        Assert.Equal("missing_token", problem.GetProperty("code").GetString());
    }

    [Fact]
    public async Task OversizedToken_RejectedAsInvalidBeforeParsing()
    {
        var claims = Claims();
        claims["pad"] = new string('x', 200_000);
        // Correctly signed with our key: only its size makes it invalid.
        var token = Jws.Hmac(Header(), claims, Secret);
        await AssertRejectedAsync(token);
    }

    [Theory]
    [InlineData("Bearer")]
    [InlineData("Bearer ")]
    [InlineData("Basic dXNlcjpwYXNz")]
    [InlineData("Token abc")]
    public async Task MalformedAuthorizationHeader_InvalidToken(string header)
    {
        var problem = await MeAsync(header, 401);
        Assert.Equal("invalid_token", problem.GetProperty("code").GetString());
    }

    [Fact]
    public async Task BearerSchemeIsCaseInsensitive()
    {
        var token = Stack.EntryServices.GetRequiredService<AccessTokenService>().Issue(Guid.NewGuid()).Token;
        await MeAsync("bearer " + token, 200);
    }

    [Fact]
    public async Task BearerWins_OverLegacyHeader()
    {
        var customer = Guid.NewGuid();
        var token = Stack.EntryServices.GetRequiredService<AccessTokenService>().Issue(customer).Token;
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/me");
        request.Headers.Add("Authorization", "Bearer " + token);
        request.Headers.Add("x-customer-id", Guid.NewGuid().ToString());
        var me = await Stack.SendJsonAsync(request, 200);
        Assert.Equal(customer, me.GetProperty("customer_id").GetGuid());
    }

    [Fact]
    public async Task Rotation_OldKeyStillListed_Valid_RemovedKey_Invalid()
    {
        var customer = Guid.NewGuid();
        var oldToken = Stack.EntryServices.GetRequiredService<AccessTokenService>().Issue(customer).Token;
        const string newKey = "k2:second-secret-0123456789abcdef0123456789";

        // Rotated: k2 issues, test-k1 still verifies.
        await using (var rotated = await TestStack.StartAsync(StoreKind.InMemory, new Dictionary<string, string?>
        {
            ["APP_JWT_SIGNING_KEYS"] = $"{newKey},{TestStack.JwtKid}:{TestStack.JwtSecret}",
            ["APP_JWT_ACTIVE_KID"] = "k2",
        }))
        {
            using var old = new HttpRequestMessage(HttpMethod.Get, "/v1/me");
            old.Headers.Add("Authorization", "Bearer " + oldToken);
            Assert.Equal(customer, (await rotated.SendJsonAsync(old, 200)).GetProperty("customer_id").GetGuid());
            var fresh = rotated.EntryServices.GetRequiredService<AccessTokenService>().Issue(customer).Token;
            Assert.Equal("k2", JsonDocument.Parse(Base64UrlDecode(fresh.Split('.')[0])).RootElement.GetProperty("kid").GetString());
        }

        // Retired: test-k1 removed, its tokens are dead; the same secret under another kid does not revive them.
        await using var retired = await TestStack.StartAsync(StoreKind.InMemory, new Dictionary<string, string?>
        {
            ["APP_JWT_SIGNING_KEYS"] = $"{newKey},other:{TestStack.JwtSecret}",
        });
        using var dead = new HttpRequestMessage(HttpMethod.Get, "/v1/me");
        dead.Headers.Add("Authorization", "Bearer " + oldToken);
        Assert.Equal("invalid_token", (await retired.SendJsonAsync(dead, 401)).GetProperty("code").GetString());
    }

    [Fact]
    public async Task LegacyHeader_RefusedWhenDisabled_BearerStillWorks()
    {
        await using var strict = await TestStack.StartAsync(StoreKind.InMemory, new Dictionary<string, string?> { ["APP_ALLOW_LEGACY_CUSTOMER_HEADER"] = "false" });
        var customer = Guid.NewGuid();
        using var legacy = TestStack.AsCustomer(customer, HttpMethod.Get, "/v1/me");
        Assert.Equal("missing_token", (await strict.SendJsonAsync(legacy, 401)).GetProperty("code").GetString());
        using var devices = TestStack.AsCustomer(customer, HttpMethod.Get, "/v1/devices");
        Assert.Equal("missing_token", (await strict.SendJsonAsync(devices, 401)).GetProperty("code").GetString());

        using var bearer = new HttpRequestMessage(HttpMethod.Get, "/v1/me");
        bearer.Headers.Add("Authorization", "Bearer " + strict.EntryServices.GetRequiredService<AccessTokenService>().Issue(customer).Token);
        Assert.Equal(customer, (await strict.SendJsonAsync(bearer, 200)).GetProperty("customer_id").GetGuid());
    }

    [Fact]
    public async Task Me_ShowsSubscription()
    {
        var seeded = await Stack.SeedCustomerAsync(region: "eu-west", maxDevices: 3);
        var token = Stack.EntryServices.GetRequiredService<AccessTokenService>().Issue(seeded.Id).Token;
        var me = await MeAsync("Bearer " + token, 200);
        var subscription = me.GetProperty("subscription");
        Assert.Equal("basic", subscription.GetProperty("plan_code").GetString());
        Assert.Equal("active", subscription.GetProperty("status").GetString());
        Assert.Equal(3, subscription.GetProperty("max_devices").GetInt32());
        Assert.Equal(["eu-west"], subscription.GetProperty("allowed_regions").EnumerateArray().Select(r => r.GetString()));
    }
}
