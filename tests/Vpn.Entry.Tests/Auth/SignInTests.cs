using Vpn.TestSupport.Oidc;

namespace Vpn.Entry.Tests.Auth;

/// <summary>
/// POST /v1/auth/oauth/google/callback against a real OpenID provider with real authorization codes: the positive path,
/// PKCE and redirect rules, every way the code exchange can fail (RFC 7636), the provider down or gone, and bad input.
/// The ID token's own checks are <see cref="IdTokenValidationTests"/>.
/// </summary>
public sealed class SignInTests(OidcProviderFixture fixture) : SignInTestBase(fixture), IClassFixture<OidcProviderFixture>
{
    [Fact]
    public async Task SignIn_RealCodeWithPkceAndNonce_IssuesWorkingAccessToken()
    {
        var first = await SignInAsync(Stack, "alice-positive");
        Assert.Equal("Bearer", first.GetProperty("token_type").GetString());
        Assert.Equal(3600, first.GetProperty("expires_in").GetInt32());
        Assert.True(first.GetProperty("new_customer").GetBoolean());
        var customer = first.GetProperty("customer_id").GetGuid();
        var me = await Stack.SendJsonAsync(TestStack.WithBearer(first.GetProperty("access_token").GetString()!, HttpMethod.Get, "/v1/me"), 200);
        Assert.Equal(customer, me.GetProperty("customer_id").GetGuid());

        // The same person again: the same customer, not a new one. Another person: another customer.
        var again = await SignInAsync(Stack, "alice-positive");
        Assert.False(again.GetProperty("new_customer").GetBoolean());
        Assert.Equal(customer, again.GetProperty("customer_id").GetGuid());
        var bob = await SignInAsync(Stack, "bob-positive");
        Assert.NotEqual(customer, bob.GetProperty("customer_id").GetGuid());
    }

    [Fact]
    public async Task SignIn_WithoutPkceAndNonce_AcceptedForConfidentialClient()
    {
        var code = await Provider.AuthorizeAsync("carol", nonce: null, pkce: false, cancellationToken: TestContext.Current.CancellationToken);
        var answer = await Stack.SendJsonAsync(Callback(code), 200);
        Assert.True(answer.GetProperty("new_customer").GetBoolean());
    }

