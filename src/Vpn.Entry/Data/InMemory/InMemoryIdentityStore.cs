using System.Collections.Concurrent;

namespace Vpn.Entry.Data.InMemory;

public sealed class InMemoryIdentityStore : IIdentityStore
{
    private readonly ConcurrentDictionary<(string Issuer, string Subject), Guid> _identities = new();

    public Task<SignedInCustomer> FindOrCreateAsync(string issuer, string subject, CancellationToken cancellationToken)
    {
        var candidate = Guid.CreateVersion7();
        var id = _identities.GetOrAdd((issuer, subject), candidate);
        return Task.FromResult(new SignedInCustomer(id, id == candidate));
    }

    /// <summary>Drops the customer's identities (erasure); returns whether there were any.</summary>
    internal bool EraseCustomer(Guid customerId)
    {
        var removed = false;
        foreach (var (identity, owner) in _identities)
        {
            removed |= owner == customerId && _identities.TryRemove(new KeyValuePair<(string, string), Guid>(identity, owner));
        }
        return removed;
    }
}
