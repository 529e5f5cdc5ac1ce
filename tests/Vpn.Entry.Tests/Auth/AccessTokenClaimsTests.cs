using Vpn.Entry.Auth;

namespace Vpn.Entry.Tests.Auth;

/// <summary>
/// The claims of an otherwise valid access token (RFC 8725, RFC 7519): required claims, iss/aud/sub/jti values, the
/// audience list, exp/nbf/iat within and beyond the skew, numeric dates that are not JSON numbers, and the lifetime.
/// </summary>
public sealed class AccessTokenClaimsTests : AccessTokenTestBase
{
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
        var lifetime = (long)Stack.EntryServices.GetRequiredService<AccessTokenService>().Lifetime.TotalSeconds;
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        await MeAsync("Bearer " + Jws.Hmac(Header(), With(With(Claims(), "iat", now), "exp", now + lifetime), Secret), 200);
        await AssertRejectedAsync(Jws.Hmac(Header(), With(With(Claims(), "iat", now), "exp", now + lifetime + 1), Secret));
        // A token "issued" long ago but still unexpired: its exp − iat betrays a lifetime we never grant.
        await AssertRejectedAsync(Jws.Hmac(Header(), With(With(Claims(), "iat", now - 86_400), "exp", now + 600), Secret));
    }
}