    [Fact]
    public async Task RequirePkceAndRedirectAllowList_RefuseBeforeCallingTheProvider()
    {
        await using var stack = await TestStack.StartAsync(StoreKind.InMemory, new Dictionary<string, string?>
        {
            ["GOOGLE_ISSUER"] = Provider.Issuer,
            ["GOOGLE_CLIENT_ID"] = Provider.ClientId,
            ["GOOGLE_CLIENT_SECRET"] = Provider.ClientSecret,
            ["APP_OIDC_REQUIRE_PKCE"] = "true",
            ["APP_OIDC_REDIRECT_URIS"] = Provider.RedirectUri,
        });
        var before = await Provider.StatsAsync(TestContext.Current.CancellationToken);
        var plain = await Provider.AuthorizeAsync("pkce-required", pkce: false, cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal("invalid_request", (await stack.SendJsonAsync(Callback(plain), 400)).GetProperty("code").GetString());
        var withPkce = await Provider.AuthorizeAsync("pkce-required", cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal("invalid_request", (await stack.SendJsonAsync(Callback(withPkce, redirectUri: "https://other.example/cb"), 400)).GetProperty("code").GetString());
        Assert.Equal(before.TokenRequests, (await Provider.StatsAsync(TestContext.Current.CancellationToken)).TokenRequests);
        await stack.SendJsonAsync(Callback(withPkce), 200);
    }

    [Fact]
    public async Task PkceVerifierMismatch_ExchangeFailed()
    {
        var code = await Provider.AuthorizeAsync("frank", cancellationToken: TestContext.Current.CancellationToken);
        var problem = await Stack.SendJsonAsync(Callback(code, codeVerifier: new string('a', 43)), 401);
        Assert.Equal("oidc_exchange_failed", problem.GetProperty("code").GetString());
    }

    [Fact]
    public async Task PkceVerifierMissing_ExchangeFailed()
    {
        var code = await Provider.AuthorizeAsync("frank2", cancellationToken: TestContext.Current.CancellationToken);
        var problem = await Stack.SendJsonAsync(Callback(code, omitVerifier: true), 401);
        Assert.Equal("oidc_exchange_failed", problem.GetProperty("code").GetString());
    }

    [Fact]
    public async Task ReplayedCode_ExchangeFailed()
    {
        var code = await Provider.AuthorizeAsync("grace", cancellationToken: TestContext.Current.CancellationToken);
        await Stack.SendJsonAsync(Callback(code), 200);
        var problem = await Stack.SendJsonAsync(Callback(code), 401);
        Assert.Equal("oidc_exchange_failed", problem.GetProperty("code").GetString());
    }

    [Fact]
    public async Task RedirectUriMismatch_ExchangeFailed()
    {
        var code = await Provider.AuthorizeAsync("heidi", cancellationToken: TestContext.Current.CancellationToken);
        var problem = await Stack.SendJsonAsync(Callback(code, redirectUri: "https://evil.example/cb"), 401);
        Assert.Equal("oidc_exchange_failed", problem.GetProperty("code").GetString());
    }

    [Fact]
    public async Task CodeIssuedToAnotherClient_ExchangeFailed()
    {
        var code = await Provider.AuthorizeAsync("ivan", clientId: Provider.OtherClientId, cancellationToken: TestContext.Current.CancellationToken);
        var problem = await Stack.SendJsonAsync(Callback(code), 401);
        Assert.Equal("oidc_exchange_failed", problem.GetProperty("code").GetString());
    }

    [Fact]
    public async Task TokenEndpointDown_502ProviderUnavailable()
    {
        await Provider.SetTokenEndpointAsync(TokenEndpointMode.Down, TestContext.Current.CancellationToken);
        var problem = await SignInAsync(Stack, expectedStatus: 502);
        Assert.Equal("oidc_provider_unavailable", problem.GetProperty("code").GetString());
    }

    [Fact]
    public async Task TokenEndpointHanging_AnswersWithinTheDeadline()
    {
        await Provider.SetTokenEndpointAsync(TokenEndpointMode.Hang, TestContext.Current.CancellationToken);
        // The provider holds the request ~60 s; entry gives up at APP_OIDC_TIMEOUT_MS (5 s) and says so.
        var problem = await SignInAsync(Stack, expectedStatus: 502);
        Assert.Equal("oidc_provider_unavailable", problem.GetProperty("code").GetString());
    }

    [Fact]
    public async Task ProviderProcessGone_502ProviderUnavailable()
    {
        await SignInAsync(Stack, "kim");
        var code = await Provider.AuthorizeAsync("kim", cancellationToken: TestContext.Current.CancellationToken);
        await Provider.StopAsync(TestContext.Current.CancellationToken);
        try
        {
            var problem = await Stack.SendJsonAsync(Callback(code), 502);
            Assert.Equal("oidc_provider_unavailable", problem.GetProperty("code").GetString());
            // A fresh entry (no cached discovery) fails the same way instead of hanging.
            await using var fresh = await StartEntryAsync();
            Assert.Equal("oidc_provider_unavailable", (await fresh.SendJsonAsync(Callback(code), 502)).GetProperty("code").GetString());
        }
        finally
        {
            // The class shares one provider: bring it back for the next test.
            await Provider.RestartAsync(cancellationToken: TestContext.Current.CancellationToken);
        }
    }

    [Fact]
    public async Task NotConfigured_503()
    {
        await using var stack = await TestStack.StartAsync(StoreKind.InMemory);
        var body = new { code = "abc", redirect_uri = "https://app.example/cb" };
        var problem = await stack.SendJsonAsync(new HttpRequestMessage(HttpMethod.Post, "/v1/auth/oauth/google/callback") { Content = System.Net.Http.Json.JsonContent.Create(body) }, 503);
        Assert.Equal("sign_in_not_configured", problem.GetProperty("code").GetString());
    }

    [Theory]
    [InlineData("{}")]
    [InlineData("""{"code": "abc"}""")]
    [InlineData("""{"code": "abc", "redirect_uri": "not a uri"}""")]
    [InlineData("""{"code": "abc", "redirect_uri": "https://app.example/cb", "code_verifier": "short"}""")]
    [InlineData("""{"code": "abc", "redirect_uri": "https://app.example/cb", "code_verifier": "has spaces and is long enough to pass the length rule ok"}""")]
    [InlineData("""{"code": 5, "redirect_uri": "https://app.example/cb"}""")]
    [InlineData("""[1]""")]
    public async Task BadInput_400InvalidRequest(string json)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/auth/oauth/google/callback") { Content = new StringContent(json, System.Text.Encoding.UTF8, "application/json") };
        var problem = await Stack.SendJsonAsync(request, 400);
        Assert.Equal("invalid_request", problem.GetProperty("code").GetString());
    }

    [Fact]
    public async Task Postgres_ConcurrentFirstSignIns_OneCustomerOneIdentity_NoEmailStored()
    {
        var server = await PostgresServer.SharedAsync();
        var url = await server.CreateDatabaseAsync("signin");
        await using var stack = await StartEntryAsync(databaseUrl: url);
        var codes = new List<AuthorizationCode>();
        for (var i = 0; i < 8; i++)
        {
            codes.Add(await Provider.AuthorizeAsync("oscar-concurrent", "n", cancellationToken: TestContext.Current.CancellationToken));
        }
        var answers = await Task.WhenAll(codes.Select(c => stack.SendJsonAsync(Callback(c), 200)));
        var customers = answers.Select(a => a.GetProperty("customer_id").GetGuid()).Distinct().ToList();
        Assert.Single(customers);
        Assert.Equal(1, answers.Count(a => a.GetProperty("new_customer").GetBoolean()));

        await using var connection = new NpgsqlConnection(PostgresUrlToConnectionString(url));
        await connection.OpenAsync(TestContext.Current.CancellationToken);
        await using var identities = new NpgsqlCommand("select count(*), min(issuer), min(subject) from oauth_identities", connection);
        await using (var reader = await identities.ExecuteReaderAsync(TestContext.Current.CancellationToken))
        {
            await reader.ReadAsync(TestContext.Current.CancellationToken);
            Assert.Equal(1, reader.GetInt64(0));
            Assert.Equal(Provider.Issuer, reader.GetString(1));
            Assert.Equal("oscar-concurrent", reader.GetString(2));
        }
        await using var orphans = new NpgsqlCommand("select count(*) from customers", connection);
        Assert.Equal(1L, await orphans.ExecuteScalarAsync(TestContext.Current.CancellationToken));
        await using var columns = new NpgsqlCommand("select count(*) from information_schema.columns where column_name ilike '%email%'", connection);
        Assert.Equal(0L, await columns.ExecuteScalarAsync(TestContext.Current.CancellationToken));
    }

    private static string PostgresUrlToConnectionString(string url) => Vpn.Entry.Data.DatabaseUrl.ToConnectionString(url);
}
