namespace Vpn.Entry.Tests.Configuration;

/// <summary>Start-up refuses unsafe identity settings, reporting every problem without echoing a secret.</summary>
public sealed class EntryOptionsTests
{
    private const string GoodSecret = "0123456789abcdef0123456789abcdef";

    private static (EntryOptions Options, IReadOnlyList<string> Errors) Load(params (string Key, string Value)[] settings) =>
        OptionsLoading.Load(EntryOptions.Load, settings);

    [Fact]
    public void SigningKeys_ParsedWithActiveKid()
    {
        var (options, errors) = Load(("APP_JWT_SIGNING_KEYS", $"k2:{GoodSecret}x, k1:{GoodSecret}"), ("APP_JWT_ACTIVE_KID", "k1"));
        Assert.Empty(errors);
        Assert.Equal(["k2", "k1"], options.AccessTokens.Keys.Select(k => k.Kid));
        Assert.Equal("k1", options.AccessTokens.ActiveKid);
        Assert.False(options.AccessTokens.Ephemeral);
    }

    [Fact]
    public void SingleSigningKey_IsKidDefault_AndActiveByDefault()
    {
        var (options, errors) = Load(("APP_JWT_SIGNING_KEY", GoodSecret));
        Assert.Empty(errors);
        Assert.Equal("default", Assert.Single(options.AccessTokens.Keys).Kid);
        Assert.Equal("default", options.AccessTokens.ActiveKid);
    }

    [Theory]
    [InlineData("APP_JWT_SIGNING_KEYS", "k1:short-secret")]
    [InlineData("APP_JWT_SIGNING_KEYS", "k1:0123456789abcdef0123456789abcde")]
    [InlineData("APP_JWT_SIGNING_KEY", "0123456789abcdef0123456789abcde")]
    [InlineData("APP_JWT_SIGNING_KEYS", "no-colon-here-0123456789abcdef0123456789")]
    [InlineData("APP_JWT_SIGNING_KEYS", "../etc:0123456789abcdef0123456789abcdef")]
    [InlineData("APP_JWT_SIGNING_KEYS", "k1:0123456789abcdef0123456789abcdef,k1:0123456789abcdef0123456789abcdefXX")]
    [InlineData("APP_JWT_SIGNING_KEYS", "k1:0123456789abcdef,short-secret:0123456789abcdef")]
    public void BadSigningKeys_RefusedWithoutEchoingTheSecret(string setting, string value)
    {
        var (_, errors) = Load((setting, value));
        Assert.NotEmpty(errors);
        Assert.All(errors, e => Assert.DoesNotContain("0123456789abcdef", e, StringComparison.Ordinal));
        Assert.All(errors, e => Assert.DoesNotContain("short-secret", e, StringComparison.Ordinal));
    }

    [Fact]
    public void ActiveKidNotListed_Refused()
    {
        var (_, errors) = Load(("APP_JWT_SIGNING_KEYS", $"k1:{GoodSecret}"), ("APP_JWT_ACTIVE_KID", "k9"));
        Assert.Contains(errors, e => e.Contains("APP_JWT_ACTIVE_KID", StringComparison.Ordinal));
    }

    [Fact]
    public void Development_WithoutKeys_UsesEphemeralKey()
    {
        var (options, errors) = Load();
        Assert.Empty(errors);
        Assert.True(options.AccessTokens.Ephemeral);
        Assert.True(Assert.Single(options.AccessTokens.Keys).Secret.Length >= 32);
        Assert.Equal(OidcOptions.GoogleIssuer, options.Oidc.Issuer);
        Assert.Equal([OidcOptions.GoogleIssuer, "accounts.google.com"], options.Oidc.AcceptedIssuers);
        Assert.False(options.Oidc.Configured);
    }

