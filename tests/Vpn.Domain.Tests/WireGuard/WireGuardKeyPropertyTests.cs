// Belongs in tests/Vpn.Domain.Tests/WireGuard/ (mirroring src/Vpn.Domain/WireGuard); it sits here only because this
// change was limited to the Addressing, Nodes and Subscriptions folders. Moving the file needs no other edit.
namespace Vpn.Domain.Tests.WireGuard;

public class WireGuardKeyPropertyTests
{
    private const string Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    private static readonly Gen<byte[]> KeyBytes = Gen.Byte.Array[WireGuardKey.Length];

    [Fact]
    public void TryParseBase64_RandomBytes_RoundTrips()
    {
        KeyBytes.Sample(bytes =>
        {
            var key = WireGuardKey.FromBytes(bytes);
            var text = key.ToBase64();

            Assert.Equal(Convert.ToBase64String(bytes), text);
            Assert.Equal(44, text.Length);
            Assert.True(WireGuardKey.TryParseBase64(text, out var parsed));
            Assert.Equal(key, parsed);
            Assert.Equal(bytes, parsed.Bytes.ToArray());
            Assert.Equal(key.GetHashCode(), parsed.GetHashCode());
            Assert.Equal(text, parsed.ToString());
        }, iter: 1000);
    }

    [Fact]
    public void TryParseHex_RandomBytes_RoundTrips()
    {
        KeyBytes.Sample(bytes =>
        {
            var key = WireGuardKey.FromBytes(bytes);
            var hex = key.ToHex();

            Assert.Equal(64, hex.Length);
            Assert.Equal(Convert.ToHexString(bytes).ToLowerInvariant(), hex);
            Assert.True(WireGuardKey.TryParseHex(hex, out var parsed));
            Assert.Equal(key, parsed);
            Assert.True(WireGuardKey.TryParseBase64(parsed.ToBase64(), out var viaBase64));
            Assert.Equal(hex, viaBase64.ToHex());
        }, iter: 1000);
    }

    [Fact]
    public void TryParseBase64_LastCharacterLowBitsSet_ReturnsFalse()
    {
        // 32 bytes use 256 of the 258 bits in 43 base64 characters: the last character's two low bits must be zero.
        Gen.Select(KeyBytes, Gen.Int[1, 3]).Sample((bytes, stray) =>
        {
            var canonical = Convert.ToBase64String(bytes);
            var value = Alphabet.IndexOf(canonical[42], StringComparison.Ordinal);
            Assert.Equal(0, value & 3);
            var mutated = string.Concat(canonical.AsSpan(0, 42), Alphabet[value | stray].ToString(), "=");

            // The framework decoder accepts the stray bits and yields the same bytes; the key parser must not.
            Assert.Equal(bytes, Convert.FromBase64String(mutated));
            Assert.False(WireGuardKey.TryParseBase64(mutated, out var key), mutated);
            Assert.True(key.IsZero);
            Assert.Throws<FormatException>(() => WireGuardKey.ParseBase64(mutated));
        }, iter: 1000);
    }

    [Fact]
    public void TryParseBase64_UrlSafeOrWrongLength_ReturnsFalse()
    {
        Gen.Select(KeyBytes, Gen.Int[0, 43]).Sample((bytes, position) =>
        {
            var canonical = Convert.ToBase64String(bytes);

            Assert.False(WireGuardKey.TryParseBase64(canonical.Replace('+', '-').Replace('/', '_') is var url && url != canonical ? url : "x", out _));
            Assert.False(WireGuardKey.TryParseBase64(canonical.Remove(position, 1), out _));
            Assert.False(WireGuardKey.TryParseBase64(canonical.Insert(position, "A"), out _));
            Assert.False(WireGuardKey.TryParseBase64(canonical.Insert(position, " "), out _));
        }, iter: 1000);
    }

    [Fact]
    public void TryParseHex_NonHexCharacterOrWrongLength_ReturnsFalse()
    {
        Gen.Select(KeyBytes, Gen.Int[0, 63], Gen.Char["ghxzGZ -+=_:"]).Sample((bytes, position, bad) =>
        {
            var hex = Convert.ToHexStringLower(bytes);

            Assert.False(WireGuardKey.TryParseHex(string.Concat(hex.AsSpan(0, position), bad.ToString(), hex.AsSpan(position + 1)), out _));
            Assert.False(WireGuardKey.TryParseHex(hex.Remove(position, 1), out _));
            Assert.False(WireGuardKey.TryParseHex(hex + "0", out _));
            Assert.False(WireGuardKey.TryParseHex(hex + "00", out _));
            Assert.False(WireGuardKey.TryParseHex(hex[2..], out _));
        }, iter: 1000);
    }

    [Fact]
    public void TryParse_Null_ReturnsFalse()
    {
        Assert.False(WireGuardKey.TryParseBase64(null, out _));
        Assert.False(WireGuardKey.TryParseHex(null, out _));
    }

    [Fact]
    public void FromBytes_WrongLength_Throws()
    {
        Assert.Throws<ArgumentException>(() => WireGuardKey.FromBytes(new byte[31]));
        Assert.Throws<ArgumentException>(() => WireGuardKey.FromBytes(new byte[33]));
    }
}
