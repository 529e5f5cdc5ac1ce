using System.Security.Cryptography.X509Certificates;

namespace Vpn.ServiceDefaults;

/// <summary>
/// PEM files of the entry↔core TLS (server certificate and key, client certificate and key, the CA each side trusts)
/// and the one check both sides make of the other's certificate: it chains to that CA, and only to it.
/// </summary>
public static class TlsFiles
{
    /// <summary>A certificate with its private key from PEM files; the problem (never the content) when they do not load.</summary>
    public static X509Certificate2? LoadCertificate(string certificateFile, string keyFile, string setting, List<string> problems)
    {
        ArgumentNullException.ThrowIfNull(problems);
        try
        {
            var certificate = X509Certificate2.CreateFromPemFile(certificateFile, keyFile);
            if (!certificate.HasPrivateKey)
            {
                problems.Add($"{setting}: the key does not belong to the certificate.");
                return null;
            }
            return certificate;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException or ArgumentException)
        {
            problems.Add($"{setting}: cannot load the PEM certificate and key ({e.GetType().Name}).");
            return null;
        }
    }

    /// <summary>
    /// The certificate and key named by the settings <paramref name="certificateSetting"/> and <paramref name="keySetting"/>
    /// (PEM files), fit for <paramref name="purposeOid"/> now; null when both are unset, or when they do not load or do not
    /// fit (a problem added).
    /// </summary>
    public static X509Certificate2? LoadCertificate(Microsoft.Extensions.Configuration.IConfiguration configuration, string certificateSetting,
        string keySetting, string purposeOid, List<string> problems)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        ArgumentNullException.ThrowIfNull(problems);
        var certificateFile = configuration[certificateSetting];
        var keyFile = configuration[keySetting];
        if (string.IsNullOrEmpty(certificateFile) != string.IsNullOrEmpty(keyFile))
        {
            problems.Add($"{certificateSetting} and {keySetting} go together.");
            return null;
        }
        if (string.IsNullOrEmpty(certificateFile))
        {
            return null;
        }
        var certificate = LoadCertificate(certificateFile, keyFile!, $"{certificateSetting}/{keySetting}", problems);
        // Options are read before the host, and the TimeProvider it registers, exist.
        if (certificate is not null && Unusable(certificate, purposeOid, TimeProvider.System) is { } reason)
        {
            problems.Add($"{certificateSetting}: {reason}");
        }
        return certificate;
    }

    /// <summary>The certificates of a PEM bundle (one or more CA certificates).</summary>
    public static X509Certificate2Collection? LoadAuthorities(string file, string setting, List<string> problems)
    {
        ArgumentNullException.ThrowIfNull(problems);
        try
        {
            var authorities = new X509Certificate2Collection();
            authorities.ImportFromPemFile(file);
            if (authorities.Count == 0)
            {
                problems.Add($"{setting}: no certificate in the file.");
                return null;
            }
            return authorities;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException or ArgumentException)
        {
            problems.Add($"{setting}: cannot load the PEM certificates ({e.GetType().Name}).");
            return null;
        }
    }

    /// <summary>
    /// A chain policy that trusts only <paramref name="authorities"/>, never fetches anything (no issuer downloads from
    /// the peer's AIA URLs, no revocation lists: a handshake must not make this process call out to an address the peer
    /// chose, nor wait on it) and, with <paramref name="purposeOid"/>, demands that use.
    /// </summary>
    public static X509ChainPolicy ChainPolicy(X509Certificate2Collection authorities, string? purposeOid)
    {
        ArgumentNullException.ThrowIfNull(authorities);
        var policy = new X509ChainPolicy
        {
            TrustMode = X509ChainTrustMode.CustomRootTrust,
            // Private CAs of this deployment publish no revocation lists; rotation is by short lifetimes.
            RevocationMode = X509RevocationMode.NoCheck,
            DisableCertificateDownloads = true,
            UrlRetrievalTimeout = TimeSpan.FromMilliseconds(1),
        };
        policy.CustomTrustStore.AddRange(authorities);
        if (purposeOid is not null)
        {
            policy.ApplicationPolicy.Add(new System.Security.Cryptography.Oid(purposeOid));
        }
        return policy;
    }

    /// <summary>
    /// Whether <paramref name="certificate"/> chains to one of <paramref name="authorities"/> (the machine's trust store is
    /// not consulted, nothing is downloaded), is within its validity period and, when <paramref name="purposeOid"/> is
    /// given, names that use explicitly (1.3.6.1.5.5.7.3.1 server, 1.3.6.1.5.5.7.3.2 client authentication): a certificate
    /// without an extended key usage list, valid for anything to a chain builder, is refused. Intermediates the peer
    /// sent may be passed in <paramref name="intermediates"/>.
    /// </summary>
    public static bool ChainsTo(X509Certificate2 certificate, X509Certificate2Collection authorities, string? purposeOid,
        X509Certificate2Collection? intermediates = null)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        ArgumentNullException.ThrowIfNull(authorities);
        if (purposeOid is not null && !HasUsage(certificate, purposeOid))
        {
            return false;
        }
        using var chain = new X509Chain { ChainPolicy = ChainPolicy(authorities, purposeOid) };
        if (intermediates is not null)
        {
            chain.ChainPolicy.ExtraStore.AddRange(intermediates);
        }
        return chain.Build(certificate);
    }

    /// <summary>As <see cref="ChainsTo(X509Certificate2, X509Certificate2Collection, string?, X509Certificate2Collection?)"/>, with the intermediates of the chain the TLS layer built from what the peer sent.</summary>
    public static bool ChainsTo(X509Certificate2 certificate, X509Certificate2Collection authorities, string? purposeOid, X509Chain? presented) =>
        ChainsTo(certificate, authorities, purposeOid,
            presented is null ? null : new X509Certificate2Collection(presented.ChainElements.Select(e => e.Certificate).Skip(1).ToArray()));

    private static bool HasUsage(X509Certificate2 certificate, string purposeOid) =>
        certificate.Extensions.OfType<X509EnhancedKeyUsageExtension>()
            .Any(e => e.EnhancedKeyUsages.Cast<System.Security.Cryptography.Oid>().Any(o => o.Value == purposeOid));

    /// <summary>Why a certificate of ours cannot serve <paramref name="purposeOid"/> now (expired, not yet valid, wrong extended key usage), or null.</summary>
    public static string? Unusable(X509Certificate2 certificate, string purposeOid, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        ArgumentNullException.ThrowIfNull(time);
        var now = time.GetUtcNow().UtcDateTime;
        if (certificate.NotAfter.ToUniversalTime() < now)
        {
            return "the certificate has expired.";
        }
        if (certificate.NotBefore.ToUniversalTime() > now)
        {
            return "the certificate is not valid yet.";
        }
        var usages = certificate.Extensions.OfType<X509EnhancedKeyUsageExtension>().FirstOrDefault();
        if (usages is not null && !usages.EnhancedKeyUsages.Cast<System.Security.Cryptography.Oid>().Any(o => o.Value == purposeOid))
        {
            return $"the certificate's extended key usage does not allow {(purposeOid == ServerAuthentication ? "server" : "client")} authentication.";
        }
        return null;
    }

    public const string ServerAuthentication = "1.3.6.1.5.5.7.3.1";

    public const string ClientAuthentication = "1.3.6.1.5.5.7.3.2";
}
