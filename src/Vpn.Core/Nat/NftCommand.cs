namespace Vpn.Core.Nat;

/// <summary>How to invoke nft: the executable and arguments placed before nft's own (e.g. a namespace wrapper).</summary>
public sealed record NftCommand(string FileName, IReadOnlyList<string> PrefixArguments)
{
    public static NftCommand Default { get; } = new("nft", []);

    /// <summary>Runs nft inside a named network namespace through <c>ip netns exec</c>.</summary>
    public static NftCommand InNamespace(string namespaceName, string nftPath = "nft") =>
        new("ip", ["netns", "exec", namespaceName, nftPath]);
}
