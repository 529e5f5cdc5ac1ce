using System.Runtime.InteropServices;

namespace Vpn.Core.Netlink;

/// <summary>
/// Pure rtnetlink encoding and decoding. Netlink integers are in host byte order; IP addresses in
/// attributes are in network order. Every message and attribute is padded to 4 bytes.
/// </summary>
internal static class NetlinkMessages
{
    // struct nlmsghdr { u32 len; u16 type; u16 flags; u32 seq; u32 pid; }
    public const int HeaderLength = 16;

    public const ushort NlmsgError = 2;
    public const ushort RtmNewLink = 16;
    public const ushort RtmGetLink = 18;
    public const ushort RtmNewAddr = 20;

    public const ushort NlmsgDone = 3;

    public const ushort NlmFRequest = 0x1;
    public const ushort NlmFMulti = 0x2;
    public const ushort NlmFAck = 0x4;
    public const ushort NlmFDumpIntr = 0x10;
    public const ushort NlmFReplace = 0x100;
    public const ushort NlmFDump = 0x300;
    public const ushort NlmFCreate = 0x400;
    public const ushort NlmFAppend = 0x800;

    // Flags the kernel sets on an NLMSG_ERROR reply when NETLINK_CAP_ACK / NETLINK_EXT_ACK are on.
    public const ushort NlmFCapped = 0x100;
    public const ushort NlmFAckTlvs = 0x200;

    public const ushort IfaAddress = 1;
    public const ushort IfaLocal = 2;
    public const ushort IflaIfname = 3;
    public const ushort IflaMtu = 4;
    public const ushort NlmsgerrAttrMsg = 1;

    public const uint IffUp = 0x1;

    /// <summary>IFA_F_NODAD in ifaddrmsg.flags.</summary>
    public const byte IfaFNoDad = 0x02;

    /// <summary>IFNAMSIZ is 16 including the terminating NUL.</summary>
    public const int MaxInterfaceNameLength = 15;

    /// <summary>RTM_GETLINK for one interface by name: ifinfomsg with index 0 plus IFLA_IFNAME.</summary>
    public static byte[] GetLink(uint sequence, string interfaceName)
    {
        var name = EncodeInterfaceName(interfaceName);
        var writer = new NetlinkWriter();
        var message = writer.BeginMessage(RtmGetLink, NlmFRequest | NlmFAck, sequence);
        WriteIfInfo(writer, index: 0, flags: 0, change: 0);
        writer.Attribute(IflaIfname, name);
        writer.EndMessage(message);
        return writer.ToArray();
    }

    /// <summary>
    /// RTM_NEWADDR with CREATE|REPLACE so re-applying an existing address succeeds.
    /// IFA_LOCAL is the interface's own address; IFA_ADDRESS is the same value unless point-to-point
    /// peer addressing is wanted, which is what <c>ip addr add A/P dev X</c> sends too.
    /// </summary>
    public static byte[] NewAddress(uint sequence, int interfaceIndex, IPAddress address, int prefixLength, bool noDad = false)
    {
        ArgumentNullException.ThrowIfNull(address);
        var (family, bits) = address.AddressFamily switch
        {
            AddressFamily.InterNetwork => (AfInet, 32),
            AddressFamily.InterNetworkV6 => (AfInet6, 128),
            _ => throw new ArgumentException($"Unsupported address family {address.AddressFamily}.", nameof(address)),
        };
        ArgumentOutOfRangeException.ThrowIfNegative(prefixLength);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(prefixLength, bits);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(interfaceIndex);
        var bytes = address.GetAddressBytes();
        var writer = new NetlinkWriter();
        var message = writer.BeginMessage(RtmNewAddr, NlmFRequest | NlmFAck | NlmFCreate | NlmFReplace, sequence);
        // struct ifaddrmsg { u8 family; u8 prefixlen; u8 flags; u8 scope (0 = universe); u32 index; }
        Span<byte> header = [family, (byte)prefixLength, noDad ? IfaFNoDad : (byte)0, 0, 0, 0, 0, 0];
        MemoryMarshal.Write(header[4..], (uint)interfaceIndex);
        writer.Bytes(header);
        writer.Attribute(IfaLocal, bytes);
        writer.Attribute(IfaAddress, bytes);
        writer.EndMessage(message);
        return writer.ToArray();
    }

