using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace Vpn.Core.Netlink;

/// <summary>
/// Appends netlink messages (rtnetlink, nfnetlink) to one growing buffer, so a whole batch goes to the kernel in a
/// single sendto. Message and attribute headers are host order; what follows the header (ifinfomsg, nfgenmsg…) and the
/// attribute values are each family's own: nf_tables values are big-endian (the kernel reads them with ntohl), except
/// where the kernel compares raw register bytes (cmp/bitwise data, which follow the packet).
/// </summary>
internal sealed class NetlinkWriter
{
    private const ushort NlaFNested = 0x8000;

    private byte[] _buffer = new byte[4096];
    private int _length;

    public int Length => _length;

    public ReadOnlySpan<byte> Written => _buffer.AsSpan(0, _length);

    public byte[] ToArray() => _buffer[.._length];

    /// <summary>Starts a message with its struct nlmsghdr; the family's own header follows with <see cref="Bytes"/>.</summary>
    /// <returns>The message's start, for <see cref="EndMessage"/>.</returns>
    public int BeginMessage(ushort type, ushort flags, uint sequence)
    {
        var start = _length;
        // struct nlmsghdr { u32 len; u16 type; u16 flags; u32 seq; u32 pid; }
        var header = Reserve(NetlinkMessages.HeaderLength);
        MemoryMarshal.Write(header[4..], type);
        MemoryMarshal.Write(header[6..], flags);
        MemoryMarshal.Write(header[8..], sequence);
        // nlmsg_pid stays 0: the kernel fills in the sender's port id.
        return start;
    }

    /// <summary>Raw bytes (a family header such as ifinfomsg or nfgenmsg), zero-padded to 4.</summary>
    public void Bytes(ReadOnlySpan<byte> value) => value.CopyTo(Reserve(Align(value.Length)));

    public void EndMessage(int start) => MemoryMarshal.Write(_buffer.AsSpan(start), (uint)(_length - start));

    /// <returns>The attribute's start, for <see cref="EndNested"/>.</returns>
    public int BeginNested(ushort type)
    {
        var start = _length;
        var header = Reserve(4);
        MemoryMarshal.Write(header[2..], (ushort)(type | NlaFNested));
        return start;
    }

    // A nested attribute's length covers its children, which are padded already.
    public void EndNested(int start) => MemoryMarshal.Write(_buffer.AsSpan(start), (ushort)(_length - start));

    // struct nlattr { u16 len (header + value, unpadded); u16 type; } then the value, zero-padded to 4.
    public void Attribute(ushort type, ReadOnlySpan<byte> value)
    {
        var padded = Align(4 + value.Length);
        var span = Reserve(padded);
        MemoryMarshal.Write(span, (ushort)(4 + value.Length));
        MemoryMarshal.Write(span[2..], type);
        value.CopyTo(span[4..]);
    }

    /// <summary>A NUL-terminated string, as the kernel's NLA_STRING/NLA_NUL_STRING policies expect from nft.</summary>
    public void String(ushort type, string value) => Attribute(type, Encoding.UTF8.GetBytes(value + "\0"));

    public void UInt32BigEndian(ushort type, uint value)
    {
        Span<byte> bytes = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, value);
        Attribute(type, bytes);
    }

    public void UInt64BigEndian(ushort type, ulong value)
    {
        Span<byte> bytes = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(bytes, value);
        Attribute(type, bytes);
    }

    public void Byte(ushort type, byte value) => Attribute(type, [value]);

    /// <summary>A host-order u32 attribute (rtnetlink's convention).</summary>
    public void UInt32(ushort type, uint value)
    {
        Span<byte> bytes = stackalloc byte[4];
        MemoryMarshal.Write(bytes, value);
        Attribute(type, bytes);
    }

    public static int Align(int length) => NetlinkMessages.Align(length);

    // Fresh space is zeroed: padding and reserved header fields must be zero on the wire.
    private Span<byte> Reserve(int count)
    {
        if (_length + count > _buffer.Length)
        {
            Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, _length + count));
        }
        var span = _buffer.AsSpan(_length, count);
        span.Clear();
        _length += count;
        return span;
    }
}
