using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Vpn.Entry.Auth;
using Vpn.Entry.Tests.Infrastructure;

namespace Vpn.Entry.Tests.Auth;

/// <summary>
/// Our access tokens against what an attacker would send (RFC 8725): every forged, altered or misused token answers
/// 401 with the contract's code, and only a token we issued with a key we still list is let in.
/// </summary>
public sealed class AccessTokenTests : IAsyncLifetime
{
    private static readonly byte[] Secret = Encoding.UTF8.GetBytes(TestStack.JwtSecret);
    private TestStack _stack = null!;

    public async ValueTask InitializeAsync() => _stack = await TestStack.StartAsync(StoreKind.InMemory);

    public async ValueTask DisposeAsync() => await _stack.DisposeAsync();

    private static Dictionary<string, object?> Header(string alg = "HS256", string? kid = TestStack.JwtKid, string? typ = "at+jwt")
    {
        var header = new Dictionary<string, object?> { ["alg"] = alg };
        if (kid is not null)
        {
            header["kid"] = kid;
        }
        if (typ is not null)
        {
            header["typ"] = typ;
        }
        return header;
    }

    private static Dictionary<string, object?> Claims(Guid? customer = null)
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        return new Dictionary<string, object?>
        {
            ["iss"] = "vpn-entry",
            ["aud"] = "vpn-api",
            ["sub"] = (customer ?? Guid.NewGuid()).ToString(),
            ["iat"] = now,
            ["nbf"] = now,
            ["exp"] = now + 600,
            ["jti"] = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16)),
        };
    }

    private static Dictionary<string, object?> With(Dictionary<string, object?> claims, string name, object? value)
    {
        var copy = new Dictionary<string, object?>(claims);
        if (value is null)
        {
            copy.Remove(name);
        }
        else
        {
            copy[name] = value;
        }
        return copy;
    }

    private async Task<JsonElement> MeAsync(string? authorization, int expectedStatus, string path = "/v1/me")
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        if (authorization is not null)
        {
            request.Headers.TryAddWithoutValidation("Authorization", authorization);
        }
        return await _stack.SendJsonAsync(request, expectedStatus);
    }

    private async Task AssertRejectedAsync(string token, string code = "invalid_token")
    {
        var problem = await MeAsync("Bearer " + token, 401);
        Assert.Equal(code, problem.GetProperty("code").GetString());
        Assert.DoesNotContain(token, problem.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task IssuedToken_Accepted_AndCarriesContractClaims()
    {
        var customer = Guid.NewGuid();
        var issued = _stack.EntryServices.GetRequiredService<AccessTokenService>().Issue(customer);
        var me = await MeAsync("Bearer " + issued.Token, 200);
        Assert.Equal(customer, me.GetProperty("customer_id").GetGuid());
        Assert.Equal(JsonValueKind.Null, me.GetProperty("subscription").ValueKind);

        var parts = issued.Token.Split('.');
        using var header = JsonDocument.Parse(Base64UrlDecode(parts[0]));
        using var payload = JsonDocument.Parse(Base64UrlDecode(parts[1]));
        Assert.Equal("HS256", header.RootElement.GetProperty("alg").GetString());
        Assert.Equal(TestStack.JwtKid, header.RootElement.GetProperty("kid").GetString());
        Assert.Equal("at+jwt", header.RootElement.GetProperty("typ").GetString());
        foreach (var claim in new[] { "iss", "aud", "sub", "iat", "exp", "jti" })
        {
            Assert.True(payload.RootElement.TryGetProperty(claim, out _), claim);
        }
        Assert.Equal(customer.ToString(), payload.RootElement.GetProperty("sub").GetString());
    }

    [Fact]
    public async Task HandForgedValidToken_Accepted_SoTheRejectionsBelowAreAboutTheirOneDifference()
    {
        var customer = Guid.NewGuid();
        var me = await MeAsync("Bearer " + Jws.Hmac(Header(), Claims(customer), Secret), 200);
        Assert.Equal(customer, me.GetProperty("customer_id").GetGuid());
    }

    [Fact]
    public async Task NoCredential_MissingToken()
    {
        var problem = await MeAsync(null, 401);
        Assert.Equal("missing_token", problem.GetProperty("code").GetString());
        using var response = await _stack.Client.GetAsync("/v1/me", TestContext.Current.CancellationToken);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("Bearer", response.Headers.WwwAuthenticate.ToString());
        using var bad = new HttpRequestMessage(HttpMethod.Get, "/v1/me");
        bad.Headers.TryAddWithoutValidation("Authorization", "Bearer nope");
        using var badResponse = await _stack.Client.SendAsync(bad, TestContext.Current.CancellationToken);
        Assert.Equal("Bearer error=\"invalid_token\"", badResponse.Headers.WwwAuthenticate.ToString());
    }

    [Fact]
    public Task AlgNone_Rejected() => AssertRejectedAsync(Jws.WithoutSignature(Header(alg: "none"), Claims()));

    [Fact]
    public Task AlgNoneWithOurSignature_Rejected()
    {
        var valid = Jws.Hmac(Header(), Claims(), Secret).Split('.');
        var none = Jws.Encode(Header(alg: "none"));
        return AssertRejectedAsync($"{none}.{valid[1]}.{valid[2]}");
    }

    [Fact]
    public Task Hs512WithOurSecret_Rejected() => AssertRejectedAsync(Jws.Hmac(Header(alg: "HS512"), Claims(), Secret, "SHA512"));

    [Fact]
    public Task Rs256HeaderWithOurHmacSecretAsKey_Rejected() => AssertRejectedAsync(Jws.Hmac(Header(alg: "RS256"), Claims(), Secret));

    [Fact]
    public async Task Rs256SignedByAttackerKey_WithEmbeddedJwk_Rejected()
    {
        using var rsa = RSA.Create(2048);
        var parameters = rsa.ExportParameters(false);
        var header = Header(alg: "RS256");
        header["jwk"] = new Dictionary<string, string>
        {
            ["kty"] = "RSA", ["kid"] = TestStack.JwtKid, ["n"] = Jws.Base64Url(parameters.Modulus!), ["e"] = Jws.Base64Url(parameters.Exponent!),
        };
        await AssertRejectedAsync(Jws.Rsa(header, Claims(), rsa));
    }

    [Fact]
    public async Task JkuAndX5uHeaders_NeverFetched_AndAttackerSecretRejected()
    {
        // A listener the headers point at: entry must never connect to it.
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var url = $"http://127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}/keys";
        var attackerSecret = RandomNumberGenerator.GetBytes(32);
        var header = Header(kid: "attacker");
        header["jku"] = url;
        header["x5u"] = url;
        await AssertRejectedAsync(Jws.Hmac(header, Claims(), attackerSecret));
        var withOurKid = Header();
        withOurKid["jku"] = url;
        await AssertRejectedAsync(Jws.Hmac(withOurKid, Claims(), attackerSecret));
        Assert.False(listener.Pending(), "entry fetched a key URL taken from a token header");
    }

    [Theory]
    [InlineData("nope")]
    [InlineData("")]
    [InlineData("../../../../etc/passwd")]
    [InlineData("/dev/null")]
    [InlineData("' OR '1'='1")]
    [InlineData("test-k1'; drop table revoked_tokens; --")]
    [InlineData("test-k1\u0000")]
    [InlineData("TEST-K1")]
    public Task UnknownOrHostileKid_Rejected(string kid) => AssertRejectedAsync(Jws.Hmac(Header(kid: kid), Claims(), Secret));

    [Fact]
    public Task MissingKid_Rejected() => AssertRejectedAsync(Jws.Hmac(Header(kid: null), Claims(), Secret));

    [Fact]
    public Task KidAsNumber_Rejected()
    {
        var header = Header();
        header["kid"] = 1;
        return AssertRejectedAsync(Jws.Hmac(header, Claims(), Secret));
    }

    [Theory]
    [InlineData("jti")]
    [InlineData("exp")]
    [InlineData("iss")]
    [InlineData("aud")]
    [InlineData("sub")]
    [InlineData("iat")]
    public Task MissingRequiredClaim_Rejected(string claim) => AssertRejectedAsync(Jws.Hmac(Header(), With(Claims(), claim, null), Secret));

    [Fact]
    public Task EmptyJti_Rejected() => AssertRejectedAsync(Jws.Hmac(Header(), With(Claims(), "jti", ""), Secret));

    [Fact]
    public Task Expired_TokenExpired() =>
        AssertRejectedAsync(Jws.Hmac(Header(), With(Claims(), "exp", DateTimeOffset.UtcNow.AddMinutes(-5).ToUnixTimeSeconds()), Secret), "token_expired");

    [Fact]
    public async Task ExpiredWithinSkew_StillAccepted_ButBeyondIsNot()
    {
        await MeAsync("Bearer " + Jws.Hmac(Header(), With(Claims(), "exp", DateTimeOffset.UtcNow.AddSeconds(-10).ToUnixTimeSeconds()), Secret), 200);
        await AssertRejectedAsync(Jws.Hmac(Header(), With(Claims(), "exp", DateTimeOffset.UtcNow.AddSeconds(-90).ToUnixTimeSeconds()), Secret), "token_expired");
    }

    [Fact]
    public Task NotBeforeInTheFuture_Rejected() =>
        AssertRejectedAsync(Jws.Hmac(Header(), With(Claims(), "nbf", DateTimeOffset.UtcNow.AddMinutes(10).ToUnixTimeSeconds()), Secret));

    [Theory]
    [InlineData("iss", "vpn-entry ")]
    [InlineData("iss", "VPN-ENTRY")]
    [InlineData("iss", "https://accounts.google.com")]
    [InlineData("aud", "vpn-api2")]
    [InlineData("aud", "other")]
    [InlineData("sub", "not-a-uuid")]
    [InlineData("sub", "00000000-0000-0000-0000-000000000000")]
    public Task WrongClaimValue_Rejected(string claim, string value) => AssertRejectedAsync(Jws.Hmac(Header(), With(Claims(), claim, value), Secret));

    [Fact]
    public Task AudienceArrayWithoutUs_Rejected() => AssertRejectedAsync(Jws.Hmac(Header(), With(Claims(), "aud", new[] { "a", "b" }), Secret));

    [Fact]
    public Task AudienceArrayWithUsAndAnother_Rejected() =>
        AssertRejectedAsync(Jws.Hmac(Header(), With(Claims(), "aud", new[] { "vpn-api", "other-api" }), Secret));

    [Fact]
    public async Task AudienceArrayOfUsAlone_Accepted() =>
        await MeAsync("Bearer " + Jws.Hmac(Header(), With(Claims(), "aud", new[] { "vpn-api" }), Secret), 200);

    [Theory]
    [InlineData("[\"foo\"]")]
    [InlineData("[\"exp\"]")]
    [InlineData("[]")]
    [InlineData("\"foo\"")]
    public Task CritHeader_Rejected(string crit)
    {
        // RFC 7515 §4.1.11: we understand no extension, so any crit (even an empty or malformed one) is refused.
        var header = Header();
        header["crit"] = JsonDocument.Parse(crit).RootElement.Clone();
        header["foo"] = 1;
        return AssertRejectedAsync(Jws.Hmac(header, Claims(), Secret));
    }

    [Fact]
    public async Task IssuedInTheFuture_WithinSkewAccepted_BeyondRejected()
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        await MeAsync("Bearer " + Jws.Hmac(Header(), With(With(Claims(), "iat", now + 10), "exp", now + 600), Secret), 200);
        await AssertRejectedAsync(Jws.Hmac(Header(), With(With(Claims(), "iat", now + 120), "exp", now + 600), Secret));
    }

    [Theory]
    [InlineData("exp", "string")]
    [InlineData("iat", "string")]
    [InlineData("nbf", "string")]
    [InlineData("exp", "array")]
    [InlineData("iat", "bool")]
    [InlineData("nbf", "object")]
    public Task NumericDateNotAJsonNumber_Rejected(string claim, string kind)
    {
        var seconds = (long)Claims()[claim]!;
        object value = kind switch
        {
            "string" => seconds.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "array" => new[] { seconds },
            "bool" => true,
            _ => new Dictionary<string, long> { ["seconds"] = seconds },
        };
        return AssertRejectedAsync(Jws.Hmac(Header(), With(Claims(), claim, value), Secret));
    }

    [Fact]
    public async Task LifetimeLongerThanConfigured_Rejected_ExactlyConfiguredAccepted()
    {
        var lifetime = (long)_stack.EntryServices.GetRequiredService<AccessTokenService>().Lifetime.TotalSeconds;
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        await MeAsync("Bearer " + Jws.Hmac(Header(), With(With(Claims(), "iat", now), "exp", now + lifetime), Secret), 200);
        await AssertRejectedAsync(Jws.Hmac(Header(), With(With(Claims(), "iat", now), "exp", now + lifetime + 1), Secret));
        // A token "issued" long ago but still unexpired: its exp − iat betrays a lifetime we never grant.
        await AssertRejectedAsync(Jws.Hmac(Header(), With(With(Claims(), "iat", now - 86_400), "exp", now + 600), Secret));
    }

    [Theory]
    [InlineData("payload", "sub")]
    [InlineData("payload", "aud")]
    [InlineData("payload", "exp")]
    [InlineData("header", "kid")]
    [InlineData("header", "alg")]
    public async Task RepeatedName_Rejected_SameJsonWithoutRepeatAccepted(string part, string name)
    {
        var header = JsonSerializer.Serialize(Header());
        var claims = Claims();
        var payload = JsonSerializer.Serialize(claims);
        await MeAsync("Bearer " + Jws.HmacRaw(header, payload, Secret), 200);
        // The repeat comes first, so a last-wins parser sees the good value and a first-wins one the other.
        var other = name switch
        {
            "sub" => $"\"{Guid.NewGuid()}\"",
            "aud" => "\"other-api\"",
            "exp" => ((long)claims["exp"]! + 86_400).ToString(System.Globalization.CultureInfo.InvariantCulture),
            "kid" => "\"attacker\"",
            _ => "\"none\"",
        };
        var repeated = "{" + $"\"{name}\":{other},";
        await AssertRejectedAsync(part == "payload"
            ? Jws.HmacRaw(header, repeated + payload[1..], Secret)
            : Jws.HmacRaw(repeated + header[1..], payload, Secret));
    }

    [Theory]
    [InlineData("JWT")]
    [InlineData("id_token+jwt")]
    [InlineData(null)]
    public Task WrongOrMissingTyp_Rejected(string? typ) => AssertRejectedAsync(Jws.Hmac(Header(typ: typ), Claims(), Secret));

    [Fact]
    public Task TamperedPayload_Rejected()
    {
        var parts = Jws.Hmac(Header(), Claims(), Secret).Split('.');
        var other = Jws.Encode(Claims());
        return AssertRejectedAsync($"{parts[0]}.{other}.{parts[2]}");
    }

    [Theory]
    [InlineData("garbage")]
    [InlineData("a.b.c")]
    [InlineData("a.b")]
    [InlineData("....")]
    [InlineData("eyJhbGciOiJIUzI1NiJ9.e30")]
    public Task Malformed_Rejected(string token) => AssertRejectedAsync(token);

    [Fact]
    public async Task TokenInQueryString_Ignored()
    {
        var token = _stack.EntryServices.GetRequiredService<AccessTokenService>().Issue(Guid.NewGuid()).Token;
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
        var token = _stack.EntryServices.GetRequiredService<AccessTokenService>().Issue(Guid.NewGuid()).Token;
        await MeAsync("bearer " + token, 200);
    }

    [Fact]
    public async Task BearerWins_OverLegacyHeader()
    {
        var customer = Guid.NewGuid();
        var token = _stack.EntryServices.GetRequiredService<AccessTokenService>().Issue(customer).Token;
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/me");
        request.Headers.Add("Authorization", "Bearer " + token);
        request.Headers.Add("x-customer-id", Guid.NewGuid().ToString());
        var me = await _stack.SendJsonAsync(request, 200);
        Assert.Equal(customer, me.GetProperty("customer_id").GetGuid());
    }

    [Fact]
    public async Task Rotation_OldKeyStillListed_Valid_RemovedKey_Invalid()
    {
        var customer = Guid.NewGuid();
        var oldToken = _stack.EntryServices.GetRequiredService<AccessTokenService>().Issue(customer).Token;
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
        var seeded = await _stack.SeedCustomerAsync(region: "eu-west", maxDevices: 3);
        var token = _stack.EntryServices.GetRequiredService<AccessTokenService>().Issue(seeded.Id).Token;
        var me = await MeAsync("Bearer " + token, 200);
        var subscription = me.GetProperty("subscription");
        Assert.Equal("basic", subscription.GetProperty("plan_code").GetString());
        Assert.Equal("active", subscription.GetProperty("status").GetString());
        Assert.Equal(3, subscription.GetProperty("max_devices").GetInt32());
        Assert.Equal(["eu-west"], subscription.GetProperty("allowed_regions").EnumerateArray().Select(r => r.GetString()));
    }

    private static byte[] Base64UrlDecode(string value)
    {
        var padded = value.Replace('-', '+').Replace('_', '/');
        return Convert.FromBase64String(padded.PadRight(padded.Length + ((4 - (padded.Length % 4)) % 4), '='));
    }
}
