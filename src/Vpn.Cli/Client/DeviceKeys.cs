using System.Security.Cryptography;
using Vpn.Domain.WireGuard;

namespace Vpn.Cli.Client;

/// <summary>
/// The device's WireGuard key pair, made here: the private key is random and clamped (RFC 7748 §5, as <c>wg genkey</c>),
/// the public key is X25519 of it and the base point (as <c>wg pubkey</c>; Vpn.Domain's X25519, libcrypto, as core uses). The private
/// key never leaves this machine: only the public key is sent to entry.
/// </summary>
public sealed record DeviceKeys(string PrivateKey, string PublicKey)
{
    public static DeviceKeys Generate()
    {
        var secret = WireGuardKey.FromBytes(RandomNumberGenerator.GetBytes(WireGuardKey.Length)).ClampPrivateKey();
        return new DeviceKeys(secret.ToBase64(), PublicKeyOf(secret).ToBase64());
    }

    public static WireGuardKey PublicKeyOf(WireGuardKey privateKey) => X25519.PublicKeyOf(privateKey);

    // Never the private key in a log, an exception or a debugger's record display.
    public override string ToString() => $"DeviceKeys {{ PublicKey = {PublicKey} }}";
}
