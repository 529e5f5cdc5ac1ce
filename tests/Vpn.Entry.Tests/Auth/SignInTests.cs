using System.Runtime.ExceptionServices;
using System.Text.Json;
using Npgsql;
using Vpn.Entry.Tests.Infrastructure;
using Vpn.Harness.Postgres;
using Vpn.TestSupport.Oidc;

namespace Vpn.Entry.Tests.Auth;

/// <summary>
/// One real OpenID provider (oidc-provider on loopback) for the sign-in tests of a class. A start that fails (node or the
/// npm packages missing: a skip locally, a failure under CI) does not throw out of <see cref="InitializeAsync"/>, where
/// xunit would fail the whole class: it is kept and thrown again by every test that asks for <see cref="Provider"/>, as
/// <c>VpnStackFixture.EnsureReady</c> does.
/// </summary>
public sealed class OidcProviderFixture : IAsyncLifetime
{
    private OidcProvider? _provider;
    private ExceptionDispatchInfo? _startFailure;

    /// <summary>The running provider; throws the start's failure (e.g. the prerequisite skip) when there is none.</summary>
    public OidcProvider Provider
    {
        get
        {
            _startFailure?.Throw();
            return _provider!;
        }
    }

    public async ValueTask InitializeAsync()
    {
        try
        {
            _provider = await OidcProvider.StartAsync();
        }
        catch (Exception e)
        {
            _startFailure = ExceptionDispatchInfo.Capture(e);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_provider is not null)
        {
            await _provider.DisposeAsync();
        }
    }
}

/// <summary>
/// POST /v1/auth/oauth/google/callback against a real OpenID provider with real authorization codes: the positive path
/// and every way an ID token or exchange can be wrong (OpenID Connect Core §3.1.3.7, RFC 8725, RFC 7636).
/// </summary>
public sealed class SignInTests(OidcProviderFixture fixture) : IClassFixture<OidcProviderFixture>, IAsyncLifetime
{
    private OidcProvider Provider => fixture.Provider;

    private TestStack _stack = null!;

    public async ValueTask InitializeAsync()
    {
        // Each test's first touch of the provider: skips (or fails under CI) here when the fixture could not start one.
        await Provider.ResetAsync(TestContext.Current.CancellationToken);
        _stack = await StartEntryAsync();
    }

    public async ValueTask DisposeAsync()
    {
        if (_stack is not null)
        {
            await _stack.DisposeAsync();
        }
    }

    private Task<TestStack> StartEntryAsync(StoreKind store = StoreKind.InMemory, int jwksMinRefreshSecs = 0, string? databaseUrl = null) =>
        TestStack.StartAsync(store, new Dictionary<string, string?>
        {
            ["GOOGLE_ISSUER"] = Provider.Issuer,
            ["GOOGLE_CLIENT_ID"] = Provider.ClientId,
            ["GOOGLE_CLIENT_SECRET"] = Provider.ClientSecret,
            ["APP_OIDC_TIMEOUT_MS"] = "5000", // a loaded CI box can take over a second per provider call
            ["APP_OIDC_JWKS_MIN_REFRESH_SECS"] = jwksMinRefreshSecs.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["DATABASE_URL"] = databaseUrl,
        });

    private static HttpRequestMessage Callback(AuthorizationCode code, string? codeVerifier = null, string? nonce = null, bool omitVerifier = false,
        string? redirectUri = null)
    {
        var body = new Dictionary<string, object?>
        {
            ["code"] = code.Code,
            ["redirect_uri"] = redirectUri ?? code.RedirectUri,
        };
        if (!omitVerifier && (codeVerifier ?? code.CodeVerifier) is { } verifier)
        {
            body["code_verifier"] = verifier;
        }
        if ((nonce ?? code.Nonce) is { } n)
        {
            body["nonce"] = n;
        }
        return new HttpRequestMessage(HttpMethod.Post, "/v1/auth/oauth/google/callback") { Content = System.Net.Http.Json.JsonContent.Create(body) };
    }

    private async Task<JsonElement> SignInAsync(TestStack stack, string subject = "alice", string? nonce = "n-0S6_WzA2Mj", int expectedStatus = 200)
    {
        var code = await Provider.AuthorizeAsync(subject, nonce, cancellationToken: TestContext.Current.CancellationToken);
        return await stack.SendJsonAsync(Callback(code), expectedStatus);
    }

