namespace Vpn.Entry.Tests.Usage;

public abstract partial class UsageStoreContractTests
{
    [Fact]
    public async Task Record_ARunPassedToTheNextSessionOnTheNode_CountsOnlyItsGrowth()
    {
        // A device replacing its own session on the same node keeps its peer, so the peer's counters (one run, one
        // generation) go on under the new session: the new session is charged from where the run was, not from zero.
        await using var s = await CreateStoresAsync();
        var first = await NewLiveAsync(s);
        await RecordAsync(s, first, 7, 1000, 400);
        Assert.NotNull(await s.Sessions.TerminateActiveAsync(first.Customer, "replaced", T0.AddMinutes(6), Ct));
        var second = await NewLiveAsync(s, node: first.Node, customer: first.Customer, address: 3, deviceKey: first.DeviceKey);

        await RecordAsync(s, second, 7, 1100, 450, T0.AddMinutes(7));
        await RecordAsync(s, second, 7, 1100, 450, T0.AddMinutes(8));

        Assert.Equal(1400 + 150, (await s.Usage.GetAsync(first.Customer, T0.AddMinutes(8), Ct)).UsedBytes);
    }

    [Fact]
    public async Task Record_AnotherDevicesSessionWithTheSameGeneration_IsAnotherRun()
    {
        await using var s = await CreateStoresAsync();
        var first = await NewLiveAsync(s);
        await RecordAsync(s, first, 7, 1000, 400);
        var other = await NewLiveAsync(s, node: first.Node, address: 3);

        await RecordAsync(s, other, 7, 100, 50);

        Assert.Equal(150, (await s.Usage.GetAsync(other.Customer, T0.AddMinutes(5), Ct)).UsedBytes);
    }

    [Fact]
    public async Task Record_TheSameGenerationOnAnotherNode_IsAnotherRun()
    {
        await using var s = await CreateStoresAsync();
        var first = await NewLiveAsync(s);
        await RecordAsync(s, first, 7, 1000, 400);
        Assert.NotNull(await s.Sessions.TerminateActiveAsync(first.Customer, "replaced", T0.AddMinutes(6), Ct));
        var elsewhere = await NewLiveAsync(s, customer: first.Customer, address: 3, deviceKey: first.DeviceKey);

        await RecordAsync(s, elsewhere, 7, 100, 50, T0.AddMinutes(7));

        Assert.Equal(1400 + 150, (await s.Usage.GetAsync(first.Customer, T0.AddMinutes(7), Ct)).UsedBytes);
    }
}
