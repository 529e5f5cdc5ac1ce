namespace Vpn.Entry.Data.InMemory;

/// <summary>The zero-setup store: one process, so the cache is the whole truth.</summary>
public sealed class InMemoryTokenRevocations(TimeProvider time) : ITokenRevocations
{
    private readonly RevokedTokenCache _cache = new(time);
    private readonly RevokedCustomerCache _customers = new(time);

    public ValueTask<bool> IsRevokedAsync(string jti, CancellationToken cancellationToken) => ValueTask.FromResult(_cache.Contains(jti));

    public ValueTask<bool> IsCustomerRevokedAsync(Guid customerId, DateTimeOffset? issuedAt, CancellationToken cancellationToken) =>
        ValueTask.FromResult(_customers.IsRevoked(customerId, issuedAt));

    public Task RevokeCustomerAsync(CustomerRevocation revocation, CancellationToken cancellationToken)
    {
        _customers.Add(revocation);
        return Task.CompletedTask;
    }

    public void Remember(CustomerRevocation revocation) => _customers.Add(revocation);

    public Task RevokeAsync(string jti, DateTimeOffset expiresAt, CancellationToken cancellationToken)
    {
        _cache.Add(jti, expiresAt);
        return Task.CompletedTask;
    }
}
