using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Vpn.TestSupport;

/// <summary>A certificate with its private key, and the PEM files (certificate; PKCS#8 key) it was written to.</summary>
public sealed record TestCertificate(X509Certificate2 Certificate, string CertificateFile, string KeyFile);

/// <summary>
/// A throw-away PKI for the entry↔core TLS tests, written as PEM files to a temporary directory deleted on dispose:
/// a CA with a server certificate (SAN IP 127.0.0.1 and DNS localhost, serverAuth), a client certificate (clientAuth),
/// a server certificate for another name and one without serverAuth; and an unrelated second CA with its own server and
/// client certificates. ECDSA P-256, valid from an hour ago for a day.
/// </summary>
public sealed class TestCertificates : IDisposable
{
    private const string ServerAuthentication = "1.3.6.1.5.5.7.3.1";
    public const string ClientAuthentication = "1.3.6.1.5.5.7.3.2";

    private readonly DateTimeOffset _notBefore = DateTimeOffset.UtcNow.AddHours(-1);

    public TestCertificates()
    {
        Directory = System.IO.Directory.CreateTempSubdirectory("vpn-tls-").FullName;
        try
        {
            Ca = CreateAuthority("ca", "Vpn Test CA");
            Server = CreateLeaf("server", Ca, "core.test", ServerAuthentication, localNames: true);
            Client = CreateLeaf("client", Ca, "entry.test", ClientAuthentication, localNames: false);
            WrongNameServer = CreateLeaf("wrong-name-server", Ca, "wrong.example", ServerAuthentication, localNames: false, dnsName: "wrong.example");
            ClientAuthOnlyServer = CreateLeaf("client-auth-only-server", Ca, "core.test", ClientAuthentication, localNames: true);
            OtherCa = CreateAuthority("other-ca", "Unrelated Test CA");
            OtherServer = CreateLeaf("other-server", OtherCa, "core.test", ServerAuthentication, localNames: true);
            OtherClient = CreateLeaf("other-client", OtherCa, "entry.test", ClientAuthentication, localNames: false);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>The temporary directory holding every PEM file.</summary>
    public string Directory { get; }

    /// <summary>The CA both sides trust; its <see cref="TestCertificate.CertificateFile"/> is the trust bundle.</summary>
    public TestCertificate Ca { get; }

    /// <summary>Issued by <see cref="Ca"/> for 127.0.0.1 and localhost, serverAuth only.</summary>
    public TestCertificate Server { get; }

    /// <summary>Issued by <see cref="Ca"/>, clientAuth only.</summary>
    public TestCertificate Client { get; }

    /// <summary>Issued by <see cref="Ca"/> for wrong.example only (neither 127.0.0.1 nor localhost), serverAuth.</summary>
    public TestCertificate WrongNameServer { get; }

    /// <summary>Issued by <see cref="Ca"/> for 127.0.0.1 and localhost but with clientAuth as its only extended key usage.</summary>
    public TestCertificate ClientAuthOnlyServer { get; }

    /// <summary>A second CA that nobody trusts.</summary>
    public TestCertificate OtherCa { get; }

    /// <summary>Issued by <see cref="OtherCa"/> for 127.0.0.1 and localhost, serverAuth.</summary>
    public TestCertificate OtherServer { get; }

    /// <summary>Issued by <see cref="OtherCa"/>, clientAuth.</summary>
    public TestCertificate OtherClient { get; }

    /// <summary>Writes <paramref name="content"/> to a file in <see cref="Directory"/>, e.g. a damaged PEM file.</summary>
    public string WriteFile(string name, string content)
    {
        var path = Path.Combine(Directory, name);
        File.WriteAllText(path, content);
        return path;
    }

    public void Dispose()
    {
        foreach (var certificate in new[] { Ca, Server, Client, WrongNameServer, ClientAuthOnlyServer, OtherCa, OtherServer, OtherClient })
        {
            certificate?.Certificate.Dispose();
        }
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
    }

    private TestCertificate CreateAuthority(string name, string commonName)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={commonName}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: true, hasPathLengthConstraint: true, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, critical: true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        var certificate = request.CreateSelfSigned(_notBefore, _notBefore.AddDays(2));
        return Write(name, certificate, key);
    }

    /// <summary>
    /// A client certificate issued by <paramref name="issuer"/> with <paramref name="purpose"/> as its only extended key
    /// usage (none: no usage list at all) and, optionally, an AIA "CA issuers" URL a careless chain builder would fetch.
    /// </summary>
    public TestCertificate CreateClient(string name, TestCertificate issuer, string? purpose, string? caIssuersUrl = null) =>
        CreateLeaf(name, issuer, "entry.test", purpose, localNames: false, caIssuersUrl: caIssuersUrl);

    private TestCertificate CreateLeaf(string name, TestCertificate issuer, string commonName, string? purpose, bool localNames, string? dnsName = null,
        string? caIssuersUrl = null)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={commonName}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: false, hasPathLengthConstraint: false, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, critical: true));
        if (purpose is not null)
        {
            request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(purpose)], critical: false));
        }
        if (caIssuersUrl is not null)
        {
            request.CertificateExtensions.Add(new X509AuthorityInformationAccessExtension(null, [caIssuersUrl]));
        }
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(issuer.Certificate, includeKeyIdentifier: true, includeIssuerAndSerial: false));
        if (localNames || dnsName is not null)
        {
            var names = new SubjectAlternativeNameBuilder();
            if (localNames)
            {
                names.AddIpAddress(IPAddress.Loopback);
                names.AddDnsName("localhost");
            }
            if (dnsName is not null)
            {
                names.AddDnsName(dnsName);
            }
            request.CertificateExtensions.Add(names.Build());
        }
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7F;
        using var issued = request.Create(issuer.Certificate, _notBefore, _notBefore.AddDays(1), serial);
        return Write(name, issued.CopyWithPrivateKey(key), key);
    }

    private TestCertificate Write(string name, X509Certificate2 certificate, ECDsa key)
    {
        var certificateFile = Path.Combine(Directory, name + ".crt");
        var keyFile = Path.Combine(Directory, name + ".key");
        File.WriteAllText(certificateFile, certificate.ExportCertificatePem() + "\n");
        File.WriteAllText(keyFile, key.ExportPkcs8PrivateKeyPem() + "\n");
        return new TestCertificate(certificate, certificateFile, keyFile);
    }
}
