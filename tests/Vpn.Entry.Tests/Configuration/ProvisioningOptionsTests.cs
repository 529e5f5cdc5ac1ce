namespace Vpn.Entry.Tests.Configuration;

/// <summary>APP_PROVISIONING_TIMEOUT_SECS and APP_PROVISIONING_SWEEP_SECS: defaults, ranges, and the bound against the core deadline.</summary>
public sealed class ProvisioningOptionsTests
{
    private static (EntryOptions Options, IReadOnlyList<string> Errors) Load(params (string Key, string Value)[] settings) =>
        OptionsLoading.Load(EntryOptions.Load, settings);

    [Fact]
    public void ProvisioningSettings_Unset_TwoMinutesEveryThirtySeconds()
    {
        var (options, errors) = Load();

        Assert.Empty(errors);
        Assert.Equal(TimeSpan.FromMinutes(2), options.ProvisioningTimeout);
        Assert.Equal(TimeSpan.FromSeconds(30), options.ProvisioningSweepInterval);
    }

    [Fact]
    public void ProvisioningSettings_Set_Used()
    {
        var (options, errors) = Load(("APP_PROVISIONING_TIMEOUT_SECS", "20"), ("APP_PROVISIONING_SWEEP_SECS", "5"));

        Assert.Empty(errors);
        Assert.Equal(TimeSpan.FromSeconds(20), options.ProvisioningTimeout);
        Assert.Equal(TimeSpan.FromSeconds(5), options.ProvisioningSweepInterval);
    }

    [Theory]
    [InlineData("APP_PROVISIONING_TIMEOUT_SECS", "0")]
    [InlineData("APP_PROVISIONING_TIMEOUT_SECS", "-5")]
    [InlineData("APP_PROVISIONING_TIMEOUT_SECS", "two minutes")]
    [InlineData("APP_PROVISIONING_SWEEP_SECS", "0")]
    [InlineData("APP_PROVISIONING_SWEEP_SECS", "3601")]
    [InlineData("APP_PROVISIONING_SWEEP_SECS", "1.5")]
    public void ProvisioningSettings_OutOfRange_RefusedNamingTheSetting(string setting, string value)
    {
        var (_, errors) = Load((setting, value));

        Assert.Contains(errors, e => e.Contains(setting, StringComparison.Ordinal));
    }

    [Fact]
    public void ProvisioningTimeout_ShorterThanTwiceCoreDeadline_Refused()
    {
        // A start may wait APP_CORE_TIMEOUT_MS for core; a sweep in that window would fail a start that is still running.
        var (_, errors) = Load(("APP_PROVISIONING_TIMEOUT_SECS", "15"), ("APP_CORE_TIMEOUT_MS", "10000"));

        var error = Assert.Single(errors);
        Assert.Contains("APP_PROVISIONING_TIMEOUT_SECS", error, StringComparison.Ordinal);
        Assert.Contains("APP_CORE_TIMEOUT_MS", error, StringComparison.Ordinal);
        Assert.Empty(Load(("APP_PROVISIONING_TIMEOUT_SECS", "20"), ("APP_CORE_TIMEOUT_MS", "10000")).Errors);
    }
}
