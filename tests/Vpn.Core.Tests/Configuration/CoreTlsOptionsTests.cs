using Vpn.Core.Configuration;
using Vpn.TestSupport;

namespace Vpn.Core.Tests.Configuration;

/// <summary>CORE_TLS_* and CORE_REQUIRE_TLS: what start-up accepts, what it refuses, and that no problem echoes a file's content.</summary>
public sealed class CoreTlsOptionsTests : IDisposable
{
    private const string Tcp = "127.0.0.1:50051";

    private readonly TestCertificates _pki = new();

    public void Dispose() => _pki.Dispose();

    private static (CoreOptions Options, IReadOnlyList<string> Errors) Load(params (string Key, string Value)[] settings) =>
        OptionsLoading.Load(CoreOptions.Load, settings);

    private (string, string)[] ServerFiles(string listen = Tcp) =>
    [
        ("CORE_GRPC_LISTEN", listen),
        ("CORE_TLS_CERT_FILE", _pki.Server.CertificateFile),
        ("CORE_TLS_KEY_FILE", _pki.Server.KeyFile),
        ("CORE_TLS_CLIENT_CA_FILE", _pki.Ca.CertificateFile),
    ];

    private static IEnumerable<string> TlsErrors(IReadOnlyList<string> errors) => errors.Where(e => e.Contains("TLS", StringComparison.Ordinal));

    [Fact]
    public void Load_Development_NoTlsRequiredNorConfigured()
    {
        var (options, errors) = Load(("CORE_GRPC_LISTEN", Tcp));

        Assert.Empty(errors);
        Assert.False(options.RequireTls);
        Assert.Null(options.TlsCertificate);
        Assert.Null(options.TlsClientAuthorities);
    }

    [Fact]
    public void Load_ProductionWithoutTlsFiles_Refused()
    {
        var (options, errors) = Load(("APP_ENV", "production"), ("CORE_GRPC_LISTEN", Tcp));

        Assert.True(options.RequireTls);
        Assert.Contains("CORE_REQUIRE_TLS needs CORE_TLS_CERT_FILE, CORE_TLS_KEY_FILE and CORE_TLS_CLIENT_CA_FILE for a TCP CORE_GRPC_LISTEN.", errors);
    }

