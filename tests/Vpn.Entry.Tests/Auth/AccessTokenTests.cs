using Vpn.Entry.Auth;

namespace Vpn.Entry.Tests.Auth;

/// <summary>
/// Our access tokens against what an attacker would send (RFC 8725): every forged, altered or misused token answers
/// 401 with the contract's code, and only a token we issued with a key we still list is let in. This class: the
/// signature and the header (alg, kid, jku/x5u/jwk, crit, typ), repeated names, tampering, malformed tokens; the
/// claims are <see cref="AccessTokenClaimsTests"/>, how a token is presented <see cref="BearerAuthenticationTests"/>.
/// </summary>
public sealed class AccessTokenTests : AccessTokenTestBase
{
    [Fact]
    public async Task IssuedToken_Accepted_AndCarriesContractClaims()
    {
        var customer = Guid.NewGuid();
        var issued = Stack.EntryServices.GetRequiredService<AccessTokenService>().Issue(customer);
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
        using var response = await Stack.Client.GetAsync("/v1/me", TestContext.Current.CancellationToken);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal("Bearer", response.Headers.WwwAuthenticate.ToString());
        using var bad = new HttpRequestMessage(HttpMethod.Get, "/v1/me");
        bad.Headers.TryAddWithoutValidation("Authorization", "Bearer nope");
        using var badResponse = await Stack.Client.SendAsync(bad, TestContext.Current.CancellationToken);
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
}
