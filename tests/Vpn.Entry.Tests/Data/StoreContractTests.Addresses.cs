using Vpn.Domain.Sessions;

namespace Vpn.Entry.Tests.Data;

/// <summary>The store contract: addresses on activation and on moves (IPv4 and IPv6 uniqueness per node).</summary>
public abstract partial class StoreContractTests
{
    [Fact]
    public async Task ActivateAsync_Provisioning_ActiveWithAddressAndDns()
    {
        await using var s = await CreateStoresAsync();
        var node = await NewNodeAsync(s, "node-a");
        var (customer, device) = await NewCustomerWithDeviceAsync(s);
        var session = NewSession(customer, device, node);
        Assert.Equal(ClaimOutcome.Claimed, (await s.Sessions.ClaimAsync(session, replaceExisting: false, Ct)).Outcome);
        Assert.Null(await s.Sessions.GetActiveAsync(customer, Ct));
        Assert.Equal(session.Id, await s.Sessions.GetLiveIdAsync(customer, Ct));

        Assert.True(await s.Sessions.ActivateAsync(session.Id, "10.64.0.2/32", null, ["10.64.0.1", "1.1.1.1"], T0.AddSeconds(1), Ct));

        var active = await s.Sessions.GetActiveAsync(customer, Ct);
        Assert.NotNull(active);
        Assert.Equal(
            (session.Id, customer, (Guid?)device.Id, device.PublicKey, node.Id, SessionState.Active, "10.64.0.2/32", "eu-west", "DE", "fra", "default", T0),
            (active.Id, active.CustomerId, active.DeviceId, active.DevicePublicKey, active.NodeId, active.State, active.AssignedAddress,
                active.Region, active.CountryCode, active.CityCode, active.Pool, active.CreatedAt));
        Assert.Equal(new[] { "10.64.0.1", "1.1.1.1" }, active.Dns);
        Assert.False(await s.Sessions.ActivateAsync(session.Id, "10.64.0.9/32", null, [], T0.AddSeconds(2), Ct));
        Assert.Equal("10.64.0.2/32", (await s.Sessions.GetActiveAsync(customer, Ct))?.AssignedAddress);
    }

    [Fact]
    public async Task ActivateAsync_AddressHeldByAnotherLiveSessionOnNode_ReturnsFalse()
    {
        await using var s = await CreateStoresAsync();
        var node = await NewNodeAsync(s, "node-a");
        var (holder, holderDevice) = await NewCustomerWithDeviceAsync(s);
        var (late, lateDevice) = await NewCustomerWithDeviceAsync(s);
        await ClaimAndActivateAsync(s, holder, holderDevice, node, "10.64.0.2/32");
        var session = NewSession(late, lateDevice, node);
        Assert.Equal(ClaimOutcome.Claimed, (await s.Sessions.ClaimAsync(session, replaceExisting: false, Ct)).Outcome);

        Assert.False(await s.Sessions.ActivateAsync(session.Id, "10.64.0.2/32", null, [], T0.AddSeconds(1), Ct));

        Assert.Null(await s.Sessions.GetActiveAsync(late, Ct));
        Assert.Equal(session.Id, await s.Sessions.GetLiveIdAsync(late, Ct));
        Assert.True(await s.Sessions.ActivateAsync(session.Id, "10.64.0.3/32", null, [], T0.AddSeconds(2), Ct));
    }

    [Fact]
    public async Task ActivateAsync_SameAddressOnAnotherNode_ReturnsTrue()
    {
        await using var s = await CreateStoresAsync();
        var a = await NewNodeAsync(s, "node-a");
        var b = await NewNodeAsync(s, "node-b");
        var (first, firstDevice) = await NewCustomerWithDeviceAsync(s);
        var (second, secondDevice) = await NewCustomerWithDeviceAsync(s);
        await ClaimAndActivateAsync(s, first, firstDevice, a, "10.64.0.2/32");

        var session = await ClaimAndActivateAsync(s, second, secondDevice, b, "10.64.0.2/32");

        Assert.Equal(session.Id, (await s.Sessions.GetActiveAsync(second, Ct))?.Id);
    }

