using Vpn.Entry.Devices;

namespace Vpn.Entry.Tests.Data;

/// <summary>The four store interfaces over one fresh, isolated store.</summary>
public sealed class StoreSet(IPlanStore plans, IDeviceStore devices, INodeStore nodes, ISessionStore sessions, Func<ValueTask>? dispose = null)
    : IAsyncDisposable
{
    public IPlanStore Plans { get; } = plans;

    public IDeviceStore Devices { get; } = devices;

    public INodeStore Nodes { get; } = nodes;

    public ISessionStore Sessions { get; } = sessions;

    /// <summary>Draining, migrating and deleting nodes (the same database as <see cref="Nodes"/>).</summary>
    public required INodeDrainStore NodeDrains { get; init; }

    public ValueTask DisposeAsync() => dispose?.Invoke() ?? ValueTask.CompletedTask;
}

/// <summary>One stored subscription period, for stores whose history is visible beyond the interface.</summary>
public sealed record SubscriptionPeriod(string PlanCode, DateTimeOffset StartedAt, DateTimeOffset? EndedAt);

/// <summary>
/// The behaviour every store behind IPlanStore/IDeviceStore/INodeStore/ISessionStore must share: the in-memory store
/// for local runs and the PostgreSQL stores must be interchangeable, races included.
/// </summary>
public abstract partial class StoreContractTests
{
    protected static readonly DateTimeOffset T0 = new(2030, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>A store nobody else uses: a new in-memory store, or the PostgreSQL stores over a new migrated database.</summary>
    protected abstract Task<StoreSet> CreateStoresAsync();

    /// <summary>Every period of the customer in insertion order; null when the store shows no more than its interface.</summary>
    protected virtual Task<IReadOnlyList<SubscriptionPeriod>?> ReadSubscriptionHistoryAsync(Guid customerId) =>
        Task.FromResult<IReadOnlyList<SubscriptionPeriod>?>(null);

    /// <summary>Open periods as the storage itself counts them; null when only the interface can tell.</summary>
    protected virtual Task<long?> CountOpenSubscriptionPeriodsAsync(Guid customerId) => Task.FromResult<long?>(null);

    // ---- Helpers -----------------------------------------------------------------------------------------------

    private static readonly Plan Basic = new("basic", "Basic", 5, ["eu-west"]);

    private static string NewKey() => WireGuardKey.Generate().ToBase64();

    private static void AssertPlan(Plan expected, Plan actual)
    {
        Assert.Equal((expected.Code, expected.Name, expected.MaxDevices), (actual.Code, actual.Name, actual.MaxDevices));
        Assert.Equal(expected.AllowedRegions, actual.AllowedRegions);
    }

    /// <summary>A customer with an open subscription (which also creates the customer row the foreign keys need).</summary>
    private static async Task<Guid> NewCustomerAsync(StoreSet s)
    {
        await s.Plans.UpsertPlanAsync(Basic, Ct);
        var customer = Guid.NewGuid();
        Assert.NotNull(await s.Plans.SetSubscriptionAsync(customer, Basic.Code, "active", T0, Ct));
        return customer;
    }

    private static Device NewDevice(Guid customer, string name, DateTimeOffset createdAt) =>
        new(Guid.NewGuid(), customer, name, WireGuardKey.Generate(), createdAt);

    private static async Task<Device> NewDeviceAsync(StoreSet s, Guid customer, int maxDevices = 5)
    {
        var device = NewDevice(customer, "device", T0);
        var result = await s.Devices.CreateAsync(device, maxDevices, Ct);
        Assert.Equal(DeviceCreateOutcome.Created, result.Outcome);
        return device;
    }

    private static async Task<(Guid Customer, Device Device)> NewCustomerWithDeviceAsync(StoreSet s)
    {
        var customer = await NewCustomerAsync(s);
        return (customer, await NewDeviceAsync(s, customer));
    }

    private static NodeRegistration Registration(string name, int capacity = 100, string region = "eu-west") =>
        new(name, region, "DE", "fra", "default", "203.0.113.7:51820", NewKey(), "core.test:50051", capacity);

    private static async Task<Node> NewNodeAsync(StoreSet s, string name, int capacity = 100)
    {
        var (node, created) = await s.Nodes.UpsertAsync(Registration(name, capacity), T0, Ct);
        Assert.True(created);
        return node;
    }

    private static NewSession NewSession(Guid customer, Device device, Node node) =>
        new(Guid.CreateVersion7(), customer, device.Id, device.PublicKey, node.Id, RandomNumberGenerator.GetBytes(32),
            "eu-west", "DE", "fra", "default", T0);

    private static async Task<NewSession> ClaimAndActivateAsync(StoreSet s, Guid customer, Device device, Node node, string address,
        string? addressV6 = null)
    {
        var session = NewSession(customer, device, node);
        Assert.Equal(ClaimOutcome.Claimed, (await s.Sessions.ClaimAsync(session, replaceExisting: false, Ct)).Outcome);
        Assert.True(await s.Sessions.ActivateAsync(session.Id, address, addressV6, ["10.64.0.1"], T0.AddSeconds(1), Ct));
        return session;
    }

    private static async Task<int> LoadAsync(StoreSet s, Node node) =>
        (await s.Nodes.ListWithLoadAsync(Ct)).Single(l => l.Node.Id == node.Id).LiveSessions;
}
