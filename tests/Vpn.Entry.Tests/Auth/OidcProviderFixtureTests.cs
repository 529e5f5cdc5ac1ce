using System.Net.Http.Headers;
using Vpn.TestSupport.Oidc;

namespace Vpn.Entry.Tests.Auth;

/// <summary>
/// Proves the OpenID provider fixture that the sign-in tests stand on: the code flow against the real oidc-provider
/// with plain HTTP (no entry involved), and each test control doing what it says. A sign-in test that fails should
/// be able to trust that the provider behaved as described here.
/// </summary>
public sealed class OidcProviderFixtureTests : IDisposable
{
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(15) };

    public void Dispose() => _http.Dispose();

    [Fact]
    public async Task CodeWithPkce_ExchangedOnce_IdTokenNamesIssuerClientNonceAndSubject()
    {
        await using var provider = await OidcProvider.StartAsync(cancellationToken: TestContext.Current.CancellationToken);
        var discovery = await GetJsonAsync(provider.DiscoveryUri);
        Assert.Equal(provider.Issuer, discovery.GetProperty("issuer").GetString());
        Assert.Equal(provider.TokenEndpoint.AbsoluteUri, discovery.GetProperty("token_endpoint").GetString());
        Assert.Equal(provider.JwksUri.AbsoluteUri, discovery.GetProperty("jwks_uri").GetString());
        Assert.Equal(provider.AuthorizationEndpoint.AbsoluteUri, discovery.GetProperty("authorization_endpoint").GetString());

        var code = await provider.AuthorizeAsync("bob", nonce: "n-0S6_WzA2Mj");
        Assert.NotNull(code.CodeVerifier);

        var (status, body) = await ExchangeAsync(new Uri(discovery.GetProperty("token_endpoint").GetString()!), provider, code);
        Assert.Equal(HttpStatusCode.OK, status);
        var idToken = Jwt.Parse(body.GetProperty("id_token").GetString()!);
        Assert.Equal("RS256", idToken.Header.GetProperty("alg").GetString());
        Assert.Equal(provider.Issuer, idToken.Payload.GetProperty("iss").GetString());
        Assert.Equal(provider.ClientId, idToken.Payload.GetProperty("aud").GetString());
        Assert.Equal("n-0S6_WzA2Mj", idToken.Payload.GetProperty("nonce").GetString());
        Assert.Equal("bob", idToken.Payload.GetProperty("sub").GetString());
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        Assert.InRange(idToken.Payload.GetProperty("iat").GetInt64(), now - 60, now + 60);
        Assert.True(idToken.Payload.GetProperty("exp").GetInt64() > now);
        Assert.True(idToken.VerifiesWith(await GetJsonAsync(new Uri(discovery.GetProperty("jwks_uri").GetString()!))));

        // Codes are single-use.
        var (againStatus, again) = await ExchangeAsync(provider.TokenEndpoint, provider, code);
        Assert.Equal(HttpStatusCode.BadRequest, againStatus);
        Assert.Equal("invalid_grant", again.GetProperty("error").GetString());
    }

    [Fact]
    public async Task Pkce_WrongOrMissingVerifierRefused_NoChallengeAllowedForConfidentialClient()
    {
        await using var provider = await OidcProvider.StartAsync(cancellationToken: TestContext.Current.CancellationToken);

        var wrong = await provider.AuthorizeAsync();
        var (wrongStatus, wrongBody) = await ExchangeAsync(provider.TokenEndpoint, provider, wrong with { CodeVerifier = new string('x', 43) });
        Assert.Equal(HttpStatusCode.BadRequest, wrongStatus);
        Assert.Equal("invalid_grant", wrongBody.GetProperty("error").GetString());

        var missing = await provider.AuthorizeAsync();
        var (missingStatus, missingBody) = await ExchangeAsync(provider.TokenEndpoint, provider, missing with { CodeVerifier = null });
        Assert.Equal(HttpStatusCode.BadRequest, missingStatus);
        Assert.Equal("invalid_grant", missingBody.GetProperty("error").GetString());

        // Without a challenge the code is redeemed without a verifier, here with HTTP Basic client authentication.
        var plain = await provider.AuthorizeAsync("carol", pkce: false);
        Assert.Null(plain.CodeVerifier);
        var (plainStatus, plainBody) = await ExchangeAsync(provider.TokenEndpoint, provider, plain, basicAuth: true);
        Assert.Equal(HttpStatusCode.OK, plainStatus);
        Assert.Equal("carol", Jwt.Parse(plainBody.GetProperty("id_token").GetString()!).Payload.GetProperty("sub").GetString());
    }

    [Fact]
    public async Task RequirePkce_AuthorizationWithoutChallengeRefused()
    {
        await using var provider = await OidcProvider.StartAsync(new OidcProviderOptions(RequirePkce: true), TestContext.Current.CancellationToken);

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => provider.AuthorizeAsync(pkce: false));
        Assert.Contains("invalid_request", error.Message, StringComparison.Ordinal);
        var code = await provider.AuthorizeAsync();
        Assert.Equal(HttpStatusCode.OK, (await ExchangeAsync(provider.TokenEndpoint, provider, code)).Status);
    }

    [Fact]
    public async Task CodeOfAnotherClient_RedeemedByThisClient_InvalidGrant()
    {
        await using var provider = await OidcProvider.StartAsync(cancellationToken: TestContext.Current.CancellationToken);

        var code = await provider.AuthorizeAsync(clientId: provider.OtherClientId);
        var (status, body) = await ExchangeAsync(provider.TokenEndpoint, provider, code with { ClientId = provider.ClientId });

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("invalid_grant", body.GetProperty("error").GetString());
        var (ownStatus, own) = await ExchangeAsync(provider.TokenEndpoint, provider, await provider.AuthorizeAsync(clientId: provider.OtherClientId));
        Assert.Equal(HttpStatusCode.OK, ownStatus);
        Assert.Equal(provider.OtherClientId, Jwt.Parse(own.GetProperty("id_token").GetString()!).Payload.GetProperty("aud").GetString());
    }

    [Fact]
    public async Task Tamper_ChangesClaimsAndSignatureAsAsked_UntilReset()
    {
        await using var provider = await OidcProvider.StartAsync(cancellationToken: TestContext.Current.CancellationToken);
        var jwks = await GetJsonAsync(provider.JwksUri);
        var kid = await provider.CurrentKidAsync();

        await provider.TamperAsync(new Dictionary<string, object?> { ["sub"] = "mallory", ["nonce"] = null, ["aud"] = "someone-else" });
        var bySigner = await RedeemIdTokenAsync(provider, nonce: "n1");
        Assert.Equal("mallory", bySigner.Payload.GetProperty("sub").GetString());
        Assert.Equal("someone-else", bySigner.Payload.GetProperty("aud").GetString());
        Assert.False(bySigner.Payload.TryGetProperty("nonce", out _));
        Assert.Equal(provider.Issuer, bySigner.Payload.GetProperty("iss").GetString());
        Assert.Equal(kid, bySigner.Header.GetProperty("kid").GetString());
        Assert.True(bySigner.VerifiesWith(jwks));

        await provider.TamperAsync(new Dictionary<string, object?> { ["iss"] = "https://accounts.example" }, signing: IdTokenSigning.Foreign);
        var foreign = await RedeemIdTokenAsync(provider);
        Assert.Equal("https://accounts.example", foreign.Payload.GetProperty("iss").GetString());
        Assert.Equal(kid, foreign.Header.GetProperty("kid").GetString());
        Assert.False(foreign.VerifiesWith(jwks));

        await provider.TamperAsync(header: new Dictionary<string, object?> { ["kid"] = "unknown-kid" }, signing: IdTokenSigning.Foreign);
        Assert.Equal("unknown-kid", (await RedeemIdTokenAsync(provider)).Header.GetProperty("kid").GetString());

        await provider.TamperAsync(signing: IdTokenSigning.None);
        var unsigned = await RedeemIdTokenAsync(provider);
        Assert.Equal("none", unsigned.Header.GetProperty("alg").GetString());
        Assert.Empty(unsigned.Signature);

        await provider.TamperAsync(signing: IdTokenSigning.ClientSecret);
        var hmac = await RedeemIdTokenAsync(provider);
        Assert.Equal("HS256", hmac.Header.GetProperty("alg").GetString());
        Assert.Equal(HMACSHA256.HashData(Encoding.UTF8.GetBytes(provider.ClientSecret), hmac.SigningInput), hmac.Signature);

        await provider.ResetAsync();
        var genuine = await RedeemIdTokenAsync(provider, subject: "dave", nonce: "n2");
        Assert.Equal("dave", genuine.Payload.GetProperty("sub").GetString());
        Assert.Equal("n2", genuine.Payload.GetProperty("nonce").GetString());
        Assert.True(genuine.VerifiesWith(jwks));
    }

    [Fact]
    public async Task RotateKeys_NewKidReplacesOldInJwks_OutstandingCodeSignedWithNewKey()
    {
        await using var provider = await OidcProvider.StartAsync(cancellationToken: TestContext.Current.CancellationToken);
        var before = await GetJsonAsync(provider.JwksUri);
        var oldKid = Assert.Single(Kids(before));
        Assert.Equal(oldKid, await provider.CurrentKidAsync());
        var outstanding = await provider.AuthorizeAsync();

        var newKid = await provider.RotateKeysAsync();

        Assert.NotEqual(oldKid, newKid);
        var after = await GetJsonAsync(provider.JwksUri);
        Assert.Equal([newKid], Kids(after));
        var (status, body) = await ExchangeAsync(provider.TokenEndpoint, provider, outstanding);
        Assert.Equal(HttpStatusCode.OK, status);
        var idToken = Jwt.Parse(body.GetProperty("id_token").GetString()!);
        Assert.Equal(newKid, idToken.Header.GetProperty("kid").GetString());
        Assert.False(idToken.VerifiesWith(before));
        Assert.True(idToken.VerifiesWith(after));

        // keep_previous: the new key signs, both stay published.
        var newest = await provider.RotateKeysAsync(keepPrevious: true);
        Assert.Equal([newest, newKid], Kids(await GetJsonAsync(provider.JwksUri)));
        Assert.Equal(newest, (await RedeemIdTokenAsync(provider)).Header.GetProperty("kid").GetString());

        var stats = await provider.StatsAsync();
        Assert.Equal(3, stats.JwksRequests);
        Assert.Equal(2, stats.TokenRequests);
        Assert.Equal(0, stats.DiscoveryRequests);
    }

    [Fact]
    public async Task TokenEndpoint_DownThenHangThenNormal()
    {
        await using var provider = await OidcProvider.StartAsync(cancellationToken: TestContext.Current.CancellationToken);
        var code = await provider.AuthorizeAsync();

        await provider.SetTokenEndpointAsync(TokenEndpointMode.Down);
        var (downStatus, down) = await ExchangeAsync(provider.TokenEndpoint, provider, code);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, downStatus);
        Assert.Equal("temporarily_unavailable", down.GetProperty("error").GetString());

        await provider.SetTokenEndpointAsync(TokenEndpointMode.Hang);
        using (var impatient = new HttpClient { Timeout = TimeSpan.FromSeconds(1) })
        {
            await Assert.ThrowsAnyAsync<TaskCanceledException>(() => impatient.PostAsync(provider.TokenEndpoint, TokenForm(provider, code)));
        }

        // Neither fault consumed the code.
        await provider.SetTokenEndpointAsync(TokenEndpointMode.Normal);
        Assert.Equal(HttpStatusCode.OK, (await ExchangeAsync(provider.TokenEndpoint, provider, code)).Status);
        Assert.Equal(3, (await provider.StatsAsync()).TokenRequests);
    }

    [Fact]
    public async Task StopAndRestart_SameIssuerAndKey_RefusesConnectionsWhileStopped()
    {
        await using var provider = await OidcProvider.StartAsync(cancellationToken: TestContext.Current.CancellationToken);
        var kid = await provider.CurrentKidAsync();

        await provider.StopAsync();
        await Assert.ThrowsAsync<HttpRequestException>(() => _http.GetAsync(provider.JwksUri));

        await provider.RestartAsync();
        Assert.Equal([kid], Kids(await GetJsonAsync(provider.JwksUri)));
        Assert.Equal(provider.Issuer, (await RedeemIdTokenAsync(provider)).Payload.GetProperty("iss").GetString());

        await provider.RestartAsync(keepSigningKey: false);
        Assert.NotEqual(kid, Assert.Single(Kids(await GetJsonAsync(provider.JwksUri))));
    }

    private async Task<Jwt> RedeemIdTokenAsync(OidcProvider provider, string subject = "alice", string? nonce = null)
    {
        var code = await provider.AuthorizeAsync(subject, nonce);
        var (status, body) = await ExchangeAsync(provider.TokenEndpoint, provider, code);
        Assert.True(status == HttpStatusCode.OK, $"token endpoint answered {(int)status}: {body}");
        return Jwt.Parse(body.GetProperty("id_token").GetString()!);
    }

    private async Task<(HttpStatusCode Status, JsonElement Body)> ExchangeAsync(Uri tokenEndpoint, OidcProvider provider, AuthorizationCode code,
        bool basicAuth = false)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, tokenEndpoint) { Content = TokenForm(provider, code, basicAuth) };
        if (basicAuth)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Basic",
                Convert.ToBase64String(Encoding.UTF8.GetBytes($"{Uri.EscapeDataString(code.ClientId)}:{Uri.EscapeDataString(SecretOf(provider, code.ClientId))}")));
        }
        using var response = await _http.SendAsync(request);
        return (response.StatusCode, JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone());
    }

    private static FormUrlEncodedContent TokenForm(OidcProvider provider, AuthorizationCode code, bool basicAuth = false)
    {
        var form = new Dictionary<string, string>
        {
            ["grant_type"] = "authorization_code",
            ["code"] = code.Code,
            ["redirect_uri"] = code.RedirectUri,
        };
        if (!basicAuth)
        {
            form["client_id"] = code.ClientId;
            form["client_secret"] = SecretOf(provider, code.ClientId);
        }
        if (code.CodeVerifier is not null)
        {
            form["code_verifier"] = code.CodeVerifier;
        }
        return new FormUrlEncodedContent(form);
    }

    private static string SecretOf(OidcProvider provider, string clientId) =>
        clientId == provider.OtherClientId ? provider.OtherClientSecret : provider.ClientSecret;

    private async Task<JsonElement> GetJsonAsync(Uri uri) => JsonDocument.Parse(await _http.GetStringAsync(uri)).RootElement.Clone();

    private static List<string> Kids(JsonElement jwks) =>
        [.. jwks.GetProperty("keys").EnumerateArray().Select(k => k.GetProperty("kid").GetString()!)];

    /// <summary>A compact JWS taken apart by hand, so this test relies on nothing but the BCL to check the fixture.</summary>
    private sealed record Jwt(JsonElement Header, JsonElement Payload, byte[] SigningInput, byte[] Signature)
    {
        public static Jwt Parse(string token)
        {
            var parts = token.Split('.');
            Assert.Equal(3, parts.Length);
            return new Jwt(
                JsonDocument.Parse(Base64UrlDecode(parts[0])).RootElement.Clone(),
                JsonDocument.Parse(Base64UrlDecode(parts[1])).RootElement.Clone(),
                Encoding.ASCII.GetBytes($"{parts[0]}.{parts[1]}"),
                Base64UrlDecode(parts[2]));
        }

        /// <summary>RS256 with the JWKS key of the header's kid.</summary>
        public bool VerifiesWith(JsonElement jwks)
        {
            if (Header.GetProperty("alg").GetString() != "RS256" || !Header.TryGetProperty("kid", out var kid))
            {
                return false;
            }
            var key = jwks.GetProperty("keys").EnumerateArray().FirstOrDefault(k => k.GetProperty("kid").GetString() == kid.GetString());
            if (key.ValueKind != JsonValueKind.Object)
            {
                return false;
            }
            using var rsa = RSA.Create();
            rsa.ImportParameters(new RSAParameters
            {
                Modulus = Base64UrlDecode(key.GetProperty("n").GetString()!),
                Exponent = Base64UrlDecode(key.GetProperty("e").GetString()!),
            });
            return rsa.VerifyData(SigningInput, Signature, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        }

        private static byte[] Base64UrlDecode(string value)
        {
            var base64 = value.Replace('-', '+').Replace('_', '/');
            return Convert.FromBase64String(base64.PadRight(base64.Length + ((4 - (base64.Length % 4)) % 4), '='));
        }
    }
}
