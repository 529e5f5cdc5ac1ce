namespace Vpn.Core.Tests.WireGuard;

/// <summary>The node's public key from its private key: RFC 7748's vectors and the real <c>wg pubkey</c>.</summary>
public class X25519Tests
{
    [Theory]
    // RFC 7748 §6.1: Alice's and Bob's key pairs (private keys unclamped, as WireGuard stores them).
    [InlineData("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a", "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")]
    [InlineData("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb", "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")]
    public void PublicKeyOf_Rfc7748Vector_MatchesTheRfc(string privateHex, string publicHex)
    {
        Assert.True(WireGuardKey.TryParseHex(privateHex, out var privateKey));
        Assert.Equal(publicHex, X25519.PublicKeyOf(privateKey).ToHex());
    }

    [Fact]
    public async Task PublicKeyOf_RandomPrivateKeys_MatchesWgPubkey()
    {
        Prerequisites.RequireExecutable("wg");
        for (var i = 0; i < 8; i++)
        {
            // Raw random bytes, bit 255 and the low bits included: both sides must clamp alike.
            var privateKey = WireGuardKey.FromBytes(System.Security.Cryptography.RandomNumberGenerator.GetBytes(WireGuardKey.Length));
            var result = await ProcessRunner.RunAsync("wg", ["pubkey"], privateKey.ToBase64() + "\n");
            Assert.Equal(0, result.ExitCode);
            var derived = X25519.PublicKeyOf(privateKey);
            Assert.Equal(result.StandardOutput.Trim(), derived.ToBase64());
            Assert.True(derived.IsAcceptablePublicKey);
        }
    }
}
