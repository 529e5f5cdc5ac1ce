namespace Vpn.Domain.Tests;

public class WireGuardKeyTests
{
    [Fact]
    public void TryParseBase64_RoundTrip_ReturnsSameKey()
    {
        var key = WireGuardKey.Generate();
        Assert.True(WireGuardKey.TryParseBase64(key.ToBase64(), out var parsed));
        Assert.Equal(key, parsed);
        Assert.Equal(64, parsed.ToHex().Length);
    }

    [Theory]
    [InlineData("")]
    [InlineData("abc")]
    [InlineData("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")]
    [InlineData("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==")]
    [InlineData("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=")]
    [InlineData("-_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")]
    [InlineData(" AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")]
    public void TryParseBase64_Malformed_ReturnsFalse(string text)
    {
        Assert.False(WireGuardKey.TryParseBase64(text, out _));
    }

    [Fact]
    public void IsZero_AllZeroKey_IsTrue()
    {
        Assert.True(WireGuardKey.TryParseBase64(Convert.ToBase64String(new byte[32]), out var key));
        Assert.True(key.IsZero);
        Assert.False(WireGuardKey.Generate().IsZero);
    }

    [Fact]
    public void ClampPrivateKey_AnyKey_ClearsLowBitsAndBit255_SetsBit254_AsWireGuardDoes()
    {
        var ones = WireGuardKey.FromBytes(Enumerable.Repeat((byte)0xff, WireGuardKey.Length).ToArray());
        var zeros = WireGuardKey.FromBytes(new byte[WireGuardKey.Length]);

        Assert.Equal("f8" + new string('f', 60) + "7f", ones.ClampPrivateKey().ToHex());
        Assert.Equal(new string('0', 62) + "40", zeros.ClampPrivateKey().ToHex());
    }

    [Fact]
    public void ClampPrivateKey_Twice_SameAsOnce_AndLeavesTheKeyItself()
    {
        var key = WireGuardKey.Generate();
        var original = key.ToHex();

        var clamped = key.ClampPrivateKey();

        Assert.Equal(clamped, clamped.ClampPrivateKey());
        Assert.Equal(original, key.ToHex());
    }
}