    [Fact]
    public void Production_RequiresKeysGoogleClientAndNoLegacyHeader()
    {
        var (_, errors) = Load(("APP_ENV", "production"), ("APP_ALLOW_LEGACY_CUSTOMER_HEADER", "true"), ("GOOGLE_ISSUER", "http://127.0.0.1:9"));
        Assert.Contains(errors, e => e.Contains("APP_JWT_SIGNING_KEYS", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("GOOGLE_CLIENT_ID", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("APP_ALLOW_LEGACY_CUSTOMER_HEADER", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("GOOGLE_ISSUER must use https", StringComparison.Ordinal));
    }

    [Fact]
    public void Production_Complete_NoErrors()
    {
        using var certificates = new Vpn.TestSupport.TestCertificates();
        var (options, errors) = Load(("APP_ENV", "production"), ("DATABASE_URL", "postgres://u:p@db:5432/vpn"),
            ("ADMIN_API_TOKEN", new string('a', 40)), ("APP_JWT_SIGNING_KEYS", $"k1:{GoodSecret}"),
            ("GOOGLE_CLIENT_ID", "id.apps.googleusercontent.com"), ("GOOGLE_CLIENT_SECRET", "secret"),
            ("APP_CORE_TLS_CA_FILE", certificates.Ca.CertificateFile),
            ("APP_CORE_TLS_CLIENT_CERT_FILE", certificates.Client.CertificateFile), ("APP_CORE_TLS_CLIENT_KEY_FILE", certificates.Client.KeyFile));
        Assert.Empty(errors);
        Assert.True(options.CoreTls.Require);
        Assert.Equal("strict", options.Privacy.LogRedaction.ToString().ToLowerInvariant());
        Assert.False(options.AllowLegacyCustomerHeader);
        Assert.True(options.Oidc.Configured);
    }

    [Fact]
    public void SecretsFromFiles_GoogleClientAndSigningKeys()
    {
        var directory = Directory.CreateTempSubdirectory("entry-options-");
        try
        {
            File.WriteAllText(Path.Combine(directory.FullName, "id"), "client.apps.example\n");
            File.WriteAllText(Path.Combine(directory.FullName, "secret"), "s3cret\n");
            File.WriteAllText(Path.Combine(directory.FullName, "keys"), $"k1:{GoodSecret}\n");
            var (options, errors) = Load(("GOOGLE_CLIENT_ID_FILE", Path.Combine(directory.FullName, "id")),
                ("GOOGLE_CLIENT_SECRET_FILE", Path.Combine(directory.FullName, "secret")),
                ("APP_JWT_SIGNING_KEYS_FILE", Path.Combine(directory.FullName, "keys")));
            Assert.Empty(errors);
            Assert.Equal("client.apps.example", options.Oidc.ClientId);
            Assert.Equal("s3cret", options.Oidc.ClientSecret);
            Assert.Equal("k1", Assert.Single(options.AccessTokens.Keys).Kid);
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    [Theory]
    [InlineData("not a url")]
    [InlineData("ftp://issuer.example")]
    [InlineData("https://issuer.example/?x=1")]
    public void BadIssuer_Refused(string issuer)
    {
        var (_, errors) = Load(("GOOGLE_ISSUER", issuer));
        Assert.Contains(errors, e => e.Contains("GOOGLE_ISSUER", StringComparison.Ordinal));
    }

    [Fact]
    public void CustomIssuer_AcceptsOnlyItself()
    {
        // Exact, trailing slash included: iss is compared as a string.
        var (options, errors) = Load(("GOOGLE_ISSUER", "https://login.example.com/"));
        Assert.Empty(errors);
        Assert.Equal("https://login.example.com/", options.Oidc.Issuer);
        Assert.Equal(["https://login.example.com/"], options.Oidc.AcceptedIssuers);
    }

    [Theory]
    [InlineData("10.0.0.1,192.168.0.0/16, ::1", true)]
    [InlineData("10.0.0.1/33", false)]
    [InlineData("proxy.example", false)]
    public void TrustedProxies_Parsed(string value, bool valid)
    {
        var (options, errors) = Load(("APP_TRUSTED_PROXIES", value));
        Assert.Equal(valid, errors.Count == 0);
        if (valid)
        {
            Assert.Equal(2, options.RateLimits.TrustedProxies.Count);
            Assert.Single(options.RateLimits.TrustedNetworks);
        }
    }
}
