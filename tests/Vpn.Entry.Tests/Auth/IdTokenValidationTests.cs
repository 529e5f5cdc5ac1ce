using Vpn.TestSupport.Oidc;

namespace Vpn.Entry.Tests.Auth;

/// <summary>
/// Every way an ID token from a real provider can be wrong, and the few ways it may differ and still be right
/// (OpenID Connect Core §3.1.3.7, RFC 8725): audience, authorized party, issuer, times, subject, nonce, signature and
/// the provider's signing keys (JWKS rotation and unknown kids).
/// </summary>
public sealed class IdTokenValidationTests(OidcProviderFixture fixture) : SignInTestBase(fixture), IClassFixture<OidcProviderFixture>
{
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
        await SignInAsync(Stack, "azp-ok");
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
        await SignInAsync(Stack, "dave-skew");
    }

    [Fact]
    public Task MissingSubject_Rejected() => AssertIdTokenRejectedAsync(new Dictionary<string, object?> { ["sub"] = null });

    [Fact]
    public async Task NonceMismatch_Rejected()
    {
        var code = await Provider.AuthorizeAsync("erin", nonce: "nonce-the-app-sent", cancellationToken: TestContext.Current.CancellationToken);
        var problem = await Stack.SendJsonAsync(Callback(code, nonce: "nonce-of-another-attempt"), 401);
        Assert.Equal("invalid_id_token", problem.GetProperty("code").GetString());
    }

    [Fact]
    public async Task NonceExpectedButAbsentFromIdToken_Rejected()
    {
        var code = await Provider.AuthorizeAsync("erin2", nonce: null, cancellationToken: TestContext.Current.CancellationToken);
        var problem = await Stack.SendJsonAsync(Callback(code, nonce: "nonce-the-app-thinks-it-sent"), 401);
        Assert.Equal("invalid_id_token", problem.GetProperty("code").GetString());
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
        await SignInAsync(Stack, "judy");
        var before = await Provider.StatsAsync(TestContext.Current.CancellationToken);
        var oldKid = await Provider.CurrentKidAsync(TestContext.Current.CancellationToken);
        var newKid = await Provider.RotateKeysAsync(cancellationToken: TestContext.Current.CancellationToken);
        Assert.NotEqual(oldKid, newKid);

        var answer = await SignInAsync(Stack, "judy");
        Assert.False(answer.GetProperty("new_customer").GetBoolean());
        var after = await Provider.StatsAsync(TestContext.Current.CancellationToken);
        Assert.Equal(before.JwksRequests + 1, after.JwksRequests);
        // Cached from now on: another sign-in reads no JWKS.
        await SignInAsync(Stack, "judy");
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
}