    [Fact]
    public async Task ActivateAsync_AddressOfTerminatedSession_ReusableOnSameNode()
    {
        await using var s = await CreateStoresAsync();
        var node = await NewNodeAsync(s, "node-a");
        var (first, firstDevice) = await NewCustomerWithDeviceAsync(s);
        var (second, secondDevice) = await NewCustomerWithDeviceAsync(s);
        await ClaimAndActivateAsync(s, first, firstDevice, node, "10.64.0.2/32");
        Assert.NotNull(await s.Sessions.TerminateActiveAsync(first, "customer_request", T0.AddMinutes(1), Ct));

        var session = await ClaimAndActivateAsync(s, second, secondDevice, node, "10.64.0.2/32");

        Assert.Equal("10.64.0.2/32", (await s.Sessions.GetActiveAsync(second, Ct))?.AssignedAddress);
        Assert.Equal(session.Id, await s.Sessions.GetLiveIdAsync(second, Ct));
    }

    [Fact]
    public async Task ActivateAsync_DualStack_StoresIpv6EverywhereTheSessionIsRead()
    {
        await using var s = await CreateStoresAsync();
        var node = await NewNodeAsync(s, "node-a");
        var (dual, dualDevice) = await NewCustomerWithDeviceAsync(s);
        var (legacy, legacyDevice) = await NewCustomerWithDeviceAsync(s);
        var session = NewSession(dual, dualDevice, node);
        var claim = await s.Sessions.ClaimAsync(session, replaceExisting: false, Ct);
        Assert.Equal(ClaimOutcome.Claimed, claim.Outcome);
        var v4Only = await ClaimAndActivateAsync(s, legacy, legacyDevice, node, "10.64.0.3/32");
        var v4OnlySeq = (await s.Sessions.GetActiveAsync(legacy, Ct))!.ClaimSeq;
        Assert.True(claim.ClaimSeq > 0 && v4OnlySeq > claim.ClaimSeq, $"claims in order: {claim.ClaimSeq}, {v4OnlySeq}");

        Assert.True(await s.Sessions.ActivateAsync(session.Id, "10.64.0.2/32", "fd64:6400::2/128", ["10.64.0.1", "fd64:6400::1"], T0.AddSeconds(1), Ct));

        var active = await s.Sessions.GetActiveAsync(dual, Ct);
        Assert.NotNull(active);
        Assert.Equal(("10.64.0.2/32", "fd64:6400::2/128"), (active.AssignedAddress, active.AssignedAddressV6));
        Assert.Equal(new[] { "10.64.0.1", "fd64:6400::1" }, active.Dns);
        Assert.Equal("fd64:6400::2/128", (await s.Sessions.FindActiveByKeyHashAsync(session.KeyHash, Ct))?.AssignedAddressV6);
        Assert.Null((await s.Sessions.GetActiveAsync(legacy, Ct))?.AssignedAddressV6);
        Assert.Equal(
            new[]
            {
                new NodeSessionPeer(session.Id, dualDevice.PublicKey.ToBase64(), "10.64.0.2/32", SessionState.Active, "fd64:6400::2/128", claim.ClaimSeq),
                new NodeSessionPeer(v4Only.Id, legacyDevice.PublicKey.ToBase64(), "10.64.0.3/32", SessionState.Active, null, v4OnlySeq),
            }.OrderBy(p => p.SessionId),
            await s.Nodes.ListDesiredPeersAsync(node.Id, Ct));
        var terminated = await s.Sessions.TerminateActiveAsync(dual, "customer_request", T0.AddMinutes(1), Ct);
        Assert.Equal("fd64:6400::2/128", terminated?.AssignedAddressV6);
    }

