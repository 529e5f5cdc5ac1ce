using Vpn.TestSupport.Oidc;

namespace Vpn.Entry.Tests.Auth;

/// <summary>
/// What the sign-in test classes share: the class's real OpenID provider (<see cref="OidcProviderFixture"/>), reset
/// before each test, an entry configured for it, and the callback request of POST /v1/auth/oauth/google/callback.
/// </summary>
public abstract class SignInTestBase(OidcProviderFixture fixture) : IAsyncLifetime
{
    protected OidcProvider Provider => fixture.Provider;

    /// <summary>entry configured for the provider, started before each test.</summary>
    protected TestStack Stack { get; private set; } = null!;

    public async ValueTask InitializeAsync()
    {
        // Each test's first touch of the provider: skips (or fails under CI) here when the fixture could not start one.
        await Provider.ResetAsync(TestContext.Current.CancellationToken);
        Stack = await StartEntryAsync();
    }

    public async ValueTask DisposeAsync()
    {
        if (Stack is not null)
        {
            await Stack.DisposeAsync();
        }
    }

    protected Task<TestStack> StartEntryAsync(StoreKind store = StoreKind.InMemory, int jwksMinRefreshSecs = 0, string? databaseUrl = null) =>
        TestStack.StartAsync(store, new Dictionary<string, string?>
        {
            ["GOOGLE_ISSUER"] = Provider.Issuer,
            ["GOOGLE_CLIENT_ID"] = Provider.ClientId,
            ["GOOGLE_CLIENT_SECRET"] = Provider.ClientSecret,
            ["APP_OIDC_TIMEOUT_MS"] = "5000", // a loaded CI box can take over a second per provider call
            ["APP_OIDC_JWKS_MIN_REFRESH_SECS"] = jwksMinRefreshSecs.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["DATABASE_URL"] = databaseUrl,
        });

    protected static HttpRequestMessage Callback(AuthorizationCode code, string? codeVerifier = null, string? nonce = null, bool omitVerifier = false,
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

    protected async Task<JsonElement> SignInAsync(TestStack stack, string subject = "alice", string? nonce = "n-0S6_WzA2Mj", int expectedStatus = 200)
    {
        var code = await Provider.AuthorizeAsync(subject, nonce, cancellationToken: TestContext.Current.CancellationToken);
        return await stack.SendJsonAsync(Callback(code), expectedStatus);
    }

    protected async Task AssertIdTokenRejectedAsync(IReadOnlyDictionary<string, object?>? claims = null, IReadOnlyDictionary<string, object?>? header = null,
        IdTokenSigning signing = IdTokenSigning.Provider, string code = "invalid_id_token")
    {
        await Provider.TamperAsync(claims, header, signing, TestContext.Current.CancellationToken);
        var problem = await SignInAsync(Stack, expectedStatus: 401);
        Assert.Equal(code, problem.GetProperty("code").GetString());
        Assert.DoesNotContain("eyJ", problem.ToString(), StringComparison.Ordinal);
    }

    protected static long Now => DateTimeOffset.UtcNow.ToUnixTimeSeconds();
}
