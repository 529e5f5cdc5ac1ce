using Vpn.Entry.Data;

namespace Vpn.Entry.Tests.Data;

/// <summary>The store contract on the zero-setup in-memory store (history is only visible through the interfaces).</summary>
public sealed class InMemoryStoreContractTests : StoreContractTests
{
    protected override Task<StoreSet> CreateStoresAsync()
    {
        var store = new InMemoryStore();
        return Task.FromResult(new StoreSet(store, store, store, store));
    }
}
