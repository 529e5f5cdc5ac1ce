using Vpn.Entry.Devices;

namespace Vpn.Entry.Tests.Data;

/// <summary>The store contract: devices, their limit and their deletion.</summary>
public abstract partial class StoreContractTests
{
    [Fact]
    public async Task CreateDevice_UnderLimit_ListedAndReadableByOwner()
    {
        await using var s = await CreateStoresAsync();
        var customer = await NewCustomerAsync(s);
        var laptop = NewDevice(customer, "laptop", T0);
        var phone = NewDevice(customer, "phone", T0.AddMinutes(1));

        var created = await s.Devices.CreateAsync(laptop, 5, Ct);
        Assert.Equal(DeviceCreateOutcome.Created, created.Outcome);
        Assert.Equal(laptop, created.Device);
        Assert.Equal(DeviceCreateOutcome.Created, (await s.Devices.CreateAsync(phone, 5, Ct)).Outcome);

        Assert.Equal(new[] { laptop, phone }, await s.Devices.ListAsync(customer, Ct));
        Assert.Equal(phone, await s.Devices.GetAsync(customer, phone.Id, Ct));
        Assert.Null(await s.Devices.GetAsync(customer, Guid.NewGuid(), Ct));
    }

    [Fact]
    public async Task GetDevice_OtherCustomersDevice_ReturnsNullAndCannotDelete()
    {
        await using var s = await CreateStoresAsync();
        var owner = await NewCustomerAsync(s);
        var other = await NewCustomerAsync(s);
        var device = await NewDeviceAsync(s, owner);

        Assert.Null(await s.Devices.GetAsync(other, device.Id, Ct));
        Assert.Empty(await s.Devices.ListAsync(other, Ct));
        Assert.Equal((false, (SessionRecord?)null), await s.Devices.DeleteAsync(other, device.Id, T0, Ct));
        Assert.Equal(device, await s.Devices.GetAsync(owner, device.Id, Ct));
    }

    [Fact]
    public async Task CreateDevice_KeyUsedByAnotherCustomer_KeyInUse()
    {
        await using var s = await CreateStoresAsync();
        var owner = await NewCustomerAsync(s);
        var other = await NewCustomerAsync(s);
        var device = await NewDeviceAsync(s, owner);

        var stolen = await s.Devices.CreateAsync(NewDevice(other, "copy", T0) with { PublicKey = device.PublicKey }, 5, Ct);
        var twice = await s.Devices.CreateAsync(NewDevice(owner, "again", T0) with { PublicKey = device.PublicKey }, 5, Ct);

        Assert.Equal(new DeviceCreateResult(DeviceCreateOutcome.KeyInUse, null), stolen);
        Assert.Equal(new DeviceCreateResult(DeviceCreateOutcome.KeyInUse, null), twice);
        Assert.Empty(await s.Devices.ListAsync(other, Ct));
        Assert.Equal(new[] { device }, await s.Devices.ListAsync(owner, Ct));
    }

    [Fact]
    public async Task CreateDevice_AtLimit_LimitReached()
    {
        await using var s = await CreateStoresAsync();
        var customer = await NewCustomerAsync(s);
        await NewDeviceAsync(s, customer, maxDevices: 2);
        await NewDeviceAsync(s, customer, maxDevices: 2);

        var third = await s.Devices.CreateAsync(NewDevice(customer, "third", T0), 2, Ct);

        Assert.Equal(new DeviceCreateResult(DeviceCreateOutcome.LimitReached, null), third);
        Assert.Equal(2, (await s.Devices.ListAsync(customer, Ct)).Count);
    }

    [Fact]
    public async Task CreateDevice_TwentyConcurrentWithLimitFive_ExactlyFiveCreated()
    {
        await using var s = await CreateStoresAsync();
        var customer = await NewCustomerAsync(s);
        var devices = Enumerable.Range(0, 20).Select(i => NewDevice(customer, $"device-{i}", T0.AddSeconds(i))).ToList();

        var results = await Task.WhenAll(devices.Select(d => Task.Run(() => s.Devices.CreateAsync(d, 5, Ct))));

        Assert.Equal(5, results.Count(r => r.Outcome == DeviceCreateOutcome.Created));
        Assert.Equal(15, results.Count(r => r.Outcome == DeviceCreateOutcome.LimitReached));
        Assert.Equal(5, (await s.Devices.ListAsync(customer, Ct)).Count);
    }

    [Fact]
    public async Task DeleteDevice_WithActiveSession_TerminatesAndReturnsIt()
    {
        await using var s = await CreateStoresAsync();
        var node = await NewNodeAsync(s, "node-a");
        var (customer, device) = await NewCustomerWithDeviceAsync(s);
        var session = await ClaimAndActivateAsync(s, customer, device, node, "10.64.0.2/32");

        var (deleted, terminated) = await s.Devices.DeleteAsync(customer, device.Id, T0.AddHours(1), Ct);

        Assert.True(deleted);
        Assert.NotNull(terminated);
        Assert.Equal((session.Id, customer, node.Id, device.PublicKey, "10.64.0.2/32"),
            (terminated.Id, terminated.CustomerId, terminated.NodeId, terminated.DevicePublicKey, terminated.AssignedAddress));
        Assert.Null(await s.Sessions.GetActiveAsync(customer, Ct));
        Assert.Null(await s.Sessions.GetLiveIdAsync(customer, Ct));
        Assert.Equal(0, await LoadAsync(s, node));
        Assert.Null(await s.Devices.GetAsync(customer, device.Id, Ct));
        Assert.Empty(await s.Devices.ListAsync(customer, Ct));
        Assert.Equal((false, (SessionRecord?)null), await s.Devices.DeleteAsync(customer, device.Id, T0.AddHours(2), Ct));
    }

    [Fact]
    public async Task DeleteDevice_WithProvisioningSession_TerminatesItAndFreesTheSlot()
    {
        await using var s = await CreateStoresAsync();
        var node = await NewNodeAsync(s, "node-a");
        var (customer, device) = await NewCustomerWithDeviceAsync(s);
        var session = NewSession(customer, device, node);
        Assert.Equal(ClaimOutcome.Claimed, (await s.Sessions.ClaimAsync(session, replaceExisting: false, Ct)).Outcome);

        var (deleted, terminated) = await s.Devices.DeleteAsync(customer, device.Id, T0.AddHours(1), Ct);

        Assert.True(deleted);
        Assert.Equal(session.Id, terminated?.Id);
        Assert.Null(await s.Sessions.GetLiveIdAsync(customer, Ct));
        Assert.False(await s.Sessions.ActivateAsync(session.Id, "10.64.0.2/32", null, [], T0.AddHours(2), Ct));
        var replacement = await NewDeviceAsync(s, customer);
        Assert.Equal(ClaimOutcome.Claimed, (await s.Sessions.ClaimAsync(NewSession(customer, replacement, node), replaceExisting: false, Ct)).Outcome);
    }

    [Fact]
    public async Task DeleteDevice_SessionOnAnotherDevice_LeavesItActive()
    {
        await using var s = await CreateStoresAsync();
        var node = await NewNodeAsync(s, "node-a");
        var (customer, inUse) = await NewCustomerWithDeviceAsync(s);
        var spare = await NewDeviceAsync(s, customer);
        var session = await ClaimAndActivateAsync(s, customer, inUse, node, "10.64.0.2/32");

        Assert.Equal((true, (SessionRecord?)null), await s.Devices.DeleteAsync(customer, spare.Id, T0.AddHours(1), Ct));

        Assert.Equal(session.Id, (await s.Sessions.GetActiveAsync(customer, Ct))?.Id);
    }
}
