using Vpn.Domain.WireGuard;
using Vpn.Harness;

namespace Vpn.Cli.Tests.Client;

public sealed class DeviceKeysTests
{
    [Fact]
    public void PublicKeyOf_RfcVector_IsTheRfc7748Answer()
    {
        // RFC 7748 §6.1: Alice's private key and public key (X25519 with the base point 9).
        var secret = WireGuardKey.FromBytes(Convert.FromHexString("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"));
        Assert.Equal("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a",
            Convert.ToHexStringLower(DeviceKeys.PublicKeyOf(secret).Bytes));
    }

    [Fact]
    public async Task Generate_PrivateKeyIsClampedAndWgPubkeyAgrees()
    {
        Prerequisites.RequireExecutable("wg");
        var keys = DeviceKeys.Generate();
        var secret = WireGuardKey.ParseBase64(keys.PrivateKey);
        Assert.True(secret.Bytes.SequenceEqual(secret.ClampPrivateKey().Bytes), "the private key is clamped as wg genkey's");
        var wg = (await ProcessRunner.RunAsync("wg", ["pubkey"], keys.PrivateKey + "\n")).EnsureSuccess("wg pubkey").StandardOutput.Trim();
        Assert.Equal(wg, keys.PublicKey);
        Assert.DoesNotContain(keys.PrivateKey, keys.ToString(), StringComparison.Ordinal);
    }
}
