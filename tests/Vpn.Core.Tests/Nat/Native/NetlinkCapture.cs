using System.Buffers.Binary;
using System.Globalization;
using System.Text.RegularExpressions;

namespace Vpn.Core.Tests.Nat.Native;

/// <summary>One netlink message: type, flags, sequence number and everything after the 16-byte nlmsghdr.</summary>
internal sealed record NetlinkMessage(ushort Type, ushort Flags, uint Sequence, byte[] Payload)
{
    public string PayloadHex => Convert.ToHexStringLower(Payload);
}

/// <summary>
/// Netlink messages as nft sends them, read from <c>nft --debug=mnl</c> (libmnl's <c>mnl_nlmsg_fprintf</c>), and as our
/// encoder writes them, so the two can be compared byte for byte.
/// </summary>
internal static partial class NetlinkCapture
{
    public const ushort BatchBegin = 0x10;
    public const ushort BatchEnd = 0x11;

    /// <summary>Splits a buffer of back-to-back netlink messages.</summary>
    public static IReadOnlyList<NetlinkMessage> Split(ReadOnlySpan<byte> buffer)
    {
        var messages = new List<NetlinkMessage>();
        while (buffer.Length >= 16)
        {
            var length = (int)BinaryPrimitives.ReadUInt32LittleEndian(buffer);
            Assert.InRange(length, 16, buffer.Length);
            messages.Add(new NetlinkMessage(BinaryPrimitives.ReadUInt16LittleEndian(buffer[4..]), BinaryPrimitives.ReadUInt16LittleEndian(buffer[6..]),
                BinaryPrimitives.ReadUInt32LittleEndian(buffer[8..]), buffer[16..length].ToArray()));
            buffer = buffer[((length + 3) & ~3)..];
        }
        Assert.True(buffer.IsEmpty, "trailing bytes after the last message");
        return messages;
    }

    /// <summary>
    /// Rebuilds the messages printed by <c>nft --debug=mnl</c>. libmnl prints every message's header fields, then its
    /// payload four bytes per line: either an attribute header (length, N/B flag letters, type) or four raw bytes, in
    /// wire order, nested attributes included — so concatenating the lines gives back the exact payload bytes. Only the
    /// header's flags are lossy (libmnl prints just REQUEST/MULTI/ACK/ECHO as letters), so they are returned as those bits.
    /// </summary>
    public static IReadOnlyList<NetlinkMessage> ParseMnlDump(string text)
    {
        var messages = new List<NetlinkMessage>();
        int? length = null;
        ushort type = 0, flags = 0;
        uint? sequence = null;
        var payload = new List<byte>();
        void Flush()
        {
            if (length is { } total)
            {
                // libmnl builds aligned messages, and prints every payload byte.
                Assert.Equal(total, 16 + payload.Count);
                messages.Add(new NetlinkMessage(type, flags, sequence ?? 0, [.. payload]));
            }
            length = null;
            sequence = null;
            payload.Clear();
        }
        foreach (var raw in text.Split('\n'))
        {
            var line = Ansi().Replace(raw, "");
            if (HeaderNumber().Match(line) is { Success: true } number)
            {
                var value = uint.Parse(number.Groups[1].Value, CultureInfo.InvariantCulture);
                if (line.Contains("message length", StringComparison.Ordinal))
                {
                    Flush();
                    length = (int)value;
                }
                else if (line.Contains("sequence number", StringComparison.Ordinal))
                {
                    sequence = value;
                }
                continue;
            }
            if (TypeAndFlags().Match(line) is { Success: true } header)
            {
                type = ushort.Parse(header.Groups[1].Value, CultureInfo.InvariantCulture);
                var letters = header.Groups[2].Value;
                flags = (ushort)((letters[0] == 'R' ? 0x1 : 0) | (letters[1] == 'M' ? 0x2 : 0) | (letters[2] == 'A' ? 0x4 : 0) | (letters[3] == 'E' ? 0x8 : 0));
                continue;
            }
            if (Attribute().Match(line) is { Success: true } attribute)
            {
                var attributeLength = ushort.Parse(attribute.Groups[1].Value, CultureInfo.InvariantCulture);
                var attributeType = ushort.Parse(attribute.Groups[3].Value, CultureInfo.InvariantCulture);
                if (attribute.Groups[2].Value[0] == 'N')
                {
                    attributeType |= 0x8000;
                }
                if (attribute.Groups[2].Value[1] == 'B')
                {
                    attributeType |= 0x4000;
                }
                payload.AddRange(BitConverter.GetBytes(attributeLength));
                payload.AddRange(BitConverter.GetBytes(attributeType));
                continue;
            }
            if (Bytes().Match(line) is { Success: true } bytes)
            {
                payload.AddRange(Convert.FromHexString(bytes.Groups[1].Value.Replace(" ", "", StringComparison.Ordinal)));
            }
        }
        Flush();
        return messages;
    }

