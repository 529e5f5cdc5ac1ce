namespace Vpn.Entry.Tests.Configuration;

/// <summary>APP_SESSION_EVENTS_*: the defaults of the contract, and values out of range refused at start.</summary>
public sealed class SessionEventsOptionsTests
{
    [Fact]
    public void Unset_Defaults()
    {
        var (options, errors) = OptionsLoading.Load(EntryOptions.Load);

        Assert.Empty(errors);
        Assert.Equal(TimeSpan.FromSeconds(15), options.SessionEvents.Heartbeat);
        Assert.Equal(4, options.SessionEvents.MaxPerCustomer);
        Assert.Equal(10_000, options.SessionEvents.MaxStreams);
    }

    [Fact]
    public void Set_Read()
    {
        var (options, errors) = OptionsLoading.Load(EntryOptions.Load, ("APP_SESSION_EVENTS_HEARTBEAT_SECS", "2"),
            ("APP_SESSION_EVENTS_MAX_PER_CUSTOMER", "1"), ("APP_SESSION_EVENTS_MAX_STREAMS", "50"));

        Assert.Empty(errors);
        Assert.Equal(TimeSpan.FromSeconds(2), options.SessionEvents.Heartbeat);
        Assert.Equal(1, options.SessionEvents.MaxPerCustomer);
        Assert.Equal(50, options.SessionEvents.MaxStreams);
    }

    [Theory]
    [InlineData("APP_SESSION_EVENTS_HEARTBEAT_SECS", "0")]
    [InlineData("APP_SESSION_EVENTS_HEARTBEAT_SECS", "301")]
    [InlineData("APP_SESSION_EVENTS_HEARTBEAT_SECS", "soon")]
    [InlineData("APP_SESSION_EVENTS_MAX_PER_CUSTOMER", "0")]
    [InlineData("APP_SESSION_EVENTS_MAX_STREAMS", "0")]
    public void OutOfRange_Refused(string setting, string value)
    {
        var (_, errors) = OptionsLoading.Load(EntryOptions.Load, (setting, value));

        Assert.Contains(errors, e => e.Contains(setting, StringComparison.Ordinal));
    }
}
