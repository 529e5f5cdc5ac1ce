using Vpn.Core.Configuration;
using Vpn.TestSupport;

namespace Vpn.Core.Tests.Reconciliation;

public class CoreOptionsReconcileTests
{
    private static (CoreOptions Options, IReadOnlyList<string> Errors) Load(params (string Key, string Value)[] settings) =>
        OptionsLoading.Load(CoreOptions.Load, settings);

    [Theory]
    [InlineData("unix:/run/vpn/entry.sock")]
    [InlineData("http://127.0.0.1:8080")]
    [InlineData("https://entry.internal")]
    public void Load_EntryUrl_AcceptsHttpAndUnixSocket(string url)
    {
        var (options, errors) = Load(("CORE_ENTRY_URL", url), ("CORE_NODE_ID", Guid.NewGuid().ToString()), ("ADMIN_API_TOKEN", "t"));

        Assert.Empty(errors);
        Assert.True(options.ReconcileEnabled);
    }

    [Theory]
    [InlineData("unix:entry.sock")]
    [InlineData("unix:/")]
    [InlineData("ftp://entry")]
    [InlineData("/run/entry.sock")]
    [InlineData("http://entry?x=1")]
    public void Load_EntryUrl_RejectsOtherForms(string url)
    {
        var (_, errors) = Load(("CORE_ENTRY_URL", url), ("CORE_NODE_ID", Guid.NewGuid().ToString()), ("ADMIN_API_TOKEN", "t"));

        Assert.Contains(errors, e => e.StartsWith("CORE_ENTRY_URL must be", StringComparison.Ordinal));
    }

    [Fact]
    public void Load_Nothing_ReconcileOffWithDefaults()
    {
        var (options, errors) = Load();

        Assert.Empty(errors);
        Assert.False(options.ReconcileEnabled);
        Assert.Equal((TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(120), TimeSpan.FromSeconds(180)),
            (options.ReconcileInterval, options.ReconcileGrace, options.AddressQuarantine));
    }

    [Fact]
    public void Load_ReconcileSettings_Read()
    {
        var (options, errors) = Load(("CORE_RECONCILE_SECS", "5"), ("CORE_RECONCILE_GRACE_SECS", "60"), ("CORE_ADDRESS_QUARANTINE_SECS", "0"));

        Assert.Empty(errors);
        Assert.Equal((TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(60), TimeSpan.Zero),
            (options.ReconcileInterval, options.ReconcileGrace, options.AddressQuarantine));
    }

    [Fact]
    public void Load_BadReconcileSettings_ReportsEachAtOnce()
    {
        var (_, errors) = Load(("CORE_RECONCILE_SECS", "0"), ("CORE_RECONCILE_GRACE_SECS", "x"), ("CORE_ADDRESS_QUARANTINE_SECS", "-1"));

        Assert.Equal(3, errors.Count(e => e.Contains("must be an integer", StringComparison.Ordinal)));
    }

    [Fact]
    public void Load_ShortQuarantineInProduction_Refused()
    {
        var (_, errors) = Load(("APP_ENV", "production"), ("CORE_ADDRESS_QUARANTINE_SECS", "60"));

        Assert.Contains(errors, e => e.StartsWith("CORE_ADDRESS_QUARANTINE_SECS below 180", StringComparison.Ordinal));
    }
}