    private async Task AssertIdTokenRejectedAsync(IReadOnlyDictionary<string, object?>? claims = null, IReadOnlyDictionary<string, object?>? header = null,
        IdTokenSigning signing = IdTokenSigning.Provider, string code = "invalid_id_token")
    {
        await Provider.TamperAsync(claims, header, signing, TestContext.Current.CancellationToken);
        var problem = await SignInAsync(_stack, expectedStatus: 401);
        Assert.Equal(code, problem.GetProperty("code").GetString());
        Assert.DoesNotContain("eyJ", problem.ToString(), StringComparison.Ordinal);
    }

    private static long Now => DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    [Fact]
    public async Task SignIn_RealCodeWithPkceAndNonce_IssuesWorkingAccessToken()
    {
        var first = await SignInAsync(_stack, "alice-positive");
        Assert.Equal("Bearer", first.GetProperty("token_type").GetString());
        Assert.Equal(3600, first.GetProperty("expires_in").GetInt32());
        Assert.True(first.GetProperty("new_customer").GetBoolean());
        var customer = first.GetProperty("customer_id").GetGuid();
        var me = await _stack.SendJsonAsync(TestStack.WithBearer(first.GetProperty("access_token").GetString()!, HttpMethod.Get, "/v1/me"), 200);
        Assert.Equal(customer, me.GetProperty("customer_id").GetGuid());

        // The same person again: the same customer, not a new one. Another person: another customer.
        var again = await SignInAsync(_stack, "alice-positive");
        Assert.False(again.GetProperty("new_customer").GetBoolean());
        Assert.Equal(customer, again.GetProperty("customer_id").GetGuid());
        var bob = await SignInAsync(_stack, "bob-positive");
        Assert.NotEqual(customer, bob.GetProperty("customer_id").GetGuid());
    }

    [Fact]
    public async Task SignIn_WithoutPkceAndNonce_AcceptedForConfidentialClient()
    {
        var code = await Provider.AuthorizeAsync("carol", nonce: null, pkce: false, cancellationToken: TestContext.Current.CancellationToken);
        var answer = await _stack.SendJsonAsync(Callback(code), 200);
        Assert.True(answer.GetProperty("new_customer").GetBoolean());
    }

    [Theory]
    [InlineData("someone-else")]
    [InlineData("other-app")]
    [InlineData("")]
    public Task WrongAudience_Rejected(string audience) => AssertIdTokenRejectedAsync(new Dictionary<string, object?> { ["aud"] = audience });

    [Fact]
    public Task AudienceWithTrailingSlash_Rejected() => AssertIdTokenRejectedAsync(new Dictionary<string, object?> { ["aud"] = OidcProvider.DefaultClientId + "/" });

    [Fact]
    public Task AuthorizedPartyNotAString_Rejected() => AssertIdTokenRejectedAsync(new Dictionary<string, object?> { ["azp"] = new[] { OidcProvider.DefaultClientId } });

    [Fact]
    public Task UnderstoodNothingCritical_Rejected() =>
        AssertIdTokenRejectedAsync(header: new Dictionary<string, object?> { ["crit"] = new[] { "exp-ext" }, ["exp-ext"] = 1 });

