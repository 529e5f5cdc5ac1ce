namespace Vpn.Core.Nat.Native;

/// <summary>
/// The nf_tables netlink vocabulary the driver uses (linux/netfilter/nf_tables.h, nfnetlink.h), named as in the
/// kernel headers so they can be looked up there.
/// </summary>
internal static class NfTables
{
    // nfnetlink message types are (subsystem << 8) | message.
    public const ushort SubsystemNfTables = 10;
    public const ushort BatchBegin = 0x10;
    public const ushort BatchEnd = 0x11;

    public const ushort NewTable = 0;
    public const ushort GetTable = 1;
    public const ushort DelTable = 2;
    public const ushort NewChain = 3;
    public const ushort GetChain = 4;
    public const ushort NewRule = 6;
    public const ushort GetRule = 7;
    public const ushort NewObj = 18;
    public const ushort GetObj = 19;

    public static ushort Type(ushort message) => (ushort)((SubsystemNfTables << 8) | message);

    public const byte FamilyUnspec = 0;
    public const byte FamilyInet = 1;
    public const byte FamilyIpv4 = 2;
    public const byte FamilyIpv6 = 10;


    public const ushort TableName = 1;
    public const ushort TableFlags = 2;

    public const ushort ChainTable = 1;
    public const ushort ChainName = 3;
    public const ushort ChainHook = 4;
    public const ushort ChainPolicy = 5;
    public const ushort ChainType = 7;
    public const ushort HookNumber = 1;
    public const ushort HookPriority = 2;

    public const ushort RuleTable = 1;
    public const ushort RuleChain = 2;
    public const ushort RuleExpressions = 4;

    public const ushort ObjTable = 1;
    public const ushort ObjName = 2;
    public const ushort ObjType = 3;
    public const ushort ObjData = 4;
    public const uint ObjectCounter = 1;
    public const ushort CounterBytes = 1;
    public const ushort CounterPackets = 2;

    public const ushort ListElement = 1;
    public const ushort ExprName = 1;
    public const ushort ExprData = 2;
    public const ushort DataValue = 1;
    public const ushort DataVerdict = 2;
    public const ushort VerdictCode = 1;
    public const ushort VerdictChain = 2;

    // Verdicts: NF_DROP 0, NF_ACCEPT 1, NFT_JUMP -3.
    public const uint VerdictDrop = 0;
    public const uint VerdictAccept = 1;
    public const uint VerdictJump = unchecked((uint)-3);

    /// <summary>NF_INET_* hook numbers, in the order of <see cref="Nat.ChainHook"/>.</summary>
    public static uint HookNumberOf(Nat.ChainHook hook) => hook switch
    {
        Nat.ChainHook.Prerouting => 0,
        Nat.ChainHook.Input => 1,
        Nat.ChainHook.Forward => 2,
        Nat.ChainHook.Output => 3,
        Nat.ChainHook.Postrouting => 4,
        _ => throw new ArgumentOutOfRangeException(nameof(hook), hook, null),
    };

    public static string TypeName(Nat.ChainType type) => type == Nat.ChainType.Nat ? "nat" : "filter";
}

/// <summary>nfnetlink's framing on top of the shared <see cref="Netlink.NetlinkWriter"/>.</summary>
internal static class NfNetlinkWriter
{
    /// <summary>struct nlmsghdr, then struct nfgenmsg { u8 family; u8 version (NFNETLINK_V0); be16 res_id; }.</summary>
    /// <returns>The message's start, for <see cref="Netlink.NetlinkWriter.EndMessage"/>.</returns>
    public static int BeginNfMessage(this Netlink.NetlinkWriter writer, ushort type, ushort flags, uint sequence, byte family, ushort resourceId = 0)
    {
        var start = writer.BeginMessage(type, flags, sequence);
        writer.Bytes([family, 0, (byte)(resourceId >> 8), (byte)resourceId]);
        return start;
    }
}
