using System.Runtime.InteropServices;

namespace Vpn.Domain.WireGuard;

/// <summary>
/// A WireGuard public key from its private key (X25519 of the clamped scalar and the base point, as <c>wg pubkey</c>),
/// computed by OpenSSL's libcrypto: the .NET runtime on Linux already depends on it, and .NET 10 has no X25519 of its own.
/// No curve arithmetic of ours. Core derives its node's public key with it; vpnctl's reference client, a device's.
/// </summary>
public static unsafe partial class X25519
{
    // OpenSSL 3 (Debian bookworm and later, the aspnet:10.0 image). EVP_PKEY_X25519 = NID_X25519.
    private const string LibCrypto = "libcrypto.so.3";
    private const int EvpPkeyX25519 = 1034;

    public static WireGuardKey PublicKeyOf(WireGuardKey privateKey)
    {
        // OpenSSL clamps the scalar itself (RFC 7748 §5), as WireGuard does.
        var secret = privateKey.Bytes;
        nint key;
        fixed (byte* raw = secret)
        {
            key = NewRawPrivateKey(EvpPkeyX25519, 0, raw, (nuint)WireGuardKey.Length);
        }
        if (key == 0)
        {
            throw new InvalidOperationException("OpenSSL refused the X25519 private key.");
        }
        try
        {
            Span<byte> publicKey = stackalloc byte[WireGuardKey.Length];
            var length = (nuint)publicKey.Length;
            fixed (byte* output = publicKey)
            {
                if (GetRawPublicKey(key, output, &length) != 1 || length != WireGuardKey.Length)
                {
                    throw new InvalidOperationException("OpenSSL did not derive the X25519 public key.");
                }
            }
            return WireGuardKey.FromBytes(publicKey);
        }
        finally
        {
            Free(key);
        }
    }

    [LibraryImport(LibCrypto, EntryPoint = "EVP_PKEY_new_raw_private_key")]
    private static partial nint NewRawPrivateKey(int type, nint engine, byte* key, nuint length);

    [LibraryImport(LibCrypto, EntryPoint = "EVP_PKEY_get_raw_public_key")]
    private static partial int GetRawPublicKey(nint key, byte* publicKey, nuint* length);

    [LibraryImport(LibCrypto, EntryPoint = "EVP_PKEY_free")]
    private static partial void Free(nint key);
}