    /// <summary>The messages between NFNL_MSG_BATCH_BEGIN and NFNL_MSG_BATCH_END, inclusive, of the last batch.</summary>
    public static IReadOnlyList<NetlinkMessage> LastBatch(IReadOnlyList<NetlinkMessage> messages)
    {
        var begin = messages.ToList().FindLastIndex(m => m.Type == BatchBegin);
        Assert.True(begin >= 0, "no batch in the dump");
        var end = messages.ToList().FindIndex(begin, m => m.Type == BatchEnd);
        Assert.True(end > begin, "batch without end");
        return messages.Skip(begin).Take(end - begin + 1).ToList();
    }

    /// <summary>What nft 1.0.6 sends for <paramref name="script"/>, captured in a throwaway namespace (it does change it).</summary>
    public static async Task<IReadOnlyList<NetlinkMessage>> CaptureNftBatchAsync(string script)
    {
        Prerequisites.RequireNetworkLab();
        await using var ns = await NetworkNamespace.CreateAsync("nfcap");
        var result = (await ns.ExecAsync("nft", ["--debug=mnl", "-f", "-"], script)).EnsureSuccess("nft --debug=mnl -f -");
        return LastBatch(ParseMnlDump(result.StandardOutput));
    }

    /// <summary>A payload as nested attributes, one per line, for failure messages.</summary>
    public static string Describe(byte[] payload)
    {
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"nfgenmsg {Convert.ToHexStringLower(payload.AsSpan(0, Math.Min(4, payload.Length)))}\n");
        DescribeAttributes(payload.AsSpan(Math.Min(4, payload.Length)), 1, text);
        return text.ToString();
    }

    private static void DescribeAttributes(ReadOnlySpan<byte> rest, int depth, StringBuilder text)
    {
        while (rest.Length >= 4)
        {
            var length = BinaryPrimitives.ReadUInt16LittleEndian(rest);
            var type = BinaryPrimitives.ReadUInt16LittleEndian(rest[2..]);
            if (length < 4 || length > rest.Length)
            {
                text.Append(' ', depth * 2).Append(CultureInfo.InvariantCulture, $"malformed: {Convert.ToHexStringLower(rest)}\n");
                return;
            }
            var value = rest[4..length];
            text.Append(' ', depth * 2).Append(CultureInfo.InvariantCulture, $"{type & 0x3fff}{((type & 0x8000) != 0 ? " nested" : "")} len {length}");
            if ((type & 0x8000) != 0)
            {
                text.Append('\n');
                DescribeAttributes(value, depth + 1, text);
            }
            else
            {
                text.Append(CultureInfo.InvariantCulture, $": {Convert.ToHexStringLower(value)}\n");
            }
            rest = rest[Math.Min((length + 3) & ~3, rest.Length)..];
        }
    }

    [GeneratedRegex(@"\x1b\[[0-9;]*m")]
    private static partial Regex Ansi();

    [GeneratedRegex(@"^\|\s+(\d{10})\s+\|\t")]
    private static partial Regex HeaderNumber();

    [GeneratedRegex(@"^\| (\d{5}) \| ([R-][M-][A-][E-]) \|")]
    private static partial Regex TypeAndFlags();

    [GeneratedRegex(@"^\|(\d{5})\|([N-][B-])\|(\d{5})\|")]
    private static partial Regex Attribute();

    [GeneratedRegex(@"^\| ((?:[0-9a-f]{2} ){3}[0-9a-f]{2})  \|")]
    private static partial Regex Bytes();
}
