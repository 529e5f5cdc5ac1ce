namespace Vpn.Core.Netlink;

/// <summary>What core accepts as a network interface name (WG_INTERFACE, WG_UPLINK_INTERFACE, nft rules).</summary>
public static class InterfaceNames
{
    /// <summary>
    /// 1-15 characters (IFNAMSIZ less the NUL) of A-Z a-z 0-9 _ . -, and not "." or ".." (Linux refuses those). Narrower
    /// than what Linux allows, so that a name accepted here is also safe inside a quoted nft string or a file name.
    /// </summary>
    public static bool IsValid(string? name) =>
        name is { Length: > 0 and <= NetlinkMessages.MaxInterfaceNameLength } && name is not ("." or "..")
        && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.');
}
