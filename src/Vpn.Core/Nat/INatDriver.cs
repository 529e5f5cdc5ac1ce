namespace Vpn.Core.Nat;

/// <summary>Masquerading of the client pool, one implementation per <c>WG_NAT_DRIVER</c> value.</summary>
public interface INatDriver
{
    /// <summary>Installs or replaces the NAT rules; safe to repeat.</summary>
    Task ApplyAsync(CancellationToken cancellationToken);

    /// <summary>Removes the NAT rules; succeeds when they are already gone.</summary>
    Task RemoveAsync(CancellationToken cancellationToken);

    Task<bool> IsPresentAsync(CancellationToken cancellationToken);
}
