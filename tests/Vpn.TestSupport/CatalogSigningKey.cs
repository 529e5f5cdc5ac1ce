using Org.BouncyCastle.Crypto.Parameters;
using Org.BouncyCastle.Pkcs;
using Org.BouncyCastle.Security;

namespace Vpn.TestSupport;

/// <summary>
/// A fresh Ed25519 key for the signed server list (APP_CATALOG_SIGNING_KEY_FILE), as <c>openssl genpkey -algorithm
/// ed25519</c> writes one (PKCS#8 PEM), and its raw public key as a client pins it.
/// </summary>
public sealed class CatalogSigningKey
{
    public CatalogSigningKey()
    {
        Key = new Ed25519PrivateKeyParameters(new SecureRandom());
        PublicKey = Key.GeneratePublicKey().GetEncoded();
        Pem = new string(System.Security.Cryptography.PemEncoding.Write("PRIVATE KEY", PrivateKeyInfoFactory.CreatePrivateKeyInfo(Key).GetEncoded()));
    }

    public Ed25519PrivateKeyParameters Key { get; }

    public byte[] PublicKey { get; }

    public string Pem { get; }
}
