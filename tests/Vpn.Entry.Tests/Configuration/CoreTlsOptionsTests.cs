namespace Vpn.Entry.Tests.Configuration;

/// <summary>APP_REQUIRE_CORE_TLS and APP_CORE_TLS_*: what start-up accepts, what it refuses, and that no problem echoes a file's content.</summary>
public sealed class CoreTlsOptionsTests : IDisposable
{
    private readonly TestCertificates _pki = new();

    public void Dispose() => _pki.Dispose();

    private static (EntryOptions Options, IReadOnlyList<string> Errors) Load(params (string Key, string Value)[] settings) =>
        OptionsLoading.Load(EntryOptions.Load, settings);

    // Production refuses much else with no other settings; these tests look only at the core TLS problems.
    private static List<string> CoreTlsErrors(IReadOnlyList<string> errors) =>
        errors.Where(e => e.Contains("CORE_TLS", StringComparison.Ordinal)).ToList();

    private (string, string)[] ClientFiles() =>
    [
        ("APP_CORE_TLS_CA_FILE", _pki.Ca.CertificateFile),
        ("APP_CORE_TLS_CLIENT_CERT_FILE", _pki.Client.CertificateFile),
        ("APP_CORE_TLS_CLIENT_KEY_FILE", _pki.Client.KeyFile),
    ];

    [Fact]
    public void Load_Development_CleartextAllowedNothingLoaded()
    {
        var (options, errors) = Load();

        Assert.Empty(CoreTlsErrors(errors));
        Assert.False(options.CoreTls.Require);
        Assert.Null(options.CoreTls.Authorities);
        Assert.Null(options.CoreTls.ClientCertificate);
    }

    [Fact]
    public void Load_Production_RequiredByDefault()
    {
        var (options, errors) = Load([("APP_ENV", "production"), .. ClientFiles()]);

        Assert.Empty(CoreTlsErrors(errors));
        Assert.True(options.CoreTls.Require);
    }

    [Fact]
    public void Load_ProductionWithoutCoreCa_Refused()
    {
        // Without it the machine's public CAs would vouch for any core, and entry would show its client certificate to it.
        var (_, errors) = Load([("APP_ENV", "production"), .. ClientFiles().Where(s => s.Item1 != "APP_CORE_TLS_CA_FILE")]);

        Assert.Contains(errors, e => e.StartsWith("APP_CORE_TLS_CA_FILE is required in production", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("false")]
    [InlineData("0")]
    public void Load_ProductionRequireOff_Refused(string value)
    {
        var (_, errors) = Load([("APP_ENV", "production"), ("APP_REQUIRE_CORE_TLS", value), .. ClientFiles()]);

        Assert.Contains("APP_REQUIRE_CORE_TLS must be true in production.", errors);
    }

    [Fact]
    public void Load_RequireNotABoolean_Refused()
    {
        var (_, errors) = Load(("APP_REQUIRE_CORE_TLS", "on"));

        Assert.Contains("APP_REQUIRE_CORE_TLS must be true or false.", errors);
    }

    [Fact]
    public void Load_ProductionWithoutClientCertificate_Refused()
    {
        var (options, errors) = Load(("APP_ENV", "production"), ("APP_CORE_TLS_CA_FILE", _pki.Ca.CertificateFile));

        Assert.Contains(errors, e => e.StartsWith("APP_CORE_TLS_CLIENT_CERT_FILE and APP_CORE_TLS_CLIENT_KEY_FILE are required in production", StringComparison.Ordinal));
        Assert.Null(options.CoreTls.ClientCertificate);
    }

    [Fact]
    public void Load_DevelopmentRequireWithoutFiles_Allowed()
    {
        // Outside production a required TLS may rest on the machine's trust store and go without a client certificate.
        var (options, errors) = Load(("APP_REQUIRE_CORE_TLS", "true"));

        Assert.Empty(CoreTlsErrors(errors));
        Assert.True(options.CoreTls.Require);
    }

    [Theory]
    [InlineData("APP_CORE_TLS_CLIENT_CERT_FILE")]
    [InlineData("APP_CORE_TLS_CLIENT_KEY_FILE")]
    public void Load_CertificateWithoutKeyOrKeyWithoutCertificate_Refused(string onlySetting)
    {
        var file = onlySetting == "APP_CORE_TLS_CLIENT_CERT_FILE" ? _pki.Client.CertificateFile : _pki.Client.KeyFile;

        var (options, errors) = Load((onlySetting, file));

        Assert.Contains("APP_CORE_TLS_CLIENT_CERT_FILE and APP_CORE_TLS_CLIENT_KEY_FILE go together.", errors);
        Assert.Null(options.CoreTls.ClientCertificate);
    }

    [Fact]
    public void Load_GarbageFiles_RefusedWithoutEchoingContent()
    {
        var ca = _pki.WriteFile("garbage-ca.crt", "-----BEGIN CERTIFICATE-----\nTOPSECRETCATEXT\n-----END CERTIFICATE-----\n");
        var key = _pki.WriteFile("garbage.key", "-----BEGIN PRIVATE KEY-----\nTOPSECRETKEYTEXT\n-----END PRIVATE KEY-----\n");

        var (options, errors) = Load(("APP_CORE_TLS_CA_FILE", ca), ("APP_CORE_TLS_CLIENT_CERT_FILE", _pki.Client.CertificateFile), ("APP_CORE_TLS_CLIENT_KEY_FILE", key));

        var problems = CoreTlsErrors(errors);
        Assert.Contains(problems, e => e.StartsWith("APP_CORE_TLS_CA_FILE:", StringComparison.Ordinal));
        Assert.Contains(problems, e => e.StartsWith("APP_CORE_TLS_CLIENT_CERT_FILE/APP_CORE_TLS_CLIENT_KEY_FILE: cannot load", StringComparison.Ordinal));
        Assert.All(errors, e => Assert.DoesNotContain("TOPSECRET", e, StringComparison.Ordinal));
        Assert.Null(options.CoreTls.Authorities);
        Assert.Null(options.CoreTls.ClientCertificate);
    }

    [Fact]
    public void Load_KeyOfAnotherCertificate_RefusedWithoutEchoingTheKey()
    {
        var (_, errors) = Load(("APP_CORE_TLS_CLIENT_CERT_FILE", _pki.Client.CertificateFile), ("APP_CORE_TLS_CLIENT_KEY_FILE", _pki.Server.KeyFile));

        var problem = Assert.Single(CoreTlsErrors(errors));
        Assert.StartsWith("APP_CORE_TLS_CLIENT_CERT_FILE/APP_CORE_TLS_CLIENT_KEY_FILE:", problem, StringComparison.Ordinal);
        Assert.All(errors, e => Assert.DoesNotContain(File.ReadAllLines(_pki.Server.KeyFile)[1], e, StringComparison.Ordinal));
    }

    [Fact]
    public void Load_ValidFiles_Loaded()
    {
        var (options, errors) = Load([("APP_ENV", "production"), .. ClientFiles()]);

        Assert.Empty(CoreTlsErrors(errors));
        Assert.NotNull(options.CoreTls.ClientCertificate);
        Assert.True(options.CoreTls.ClientCertificate.HasPrivateKey);
        Assert.Equal(_pki.Client.Certificate.Thumbprint, options.CoreTls.ClientCertificate.Thumbprint);
        var authority = Assert.Single(options.CoreTls.Authorities!);
        Assert.Equal(_pki.Ca.Certificate.Thumbprint, authority.Thumbprint);
    }
}
