namespace Vpn.Entry.Auth;

public sealed record SignedInCustomer(Guid CustomerId, bool Created);

/// <summary>Customers are found by the provider's (issuer, subject) pair — never by email, which can change hands.</summary>
public interface IIdentityStore
{
    Task<SignedInCustomer> FindOrCreateAsync(string issuer, string subject, CancellationToken cancellationToken);
}
