namespace Vpn.Core.Nat;

/// <summary>
/// Programs the node's filter and NAT table (<see cref="NodeFirewall"/>), one implementation per <c>WG_NAT_DRIVER</c>
/// value: <c>cli</c> (<see cref="NftNatDriver"/>) or <c>native</c> (<see cref="Native.NativeNatDriver"/>).
/// </summary>
public interface INatDriver
{
    /// <summary>"cli" or "native", reported in GetNodeStatus.</summary>
    string Name { get; }

    /// <summary>What this driver does without external tools, reported as GetNodeStatus.native_features.</summary>
    IReadOnlyList<string> NativeFeatures { get; }

    /// <summary>Installs or atomically replaces the whole table; safe to repeat.</summary>
    Task ApplyAsync(CancellationToken cancellationToken);

    /// <summary>Removes the table; succeeds when it is already gone.</summary>
    Task RemoveAsync(CancellationToken cancellationToken);

    Task<bool> IsPresentAsync(CancellationToken cancellationToken);

    /// <summary>The table's named drop counters as the kernel holds them now.</summary>
    Task<IReadOnlyList<FirewallCounter>> ReadCountersAsync(CancellationToken cancellationToken);
}

/// <summary>One named nftables counter of our table.</summary>
public readonly record struct FirewallCounter(string Name, ulong Packets, ulong Bytes);