    [Fact]
    public async Task ActivateAsync_Ipv6HeldByAnotherLiveSessionOnNode_ReturnsFalse()
    {
        await using var s = await CreateStoresAsync();
        var node = await NewNodeAsync(s, "node-a");
        var (holder, holderDevice) = await NewCustomerWithDeviceAsync(s);
        var (late, lateDevice) = await NewCustomerWithDeviceAsync(s);
        await ClaimAndActivateAsync(s, holder, holderDevice, node, "10.64.0.2/32", "fd64:6400::2/128");
        var session = NewSession(late, lateDevice, node);
        Assert.Equal(ClaimOutcome.Claimed, (await s.Sessions.ClaimAsync(session, replaceExisting: false, Ct)).Outcome);

        // Only the IPv6 address collides: the database's second index decides, as the first does for IPv4.
        Assert.False(await s.Sessions.ActivateAsync(session.Id, "10.64.0.3/32", "fd64:6400::2/128", [], T0.AddSeconds(1), Ct));

        Assert.Null(await s.Sessions.GetActiveAsync(late, Ct));
        Assert.Equal(session.Id, await s.Sessions.GetLiveIdAsync(late, Ct));
        Assert.True(await s.Sessions.ActivateAsync(session.Id, "10.64.0.3/32", "fd64:6400::3/128", [], T0.AddSeconds(2), Ct));
    }

    [Fact]
    public async Task ActivateAsync_Ipv6OnAnotherNodeOrOfEndedSession_Reusable()
    {
        await using var s = await CreateStoresAsync();
        var a = await NewNodeAsync(s, "node-a");
        var b = await NewNodeAsync(s, "node-b");
        var (first, firstDevice) = await NewCustomerWithDeviceAsync(s);
        var (second, secondDevice) = await NewCustomerWithDeviceAsync(s);
        var (third, thirdDevice) = await NewCustomerWithDeviceAsync(s);
        await ClaimAndActivateAsync(s, first, firstDevice, a, "10.64.0.2/32", "fd64:6400::2/128");

        await ClaimAndActivateAsync(s, second, secondDevice, b, "10.64.0.2/32", "fd64:6400::2/128");
        Assert.NotNull(await s.Sessions.TerminateActiveAsync(first, "customer_request", T0.AddMinutes(1), Ct));
        await ClaimAndActivateAsync(s, third, thirdDevice, a, "10.64.0.4/32", "fd64:6400::2/128");

        Assert.Equal("fd64:6400::2/128", (await s.Sessions.GetActiveAsync(second, Ct))?.AssignedAddressV6);
        Assert.Equal("fd64:6400::2/128", (await s.Sessions.GetActiveAsync(third, Ct))?.AssignedAddressV6);
    }

    [Fact]
    public async Task ActivateAsync_SeveralSessionsWithoutIpv6OnOneNode_AllActive()
    {
        await using var s = await CreateStoresAsync();
        var node = await NewNodeAsync(s, "node-a");
        var (first, firstDevice) = await NewCustomerWithDeviceAsync(s);
        var (second, secondDevice) = await NewCustomerWithDeviceAsync(s);
        var (third, thirdDevice) = await NewCustomerWithDeviceAsync(s);

        await ClaimAndActivateAsync(s, first, firstDevice, node, "10.64.0.2/32");
        await ClaimAndActivateAsync(s, second, secondDevice, node, "10.64.0.3/32");
        await ClaimAndActivateAsync(s, third, thirdDevice, node, "10.64.0.4/32", "fd64:6400::4/128");

        Assert.Equal(3, await LoadAsync(s, node));
    }

