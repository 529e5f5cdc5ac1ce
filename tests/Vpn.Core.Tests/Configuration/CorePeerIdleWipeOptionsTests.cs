namespace Vpn.Core.Tests.Configuration;

public class CorePeerIdleWipeOptionsTests
{
    [Fact]
    public void Load_Unset_180Seconds()
    {
        var (options, errors) = CoreSettings.Load();

        Assert.Empty(errors);
        Assert.Equal(TimeSpan.FromSeconds(180), options.PeerIdleWipe);
    }

    [Theory]
    [InlineData("0", 0)]
    [InlineData("1", 1)]
    [InlineData("600", 600)]
    [InlineData("86400", 86_400)]
    public void Load_InRange_Read(string value, int seconds)
    {
        var (options, errors) = CoreSettings.Load(("CORE_PEER_IDLE_WIPE_SECS", value));

        Assert.Empty(errors);
        Assert.Equal(TimeSpan.FromSeconds(seconds), options.PeerIdleWipe);
    }

    [Theory]
    [InlineData("-1")]
    [InlineData("86401")]
    [InlineData("3m")]
    [InlineData("1.5")]
    [InlineData(" 180")]
    public void Load_OutOfRangeOrNotANumber_ReportedAndDefaultKept(string value)
    {
        var (options, errors) = CoreSettings.Load(("CORE_PEER_IDLE_WIPE_SECS", value));

        Assert.Equal("CORE_PEER_IDLE_WIPE_SECS must be an integer between 0 and 86400.", Assert.Single(errors));
        Assert.Equal(TimeSpan.FromSeconds(180), options.PeerIdleWipe);
    }

    [Theory]
    [InlineData("1")]
    [InlineData("179")]
    public void Load_ShortWindowInProduction_Refused(string value)
    {
        var (_, errors) = CoreSettings.Load(("APP_ENV", "production"), ("CORE_PEER_IDLE_WIPE_SECS", value));

        Assert.Contains(errors, e => e.StartsWith("CORE_PEER_IDLE_WIPE_SECS between 1 and 179 is refused in production", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("0")]
    [InlineData("180")]
    [InlineData("900")]
    public void Load_OffOrAtLeast180InProduction_NotAProblem(string value)
    {
        var (_, errors) = CoreSettings.Load(("APP_ENV", "production"), ("CORE_PEER_IDLE_WIPE_SECS", value));

        Assert.DoesNotContain(errors, e => e.Contains("CORE_PEER_IDLE_WIPE_SECS", StringComparison.Ordinal));
    }
}
