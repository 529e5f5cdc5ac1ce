using Org.BouncyCastle.Crypto.Parameters;
using Org.BouncyCastle.Security;
using Vpn.ServiceDefaults;

namespace Vpn.Entry.Configuration;

/// <summary>
/// The signed public server list (GET /v1/locations): the Ed25519 key that signs it (APP_CATALOG_SIGNING_KEY_FILE, a
/// PKCS#8 PEM as <c>openssl genpkey -algorithm ed25519</c> writes it; or APP_CATALOG_SIGNING_KEY with the PEM itself),
/// how long a signed list is valid (APP_CATALOG_VALIDITY_SECS, default 3600) and how long one signed list is served
/// before it is made again from the node registry (APP_CATALOG_CACHE_SECS, default 30; the ETag changes only then).
/// Without a key, development signs with a key made at start (its public key is logged) and production answers 503
/// catalog_not_configured.
/// </summary>
public sealed class LocationCatalogOptions
{
    public Ed25519PrivateKeyParameters? SigningKey { get; init; }

    public TimeSpan Validity { get; init; } = TimeSpan.FromHours(1);

    public TimeSpan CacheFor { get; init; } = TimeSpan.FromSeconds(30);

    public static LocationCatalogOptions Load(IConfiguration configuration, List<string> problems)
    {
        ArgumentNullException.ThrowIfNull(problems);
        var validity = Settings.Number(configuration, "APP_CATALOG_VALIDITY_SECS", 3600, 60, 7 * 86_400, problems);
        var cache = Settings.Number(configuration, "APP_CATALOG_CACHE_SECS", 30, 1, 3600, problems);
        if (cache * 2 > validity)
        {
            problems.Add("APP_CATALOG_CACHE_SECS must be at most half of APP_CATALOG_VALIDITY_SECS (a cached list must stay valid for clients).");
        }
        return new LocationCatalogOptions
        {
            SigningKey = LoadKey(Settings.Secret(configuration, "APP_CATALOG_SIGNING_KEY", problems), problems),
            Validity = TimeSpan.FromSeconds(validity),
            CacheFor = TimeSpan.FromSeconds(cache),
        };
    }

    private static Ed25519PrivateKeyParameters? LoadKey(string? pem, List<string> problems)
    {
        if (pem is null)
        {
            return null;
        }
        const string Expected = "APP_CATALOG_SIGNING_KEY must be an Ed25519 private key in PKCS#8 PEM (openssl genpkey -algorithm ed25519).";
        try
        {
            var fields = System.Security.Cryptography.PemEncoding.Find(pem);
            if (pem[fields.Label] is not "PRIVATE KEY")
            {
                problems.Add(Expected);
                return null;
            }
            if (PrivateKeyFactory.CreateKey(Convert.FromBase64String(pem[fields.Base64Data])) is Ed25519PrivateKeyParameters key)
            {
                return key;
            }
        }
        catch (Exception e) when (e is ArgumentException or FormatException or InvalidOperationException or IOException)
        {
            // The exception could quote key material: say only what is expected.
        }
        problems.Add(Expected);
        return null;
    }
}
