using Vpn.Domain.Subscriptions;

namespace Vpn.Domain.Tests.Subscriptions;

/// <summary>The one entitlement rule used by device registration, session start, reconnect and the enforcer.</summary>
public class EntitlementCheckTests
{
    private static Entitlement Plan(string status, params string[] regions) => new("basic", status, 5, regions);

    [Fact]
    public void Check_NoSubscription_DeniedNoSubscription()
    {
        Assert.Equal(new EntitlementDecision(EntitlementDenial.NoSubscription, "no_subscription"), Entitlements.Check(null));
        Assert.Equal(EntitlementDenial.NoSubscription, Entitlements.Check(null, "eu-west").Denial);
    }

    [Theory]
    [InlineData("past_due")]
    [InlineData("canceled")]
    [InlineData("expired")]
    [InlineData("Active")]
    public void Check_StatusNotEntitling_DeniedWithTheStatusInTheReason(string status)
    {
        var device = Entitlements.Check(Plan(status, "eu-west"));
        var session = Entitlements.Check(Plan(status, "eu-west"), "eu-west");

        Assert.Equal(new EntitlementDecision(EntitlementDenial.SubscriptionInactive, "subscription_" + status), device);
        Assert.Equal(device, session);
        Assert.False(device.Allowed);
    }

    [Theory]
    [InlineData("active")]
    [InlineData("trialing")]
    public void Check_EntitlingStatusNoRegion_Allowed(string status)
    {
        // Devices are not bound to a region: even a plan with no regions allows registering one.
        Assert.True(Entitlements.Check(Plan(status)).Allowed);
        Assert.Same(EntitlementDecision.Allow, Entitlements.Check(Plan(status, "eu-west")));
    }

    [Fact]
    public void Check_RegionOutsidePlan_DeniedRegionNotAllowed()
    {
        var decision = Entitlements.Check(Plan("active", "eu-west"), "us-east");

        Assert.Equal(new EntitlementDecision(EntitlementDenial.RegionNotAllowed, "region_not_allowed"), decision);
        Assert.True(Entitlements.Check(Plan("active", "eu-west"), "EU-West").Allowed);
    }

    [Fact]
    public void Check_InactiveAndRegionOutsidePlan_InactiveWins()
    {
        Assert.Equal(EntitlementDenial.SubscriptionInactive, Entitlements.Check(Plan("canceled", "eu-west"), "us-east").Denial);
    }

    [Fact]
    public void Check_AnyEntitlement_AllowedExactlyWhenEntitledAndRegionAllowed()
    {
        var status = Gen.OneOf([.. SubscriptionStatus.All, "Active", ""]);
        var region = Gen.OneOf("eu-west", "EU-WEST", "us-east", "ap-south");
        var regions = Gen.OneOf("eu-west", "us-east", "Ap-South").Array[0, 3];
        Gen.Select(status, regions, region, Gen.Bool).Sample((s, allowed, r, withRegion) =>
        {
            var entitlement = Plan(s, allowed);
            var decision = Entitlements.Check(entitlement, withRegion ? r : null);
            Assert.Equal(entitlement.IsEntitled && (!withRegion || entitlement.AllowsRegion(r)), decision.Allowed);
            Assert.Equal(decision.Allowed, decision.ReasonCode is null);
        });
    }
}
