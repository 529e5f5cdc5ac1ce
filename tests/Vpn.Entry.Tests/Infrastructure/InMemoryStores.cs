using Vpn.Entry.Data.InMemory;

namespace Vpn.Entry.Tests.Infrastructure;

/// <summary>The in-memory plan, device, node and session stores over one fresh database, as entry wires them without DATABASE_URL.</summary>
public sealed class InMemoryStores
{
    public InMemoryStores()
    {
        Plans = new InMemoryPlanStore(Database);
        Devices = new InMemoryDeviceStore(Database);
        Nodes = new InMemoryNodeStore(Database);
        Sessions = new InMemorySessionStore(Database, new InMemoryUsageStore(Database));
    }

    public InMemoryDatabase Database { get; } = new();

    public InMemoryPlanStore Plans { get; }

    public InMemoryDeviceStore Devices { get; }

    public InMemoryNodeStore Nodes { get; }

    public InMemorySessionStore Sessions { get; }
}