    /// <summary>RTM_NEWLINK on an existing index changes only the flag bits selected by ifi_change.</summary>
    public static byte[] SetLinkUp(uint sequence, int interfaceIndex)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(interfaceIndex);
        var writer = new NetlinkWriter();
        var message = writer.BeginMessage(RtmNewLink, NlmFRequest | NlmFAck, sequence);
        WriteIfInfo(writer, interfaceIndex, flags: IffUp, change: IffUp);
        writer.EndMessage(message);
        return writer.ToArray();
    }

    public static byte[] SetMtu(uint sequence, int interfaceIndex, int mtu)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(interfaceIndex);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(mtu);
        var writer = new NetlinkWriter();
        var message = writer.BeginMessage(RtmNewLink, NlmFRequest | NlmFAck, sequence);
        WriteIfInfo(writer, interfaceIndex, flags: 0, change: 0);
        writer.UInt32(IflaMtu, (uint)mtu);
        writer.EndMessage(message);
        return writer.ToArray();
    }

    /// <summary>Splits the first message off a received datagram; false when the buffer is exhausted.</summary>
    public static bool TryReadMessage(ref ReadOnlySpan<byte> buffer, out MessageHeader header, out ReadOnlySpan<byte> payload)
    {
        header = default;
        payload = default;
        if (buffer.Length < HeaderLength)
        {
            return false;
        }
        header = new MessageHeader(
            MemoryMarshal.Read<uint>(buffer),
            MemoryMarshal.Read<ushort>(buffer[4..]),
            MemoryMarshal.Read<ushort>(buffer[6..]),
            MemoryMarshal.Read<uint>(buffer[8..]));
        if (header.Length < HeaderLength || header.Length > buffer.Length)
        {
            throw new NetlinkException($"Malformed netlink message: length {header.Length} with {buffer.Length} bytes left.", Ebadmsg);
        }
        payload = buffer[HeaderLength..(int)header.Length];
        buffer = buffer[Math.Min(Align((int)header.Length), buffer.Length)..];
        return true;
    }

    /// <summary>
    /// Decodes an NLMSG_ERROR payload: struct nlmsgerr { int error; struct nlmsghdr msg; } where msg is
    /// only the header when capped, optionally followed by extended-ack attributes.
    /// Error 0 is a positive acknowledgement; otherwise it is a negated errno.
    /// </summary>
    public static (int Errno, string? Message) ReadError(ushort flags, ReadOnlySpan<byte> payload)
    {
        if (payload.Length < 4)
        {
            throw new NetlinkException("Truncated NLMSG_ERROR.", Ebadmsg);
        }
        var errno = -MemoryMarshal.Read<int>(payload);
        if ((flags & NlmFAckTlvs) == 0 || payload.Length < 4 + HeaderLength)
        {
            return (errno, null);
        }
        var echoedLength = (flags & NlmFCapped) != 0 ? HeaderLength : (int)MemoryMarshal.Read<uint>(payload[4..]);
        var attributes = payload[Math.Min(4 + Align(echoedLength), payload.Length)..];
        string? message = null;
        while (attributes.Length >= 4)
        {
            var length = MemoryMarshal.Read<ushort>(attributes);
            var type = MemoryMarshal.Read<ushort>(attributes[2..]);
            if (length < 4 || length > attributes.Length)
            {
                break;
            }
            if (type == NlmsgerrAttrMsg)
            {
                message = Encoding.UTF8.GetString(attributes[4..length]).TrimEnd('\0');
            }
            attributes = attributes[Math.Min(Align(length), attributes.Length)..];
        }
        return (errno, message);
    }

    /// <summary>ifi_index of an RTM_NEWLINK payload (struct ifinfomsg, index at offset 4).</summary>
    public static int ReadLinkIndex(ReadOnlySpan<byte> payload) =>
        payload.Length >= IfInfoLength
            ? MemoryMarshal.Read<int>(payload[4..])
            : throw new NetlinkException("Truncated ifinfomsg.", Ebadmsg);

    public static void ValidateInterfaceName(string interfaceName) => EncodeInterfaceName(interfaceName);

    private static byte[] EncodeInterfaceName(string interfaceName)
    {
        ArgumentNullException.ThrowIfNull(interfaceName);
        var bytes = Encoding.UTF8.GetBytes(interfaceName + "\0");
        if (bytes.Length is < 2 or > MaxInterfaceNameLength + 1 || interfaceName.Contains('\0', StringComparison.Ordinal))
        {
            throw new ArgumentException($"Interface name must be 1 to {MaxInterfaceNameLength} bytes without NUL.", nameof(interfaceName));
        }
        return bytes;
    }

    public static int Align(int length) => (length + 3) & ~3;

    private const byte AfInet = 2;
    private const byte AfInet6 = 10;
    private const int IfInfoLength = 16;
    private const int Ebadmsg = 74;

    public readonly record struct MessageHeader(uint Length, ushort Type, ushort Flags, uint Sequence);

    // struct ifinfomsg { u8 family (AF_UNSPEC); u8 pad; u16 type; s32 index; u32 flags; u32 change; }
    private static void WriteIfInfo(NetlinkWriter writer, int index, uint flags, uint change)
    {
        Span<byte> header = stackalloc byte[IfInfoLength];
        header.Clear();
        MemoryMarshal.Write(header[4..], index);
        MemoryMarshal.Write(header[8..], flags);
        MemoryMarshal.Write(header[12..], change);
        writer.Bytes(header);
    }
}