    [Fact]
    public async Task MoveAsync_ToAnotherNode_StoresBothNewAddressesAndRotatesKey()
    {
        await using var s = await CreateStoresAsync();
        var a = await NewNodeAsync(s, "node-a");
        var b = await NewNodeAsync(s, "node-b");
        var (customer, device) = await NewCustomerWithDeviceAsync(s);
        var session = await ClaimAndActivateAsync(s, customer, device, a, "10.64.0.2/32", "fd64:6400::2/128");
        var newHash = RandomNumberGenerator.GetBytes(32);

        var outcome = await s.Sessions.MoveAsync(session.Id, session.KeyHash, newHash, b.Id, "10.64.0.7/32", "fd64:6400::7/128",
            ["10.64.0.1", "fd64:6400::1"], T0.AddMinutes(1), Ct);

        Assert.Equal(MoveOutcome.Moved, outcome);
        var moved = await s.Sessions.GetActiveAsync(customer, Ct);
        Assert.NotNull(moved);
        Assert.Equal((session.Id, b.Id, "10.64.0.7/32", "fd64:6400::7/128"), (moved.Id, moved.NodeId, moved.AssignedAddress, moved.AssignedAddressV6));
        Assert.Equal(new[] { "10.64.0.1", "fd64:6400::1" }, moved.Dns);
        Assert.Null(await s.Sessions.FindActiveByKeyHashAsync(session.KeyHash, Ct));
        Assert.Equal(session.Id, (await s.Sessions.FindActiveByKeyHashAsync(newHash, Ct))?.Id);
        Assert.Empty(await s.Nodes.ListDesiredPeersAsync(a.Id, Ct));
        Assert.Equal("fd64:6400::7/128", Assert.Single(await s.Nodes.ListDesiredPeersAsync(b.Id, Ct)).AddressV6);
    }

    [Fact]
    public async Task MoveAsync_ToNodeWhoseCoreHasNoIpv6_ClearsIpv6()
    {
        await using var s = await CreateStoresAsync();
        var a = await NewNodeAsync(s, "node-a");
        var b = await NewNodeAsync(s, "node-b");
        var (customer, device) = await NewCustomerWithDeviceAsync(s);
        var session = await ClaimAndActivateAsync(s, customer, device, a, "10.64.0.2/32", "fd64:6400::2/128");

        Assert.Equal(MoveOutcome.Moved, await s.Sessions.MoveAsync(session.Id, session.KeyHash, RandomNumberGenerator.GetBytes(32), b.Id,
            "10.64.0.2/32", null, ["10.64.0.1"], T0.AddMinutes(1), Ct));

        var moved = await s.Sessions.GetActiveAsync(customer, Ct);
        Assert.Equal((b.Id, "10.64.0.2/32", (string?)null), (moved?.NodeId, moved?.AssignedAddress, moved?.AssignedAddressV6));
        Assert.Null(Assert.Single(await s.Nodes.ListDesiredPeersAsync(b.Id, Ct)).AddressV6);
    }

    [Fact]
    public async Task MoveAsync_Ipv6HeldOnTargetNode_AddressTakenAndSessionUnchanged()
    {
        await using var s = await CreateStoresAsync();
        var a = await NewNodeAsync(s, "node-a");
        var b = await NewNodeAsync(s, "node-b");
        var (customer, device) = await NewCustomerWithDeviceAsync(s);
        var (holder, holderDevice) = await NewCustomerWithDeviceAsync(s);
        var session = await ClaimAndActivateAsync(s, customer, device, a, "10.64.0.2/32", "fd64:6400::2/128");
        await ClaimAndActivateAsync(s, holder, holderDevice, b, "10.64.0.5/32", "fd64:6400::5/128");

        var outcome = await s.Sessions.MoveAsync(session.Id, session.KeyHash, RandomNumberGenerator.GetBytes(32), b.Id, "10.64.0.9/32", "fd64:6400::5/128",
            ["10.64.0.1"], T0.AddMinutes(1), Ct);

        Assert.Equal(MoveOutcome.AddressTaken, outcome);
        var unchanged = await s.Sessions.GetActiveAsync(customer, Ct);
        Assert.Equal((a.Id, "10.64.0.2/32", "fd64:6400::2/128"), (unchanged?.NodeId, unchanged?.AssignedAddress, unchanged?.AssignedAddressV6));
        Assert.Equal(session.Id, (await s.Sessions.FindActiveByKeyHashAsync(session.KeyHash, Ct))?.Id);
        Assert.Equal(1, await LoadAsync(s, b));
    }
}
