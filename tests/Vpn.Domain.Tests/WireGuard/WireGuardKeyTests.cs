using Vpn.Domain.WireGuard;

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
}
