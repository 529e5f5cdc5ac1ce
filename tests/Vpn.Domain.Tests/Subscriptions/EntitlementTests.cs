using Vpn.Domain.Subscriptions;

namespace Vpn.Domain.Tests.Subscriptions;

public class EntitlementTests
{
    /// <summary>Known statuses, their case variants, near-misses and arbitrary text.</summary>
    private static readonly Gen<string> Status = Gen.Frequency(
        (4, Gen.OneOf(SubscriptionStatus.All.ToArray())),
        (2, Gen.OneOf("Active", "ACTIVE", "Trialing", "TRIALING", "active ", " active", "trial", "activ", "", "past-due", "cancelled")),
        (2, Gen.String));

    private static readonly Gen<string> RegionName = Gen.Char["abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-"].Array[1, 12].Select(c => new string(c));

    private static readonly Gen<string[]> Regions = RegionName.Array[0, 6];

    private static string FlipCase(string text, int pattern) =>
        string.Concat(text.Select((c, i) => ((pattern >> (i % 31)) & 1) == 1 ? char.ToUpperInvariant(c) : char.ToLowerInvariant(c)));

    [Fact]
    public void IsEntitled_AnyStatus_TrueOnlyForActiveAndTrialing()
    {
        Gen.Select(Status, Gen.Int[0, 10], Regions).Sample((status, maxDevices, regions) =>
        {
            var expected = status is "active" or "trialing";
            Assert.Equal(expected, SubscriptionStatus.IsEntitled(status));
            Assert.Equal(expected, new Entitlement("plan", status, maxDevices, regions).IsEntitled);
        }, iter: 1000);
    }

    [Theory]
    [InlineData("active", true)]
    [InlineData("trialing", true)]
    [InlineData("past_due", false)]
    [InlineData("canceled", false)]
    [InlineData("expired", false)]
    [InlineData("Active", false)]
    [InlineData("TRIALING", false)]
    [InlineData("", false)]
    public void IsEntitled_Status_MatchesContract(string status, bool entitled)
    {
        Assert.Equal(entitled, SubscriptionStatus.IsEntitled(status));
        Assert.Equal(entitled, new Entitlement("dev", status, 5, ["local"]).IsEntitled);
    }

    [Fact]
    public void IsKnown_AnyStatus_TrueOnlyForTheFiveStatuses()
    {
        Status.Sample(status =>
            Assert.Equal(status is "trialing" or "active" or "past_due" or "canceled" or "expired", SubscriptionStatus.IsKnown(status)));
        Assert.False(SubscriptionStatus.IsKnown(null));
        Assert.Equal(5, SubscriptionStatus.All.Count);
    }

    [Fact]
    public void AllowsRegion_AllowedRegionInAnyCase_ReturnsTrue()
    {
        Gen.Select(Regions.Where(r => r.Length > 0), Gen.Int[0, 5], Gen.Int).Sample((regions, index, pattern) =>
        {
            var entitlement = new Entitlement("plan", SubscriptionStatus.Active, 5, regions);
            var region = regions[index % regions.Length];

            Assert.True(entitlement.AllowsRegion(region));
            Assert.True(entitlement.AllowsRegion(FlipCase(region, pattern)));
            Assert.True(entitlement.AllowsRegion(region.ToUpperInvariant()));
            Assert.True(entitlement.AllowsRegion(region.ToLowerInvariant()));
        }, iter: 1000);
    }

    [Fact]
    public void AllowsRegion_AnyRegion_TrueExactlyWhenEqualIgnoringCase()
    {
        Gen.Select(Regions, RegionName).Sample((regions, region) =>
        {
            var entitlement = new Entitlement("plan", SubscriptionStatus.Active, 5, regions);
            var expected = regions.Any(r => string.Equals(r.ToUpperInvariant(), region.ToUpperInvariant(), StringComparison.Ordinal));

            Assert.Equal(expected, entitlement.AllowsRegion(region));
        }, iter: 1000);
    }

    [Theory]
    [InlineData("eu-west", true)]
    [InlineData("EU-WEST", true)]
    [InlineData("Eu-West", true)]
    [InlineData("eu-west ", false)]
    [InlineData("eu_west", false)]
    [InlineData("us-east", false)]
    [InlineData("", false)]
    public void AllowsRegion_Region_IgnoresCaseOnly(string region, bool allowed)
    {
        var entitlement = new Entitlement("pro", SubscriptionStatus.Active, 5, ["eu-west", "local"]);

        Assert.Equal(allowed, entitlement.AllowsRegion(region));
    }

    [Fact]
    public void AllowsRegion_NoAllowedRegions_ReturnsFalse()
    {
        var entitlement = new Entitlement("none", SubscriptionStatus.Active, 5, []);

        Assert.False(entitlement.AllowsRegion("eu-west"));
    }
}
