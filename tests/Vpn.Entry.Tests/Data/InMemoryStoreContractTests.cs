using Vpn.Entry.Data.InMemory;

namespace Vpn.Entry.Tests.Data;

/// <summary>The store contract on the zero-setup in-memory store (history is only visible through the interfaces).</summary>
public sealed class InMemoryStoreContractTests : StoreContractTests
{
    protected override Task<StoreSet> CreateStoresAsync()
    {
        var stores = new InMemoryStores();
        return Task.FromResult(new StoreSet(stores.Plans, stores.Devices, stores.Nodes, stores.Sessions) { NodeDrains = new InMemoryNodeDrainStore(stores.Database) });
    }
}