    [Fact]
    public void Load_ProductionWithoutClientCa_Refused()
    {
        var (_, errors) = Load(("APP_ENV", "production"), ("CORE_GRPC_LISTEN", Tcp),
            ("CORE_TLS_CERT_FILE", _pki.Server.CertificateFile), ("CORE_TLS_KEY_FILE", _pki.Server.KeyFile));

        Assert.Contains(errors, e => e.StartsWith("CORE_REQUIRE_TLS needs", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("false")]
    [InlineData("0")]
    public void Load_ProductionRequireTlsOff_Refused(string value)
    {
        var (_, errors) = Load([("APP_ENV", "production"), ("CORE_REQUIRE_TLS", value), .. ServerFiles()]);

        Assert.Contains("CORE_REQUIRE_TLS must be true in production.", errors);
    }

    [Fact]
    public void Load_RequireTlsNotABoolean_Refused()
    {
        var (_, errors) = Load([("CORE_REQUIRE_TLS", "yes please"), .. ServerFiles()]);

        Assert.Contains("CORE_REQUIRE_TLS must be true or false.", errors);
    }

    [Fact]
    public void Load_RequireTlsOnTcpWithoutFiles_Refused()
    {
        var (_, errors) = Load(("CORE_REQUIRE_TLS", "true"), ("CORE_GRPC_LISTEN", Tcp));

        Assert.Contains(errors, e => e.StartsWith("CORE_REQUIRE_TLS needs", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("CORE_TLS_CERT_FILE")]
    [InlineData("CORE_TLS_KEY_FILE")]
    public void Load_CertificateWithoutKeyOrKeyWithoutCertificate_Refused(string onlySetting)
    {
        var file = onlySetting == "CORE_TLS_CERT_FILE" ? _pki.Server.CertificateFile : _pki.Server.KeyFile;

        var (options, errors) = Load(("CORE_GRPC_LISTEN", Tcp), (onlySetting, file), ("CORE_TLS_CLIENT_CA_FILE", _pki.Ca.CertificateFile));

        Assert.Contains("CORE_TLS_CERT_FILE and CORE_TLS_KEY_FILE go together.", errors);
        Assert.Null(options.TlsCertificate);
    }

    [Fact]
    public void Load_ClientCaWithoutServerCertificate_Refused()
    {
        var (_, errors) = Load(("CORE_GRPC_LISTEN", Tcp), ("CORE_TLS_CLIENT_CA_FILE", _pki.Ca.CertificateFile));

        Assert.Contains(errors, e => e.StartsWith("CORE_TLS_CLIENT_CA_FILE needs CORE_TLS_CERT_FILE", StringComparison.Ordinal));
    }

    [Fact]
    public void Load_GarbageCertificateKeyAndCa_RefusedWithoutEchoingContent()
    {
        var certificate = _pki.WriteFile("garbage.crt", "-----BEGIN CERTIFICATE-----\nTOPSECRETCERTTEXT\n-----END CERTIFICATE-----\n");
        var key = _pki.WriteFile("garbage.key", "-----BEGIN PRIVATE KEY-----\nTOPSECRETKEYTEXT\n-----END PRIVATE KEY-----\n");
        var ca = _pki.WriteFile("garbage-ca.crt", "TOPSECRETCATEXT, not PEM at all\n");

        var (options, errors) = Load(("CORE_GRPC_LISTEN", Tcp), ("CORE_TLS_CERT_FILE", certificate), ("CORE_TLS_KEY_FILE", key), ("CORE_TLS_CLIENT_CA_FILE", ca));

        Assert.Contains(errors, e => e.StartsWith("CORE_TLS_CERT_FILE/CORE_TLS_KEY_FILE: cannot load", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("CORE_TLS_CLIENT_CA_FILE:", StringComparison.Ordinal));
        Assert.All(errors, e => Assert.DoesNotContain("TOPSECRET", e, StringComparison.Ordinal));
        Assert.Null(options.TlsCertificate);
        Assert.Null(options.TlsClientAuthorities);
    }

    [Fact]
    public void Load_RealCertificateWithGarbageKey_RefusedWithoutEchoingContent()
    {
        var key = _pki.WriteFile("garbage.key", "-----BEGIN PRIVATE KEY-----\nTOPSECRETKEYTEXT\n-----END PRIVATE KEY-----\n");

        var (_, errors) = Load(("CORE_GRPC_LISTEN", Tcp), ("CORE_TLS_CERT_FILE", _pki.Server.CertificateFile), ("CORE_TLS_KEY_FILE", key));

        var problem = Assert.Single(errors);
        Assert.StartsWith("CORE_TLS_CERT_FILE/CORE_TLS_KEY_FILE: cannot load", problem, StringComparison.Ordinal);
        Assert.DoesNotContain("TOPSECRET", problem, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_KeyOfAnotherCertificate_RefusedWithoutEchoingTheKey()
    {
        var (options, errors) = Load(("CORE_GRPC_LISTEN", Tcp), ("CORE_TLS_CERT_FILE", _pki.Server.CertificateFile), ("CORE_TLS_KEY_FILE", _pki.Client.KeyFile));

        var problem = Assert.Single(errors);
        Assert.StartsWith("CORE_TLS_CERT_FILE/CORE_TLS_KEY_FILE:", problem, StringComparison.Ordinal);
        var keyBody = File.ReadAllLines(_pki.Client.KeyFile)[1];
        Assert.DoesNotContain(keyBody, problem, StringComparison.Ordinal);
        Assert.Null(options.TlsCertificate);
    }

    [Fact]
    public void Load_MissingFiles_RefusedNamingTheSetting()
    {
        var missing = Path.Combine(_pki.Directory, "missing.pem");

        var (_, errors) = Load(("CORE_GRPC_LISTEN", Tcp), ("CORE_TLS_CERT_FILE", missing), ("CORE_TLS_KEY_FILE", missing), ("CORE_TLS_CLIENT_CA_FILE", missing));

        Assert.Contains(errors, e => e.StartsWith("CORE_TLS_CERT_FILE/CORE_TLS_KEY_FILE: cannot load", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("CORE_TLS_CLIENT_CA_FILE: cannot load", StringComparison.Ordinal));
    }

    [Fact]
    public void Load_EmptyCaFile_Refused()
    {
        var ca = _pki.WriteFile("empty-ca.crt", "");

        var (_, errors) = Load([.. ServerFiles()[..3], ("CORE_TLS_CLIENT_CA_FILE", ca)]);

        Assert.Contains("CORE_TLS_CLIENT_CA_FILE: no certificate in the file.", errors);
    }

    [Theory]
    [InlineData("development")]
    [InlineData("production")]
    public void Load_UnixListenWithRequire_NoTlsProblem(string environment)
    {
        var (options, errors) = Load(("APP_ENV", environment), ("CORE_REQUIRE_TLS", "true"), ("CORE_GRPC_LISTEN", "unix:/run/vpn/core.sock"));

        Assert.Empty(TlsErrors(errors));
        Assert.True(options.RequireTls);
        Assert.Null(options.TlsCertificate);
    }

    [Fact]
    public void Load_ValidFilesInProduction_Loaded()
    {
        var (options, errors) = Load([("APP_ENV", "production"), .. ServerFiles()]);

        Assert.Empty(TlsErrors(errors));
        Assert.True(options.RequireTls);
        Assert.NotNull(options.TlsCertificate);
        Assert.True(options.TlsCertificate.HasPrivateKey);
        Assert.Equal(_pki.Server.Certificate.Thumbprint, options.TlsCertificate.Thumbprint);
        var authority = Assert.Single(options.TlsClientAuthorities!);
        Assert.Equal(_pki.Ca.Certificate.Thumbprint, authority.Thumbprint);
    }

    [Fact]
    public void Load_CaBundleOfTwo_LoadsBoth()
    {
        var bundle = _pki.WriteFile("bundle.crt", File.ReadAllText(_pki.Ca.CertificateFile) + File.ReadAllText(_pki.OtherCa.CertificateFile));

        var (options, errors) = Load([("CORE_REQUIRE_TLS", "true"), .. ServerFiles()[..3], ("CORE_TLS_CLIENT_CA_FILE", bundle)]);

        Assert.Empty(errors);
        Assert.Equal(2, options.TlsClientAuthorities!.Count);
    }
}
