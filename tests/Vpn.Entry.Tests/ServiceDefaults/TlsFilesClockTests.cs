using Vpn.ServiceDefaults;

namespace Vpn.Entry.Tests.ServiceDefaults;

/// <summary>Whether a certificate of ours is usable is judged by the clock it is given.</summary>
public sealed class TlsFilesClockTests : IDisposable
{
    private readonly TestCertificates _pki = new();

    public void Dispose() => _pki.Dispose();

    [Fact]
    public void Unusable_ClientCertificate_ByTheGivenClock()
    {
        var certificate = _pki.Client.Certificate;
        var notBefore = new DateTimeOffset(certificate.NotBefore.ToUniversalTime());
        var notAfter = new DateTimeOffset(certificate.NotAfter.ToUniversalTime());
        var valid = new FakeTimeProvider(notBefore.AddMinutes(1));

        Assert.Null(TlsFiles.Unusable(certificate, TlsFiles.ClientAuthentication, valid));
        Assert.Equal("the certificate's extended key usage does not allow server authentication.",
            TlsFiles.Unusable(certificate, TlsFiles.ServerAuthentication, valid));
        Assert.Equal("the certificate has expired.",
            TlsFiles.Unusable(certificate, TlsFiles.ClientAuthentication, new FakeTimeProvider(notAfter.AddSeconds(1))));
        Assert.Equal("the certificate is not valid yet.",
            TlsFiles.Unusable(certificate, TlsFiles.ClientAuthentication, new FakeTimeProvider(notBefore.AddSeconds(-1))));
    }
}