    [Fact]
    public async Task AuthorizedPartyOurs_Accepted()
    {
        await Provider.TamperAsync(new Dictionary<string, object?> { ["azp"] = OidcProvider.DefaultClientId }, cancellationToken: TestContext.Current.CancellationToken);
        await SignInAsync(_stack, "azp-ok");
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
    public Task AudienceListingAnUntrustedParty_Rejected() =>
        AssertIdTokenRejectedAsync(new Dictionary<string, object?> { ["aud"] = new[] { OidcProvider.DefaultClientId, "other-app" }, ["azp"] = OidcProvider.DefaultClientId });

    [Fact]
    public Task ForeignAuthorizedParty_Rejected() => AssertIdTokenRejectedAsync(new Dictionary<string, object?> { ["azp"] = "other-app" });

    [Fact]
    public async Task WrongIssuer_NearMisses_Rejected()
    {
        var issuer = Provider.Issuer;
        string[] nearMisses =
        [
            issuer + "/", issuer + " ", " " + issuer, issuer.ToUpperInvariant(), issuer.Replace("http://", "https://", StringComparison.Ordinal),
            issuer + ".evil.example", issuer + "/evil", issuer[..^1], issuer.Replace("127.0.0.1", "localhost", StringComparison.Ordinal),
            "accounts.google.com", "https://accounts.google.com", "",
        ];
        foreach (var iss in nearMisses)
        {
            await AssertIdTokenRejectedAsync(new Dictionary<string, object?> { ["iss"] = iss });
        }
        await AssertIdTokenRejectedAsync(new Dictionary<string, object?> { ["iss"] = null });
    }

    [Fact]
    public Task ExpiredIdToken_Rejected() =>
        AssertIdTokenRejectedAsync(new Dictionary<string, object?> { ["exp"] = Now - 120, ["iat"] = Now - 3720 });

    [Fact]
    public Task IssuedInTheFuture_Rejected() =>
        AssertIdTokenRejectedAsync(new Dictionary<string, object?> { ["iat"] = Now + 600, ["exp"] = Now + 4200 });

    [Theory]
    [InlineData("exp")]
    [InlineData("iat")]
    [InlineData("nbf")]
    public Task NumericDateAsString_Rejected(string claim) =>
        AssertIdTokenRejectedAsync(new Dictionary<string, object?>
        {
            [claim] = (claim == "exp" ? Now + 600 : Now).ToString(System.Globalization.CultureInfo.InvariantCulture),
        });

    [Fact]
    public async Task ExpiryWithinSkew_Accepted()
    {
        await Provider.TamperAsync(new Dictionary<string, object?> { ["exp"] = Now - 20 }, cancellationToken: TestContext.Current.CancellationToken);
        await SignInAsync(_stack, "dave-skew");
    }

    [Fact]
    public Task MissingSubject_Rejected() => AssertIdTokenRejectedAsync(new Dictionary<string, object?> { ["sub"] = null });

    [Fact]
    public async Task NonceMismatch_Rejected()
    {
        var code = await Provider.AuthorizeAsync("erin", nonce: "nonce-the-app-sent", cancellationToken: TestContext.Current.CancellationToken);
        var problem = await _stack.SendJsonAsync(Callback(code, nonce: "nonce-of-another-attempt"), 401);
        Assert.Equal("invalid_id_token", problem.GetProperty("code").GetString());
    }

    [Fact]
    public async Task NonceExpectedButAbsentFromIdToken_Rejected()
    {
        var code = await Provider.AuthorizeAsync("erin2", nonce: null, cancellationToken: TestContext.Current.CancellationToken);
        var problem = await _stack.SendJsonAsync(Callback(code, nonce: "nonce-the-app-thinks-it-sent"), 401);
        Assert.Equal("invalid_id_token", problem.GetProperty("code").GetString());
    }

    [Fact]
    public async Task PkceVerifierMismatch_ExchangeFailed()
    {
        var code = await Provider.AuthorizeAsync("frank", cancellationToken: TestContext.Current.CancellationToken);
        var problem = await _stack.SendJsonAsync(Callback(code, codeVerifier: new string('a', 43)), 401);
        Assert.Equal("oidc_exchange_failed", problem.GetProperty("code").GetString());
    }

    [Fact]
    public async Task PkceVerifierMissing_ExchangeFailed()
    {
        var code = await Provider.AuthorizeAsync("frank2", cancellationToken: TestContext.Current.CancellationToken);
        var problem = await _stack.SendJsonAsync(Callback(code, omitVerifier: true), 401);
        Assert.Equal("oidc_exchange_failed", problem.GetProperty("code").GetString());
    }

    [Fact]
    public async Task ReplayedCode_ExchangeFailed()
    {
        var code = await Provider.AuthorizeAsync("grace", cancellationToken: TestContext.Current.CancellationToken);
        await _stack.SendJsonAsync(Callback(code), 200);
        var problem = await _stack.SendJsonAsync(Callback(code), 401);
        Assert.Equal("oidc_exchange_failed", problem.GetProperty("code").GetString());
    }

    [Fact]
    public async Task RedirectUriMismatch_ExchangeFailed()
    {
        var code = await Provider.AuthorizeAsync("heidi", cancellationToken: TestContext.Current.CancellationToken);
        var problem = await _stack.SendJsonAsync(Callback(code, redirectUri: "https://evil.example/cb"), 401);
        Assert.Equal("oidc_exchange_failed", problem.GetProperty("code").GetString());
    }

    [Fact]
    public async Task CodeIssuedToAnotherClient_ExchangeFailed()
    {
        var code = await Provider.AuthorizeAsync("ivan", clientId: Provider.OtherClientId, cancellationToken: TestContext.Current.CancellationToken);
        var problem = await _stack.SendJsonAsync(Callback(code), 401);
        Assert.Equal("oidc_exchange_failed", problem.GetProperty("code").GetString());
    }

    [Fact]
    public async Task ForgedSignatures_Rejected()
    {
        await AssertIdTokenRejectedAsync(signing: IdTokenSigning.Foreign);
        await AssertIdTokenRejectedAsync(signing: IdTokenSigning.None);
        // HS256 keyed with our client secret: what a verifier trusting the header's alg would accept.
        await AssertIdTokenRejectedAsync(signing: IdTokenSigning.ClientSecret);
        await AssertIdTokenRejectedAsync(header: new Dictionary<string, object?> { ["kid"] = null });
    }

    [Fact]
    public async Task ProviderKeyRotated_NewKidPickedUpWithOneJwksRead()
    {
        await SignInAsync(_stack, "judy");
        var before = await Provider.StatsAsync(TestContext.Current.CancellationToken);
        var oldKid = await Provider.CurrentKidAsync(TestContext.Current.CancellationToken);
        var newKid = await Provider.RotateKeysAsync(cancellationToken: TestContext.Current.CancellationToken);
        Assert.NotEqual(oldKid, newKid);

        var answer = await SignInAsync(_stack, "judy");
        Assert.False(answer.GetProperty("new_customer").GetBoolean());
        var after = await Provider.StatsAsync(TestContext.Current.CancellationToken);
        Assert.Equal(before.JwksRequests + 1, after.JwksRequests);
        // Cached from now on: another sign-in reads no JWKS.
        await SignInAsync(_stack, "judy");
        Assert.Equal(after.JwksRequests, (await Provider.StatsAsync(TestContext.Current.CancellationToken)).JwksRequests);
    }

    [Fact]
    public async Task UnknownKids_RefreshJwksAtMostOncePerInterval()
    {
        await using var stack = await StartEntryAsync(jwksMinRefreshSecs: 300);
        await SignInAsync(stack, "mallory-target");
        var before = await Provider.StatsAsync(TestContext.Current.CancellationToken);
        for (var i = 0; i < 5; i++)
        {
            await Provider.TamperAsync(header: new Dictionary<string, object?> { ["kid"] = $"attacker-kid-{i}" }, signing: IdTokenSigning.Foreign,
                cancellationToken: TestContext.Current.CancellationToken);
            var problem = await SignInAsync(stack, expectedStatus: 401);
            Assert.Equal("invalid_id_token", problem.GetProperty("code").GetString());
        }
        var after = await Provider.StatsAsync(TestContext.Current.CancellationToken);
        Assert.InRange(after.JwksRequests - before.JwksRequests, 0, 1);
    }

    [Fact]
    public async Task TokenEndpointDown_502ProviderUnavailable()
    {
        await Provider.SetTokenEndpointAsync(TokenEndpointMode.Down, TestContext.Current.CancellationToken);
        var problem = await SignInAsync(_stack, expectedStatus: 502);
        Assert.Equal("oidc_provider_unavailable", problem.GetProperty("code").GetString());
    }

    [Fact]
    public async Task TokenEndpointHanging_AnswersWithinTheDeadline()
    {
        await Provider.SetTokenEndpointAsync(TokenEndpointMode.Hang, TestContext.Current.CancellationToken);
        // The provider holds the request ~60 s; entry gives up at APP_OIDC_TIMEOUT_MS (5 s) and says so.
        var problem = await SignInAsync(_stack, expectedStatus: 502);
        Assert.Equal("oidc_provider_unavailable", problem.GetProperty("code").GetString());
    }

    [Fact]
    public async Task ProviderProcessGone_502ProviderUnavailable()
    {
        await SignInAsync(_stack, "kim");
        var code = await Provider.AuthorizeAsync("kim", cancellationToken: TestContext.Current.CancellationToken);
        await Provider.StopAsync(TestContext.Current.CancellationToken);
        try
        {
            var problem = await _stack.SendJsonAsync(Callback(code), 502);
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
        var problem = await _stack.SendJsonAsync(request, 400);
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
