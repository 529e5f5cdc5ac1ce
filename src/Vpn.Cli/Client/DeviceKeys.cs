using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Vpn.Domain.WireGuard;

namespace Vpn.Cli.Client;

/// <summary>
/// The device's WireGuard key pair, made here: the private key is random and clamped (RFC 7748 §5, as <c>wg genkey</c>),
/// the public key is X25519 of it and the base point (as <c>wg pubkey</c>), computed by OpenSSL's libcrypto, which the
/// .NET runtime on Linux already loads (.NET 10 has no X25519; the same call as core's WireGuard/X25519.cs). The private
/// key never leaves this machine: only the public key is sent to entry.
/// </summary>
public sealed record DeviceKeys(string PrivateKey, string PublicKey)
{
    public static DeviceKeys Generate()
    {
        var secret = WireGuardKey.FromBytes(RandomNumberGenerator.GetBytes(WireGuardKey.Length)).ClampPrivateKey();
        return new DeviceKeys(secret.ToBase64(), PublicKeyOf(secret).ToBase64());
    }

    public static unsafe WireGuardKey PublicKeyOf(WireGuardKey privateKey)
    {
        var secret = privateKey.Bytes;
        nint key;
        fixed (byte* raw = secret)
        {
            key = NativeMethods.NewRawPrivateKey(NativeMethods.EvpPkeyX25519, 0, raw, (nuint)WireGuardKey.Length);
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
                if (NativeMethods.GetRawPublicKey(key, output, &length) != 1 || length != WireGuardKey.Length)
                {
                    throw new InvalidOperationException("OpenSSL did not derive the X25519 public key.");
                }
            }
            return WireGuardKey.FromBytes(publicKey);
        }
        finally
        {
            NativeMethods.Free(key);
        }
    }

    // Never the private key in a log, an exception or a debugger's record display.
    public override string ToString() => $"DeviceKeys {{ PublicKey = {PublicKey} }}";
}

internal static unsafe partial class NativeMethods
{
    // OpenSSL 3 (Debian bookworm and later). EVP_PKEY_X25519 = NID_X25519.
    private const string LibCrypto = "libcrypto.so.3";
    public const int EvpPkeyX25519 = 1034;

    [LibraryImport(LibCrypto, EntryPoint = "EVP_PKEY_new_raw_private_key")]
    public static partial nint NewRawPrivateKey(int type, nint engine, byte* key, nuint length);

    [LibraryImport(LibCrypto, EntryPoint = "EVP_PKEY_get_raw_public_key")]
    public static partial int GetRawPublicKey(nint key, byte* publicKey, nuint* length);

    [LibraryImport(LibCrypto, EntryPoint = "EVP_PKEY_free")]
    public static partial void Free(nint key);
}
