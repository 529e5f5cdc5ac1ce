using Vpn.Core.Netlink;
using System.Buffers.Binary;

namespace Vpn.Core.Nat.Native;

/// <summary>
/// One nfnetlink batch ready to send: begin, the command messages, end, numbered consecutively from
/// <see cref="BeginSequence"/>. <see cref="Meanings"/>[i] says what message <c>BeginSequence + i</c> does, for errors.
/// </summary>
internal sealed record NfTablesBatch(byte[] Bytes, uint BeginSequence, IReadOnlyList<string> Meanings)
{
    /// <summary>The command messages' sequence numbers (each asks for an acknowledgement), in order.</summary>
    public IReadOnlyList<uint> Sequences => Enumerable.Range(1, Meanings.Count - 1).Select(i => unchecked(BeginSequence + (uint)i)).ToList();

    public string MeaningOf(uint sequence) =>
        unchecked(sequence - BeginSequence) is var index && index < Meanings.Count ? Meanings[(int)index] : $"message {sequence}";

    /// <summary>The same batch numbered from <paramref name="begin"/>: a socket that is kept open needs fresh numbers per batch.</summary>
    public NfTablesBatch Renumbered(uint begin)
    {
        var bytes = (byte[])Bytes.Clone();
        var sequence = begin;
        for (var offset = 0; offset < bytes.Length; offset += NetlinkWriter.Align((int)BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(offset))))
        {
            // nlmsg_seq is at offset 8 of each nlmsghdr.
            BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(offset + 8), sequence++);
        }
        return this with { Bytes = bytes, BeginSequence = begin };
    }
}

/// <summary>
/// Pure encoding of the nf_tables messages the native driver sends, and decoding of the few reply attributes it reads.
/// The batch mirrors what <c>nft -f</c> sends for <see cref="NftRuleset.Render"/>'s script: tables, then chains, then
/// counters, then rules, each message the same attributes in the same order.
/// </summary>
internal static class NfTablesMessages
{
    // A batch message's flags: NLM_F_ACK on each, so success is confirmed message by message, not inferred from silence.
    private const ushort CreateFlags = NetlinkMessages.NlmFRequest | NetlinkMessages.NlmFAck | NetlinkMessages.NlmFCreate;

    /// <summary>
    /// Replaces the table in one transaction: declaring it first makes the delete succeed when it does not exist, and
    /// the delete makes the result independent of whatever the table held before.
    /// </summary>
    /// <exception cref="ArgumentException">A rule cannot be encoded.</exception>
    public static NfTablesBatch Apply(FirewallTable table)
    {
        ArgumentNullException.ThrowIfNull(table);
        var batch = new BatchBuilder();
        batch.Add($"create table inet {table.Name}", (w, seq) => NewTable(w, seq, table.Name));
        batch.Add($"delete table inet {table.Name}", (w, seq) => DeleteTable(w, seq, table.Name));
        batch.Add($"add table inet {table.Name}", (w, seq) => NewTable(w, seq, table.Name));
        // The table's own order, as nft sends it (NodeFirewall declares the jumped-to regular chains first). Every chain
        // exists before the first rule, so a jump always finds its target; the batch is atomic either way.
        foreach (var chain in table.Chains)
        {
            batch.Add($"add chain {chain.Name}", (w, seq) => NewChain(w, seq, table.Name, chain));
        }
        foreach (var counter in table.Counters)
        {
            batch.Add($"add counter {counter}", (w, seq) => NewCounter(w, seq, table.Name, counter));
        }
        foreach (var chain in table.Chains)
        {
            foreach (var rule in chain.Rules)
            {
                batch.Add($"add rule to chain {chain.Name}: {NftRuleset.RenderRule(rule)}", (w, seq) => NewRule(w, seq, table.Name, chain.Name, rule));
            }
        }
        return batch.Build();
    }

    /// <summary>Deletes the table; the NEWTABLE first makes this succeed when it is absent.</summary>
    public static NfTablesBatch Remove(string tableName)
    {
        var batch = new BatchBuilder();
        batch.Add($"create table inet {tableName}", (w, seq) => NewTable(w, seq, tableName));
        batch.Add($"delete table inet {tableName}", (w, seq) => DeleteTable(w, seq, tableName));
        return batch.Build();
    }

    // NEWTABLE without NLM_F_EXCL updates an existing table instead of failing; flags 0 as nft sends them.
    public static void NewTable(NetlinkWriter writer, uint sequence, string name)
    {
        var message = writer.BeginNfMessage(NfTables.Type(NfTables.NewTable), CreateFlags, sequence, NfTables.FamilyInet);
        writer.String(NfTables.TableName, name);
        writer.UInt32BigEndian(NfTables.TableFlags, 0);
        writer.EndMessage(message);
    }

    public static void DeleteTable(NetlinkWriter writer, uint sequence, string name)
    {
        var message = writer.BeginNfMessage(NfTables.Type(NfTables.DelTable), NetlinkMessages.NlmFRequest | NetlinkMessages.NlmFAck, sequence, NfTables.FamilyInet);
        writer.String(NfTables.TableName, name);
        writer.EndMessage(message);
    }

    /// <summary>A base chain carries its type, policy (always accept) and hook {number, priority}, in nft's order.</summary>
    public static void NewChain(NetlinkWriter writer, uint sequence, string table, FirewallChain chain)
    {
        ArgumentNullException.ThrowIfNull(chain);
        var message = writer.BeginNfMessage(NfTables.Type(NfTables.NewChain), CreateFlags, sequence, NfTables.FamilyInet);
        writer.String(NfTables.ChainTable, table);
        writer.String(NfTables.ChainName, chain.Name);
        if (chain.Base is { } hook)
        {
            writer.String(NfTables.ChainType, NfTables.TypeName(hook.Type));
            writer.UInt32BigEndian(NfTables.ChainPolicy, NfTables.VerdictAccept);
            var nested = writer.BeginNested(NfTables.ChainHook);
            writer.UInt32BigEndian(NfTables.HookNumber, NfTables.HookNumberOf(hook.Hook));
            writer.UInt32BigEndian(NfTables.HookPriority, unchecked((uint)hook.Priority));
            writer.EndNested(nested);
        }
        writer.EndMessage(message);
    }

    /// <summary>A named counter object starting at zero packets and bytes.</summary>
    public static void NewCounter(NetlinkWriter writer, uint sequence, string table, string name)
    {
        var message = writer.BeginNfMessage(NfTables.Type(NfTables.NewObj), CreateFlags, sequence, NfTables.FamilyInet);
        writer.String(NfTables.ObjTable, table);
        writer.String(NfTables.ObjName, name);
        writer.UInt32BigEndian(NfTables.ObjType, NfTables.ObjectCounter);
        var data = writer.BeginNested(NfTables.ObjData);
        writer.UInt64BigEndian(NfTables.CounterBytes, 0);
        writer.UInt64BigEndian(NfTables.CounterPackets, 0);
        writer.EndNested(data);
        writer.EndMessage(message);
    }

    /// <summary>NLM_F_APPEND: each rule goes after the chain's previous ones.</summary>
    public static void NewRule(NetlinkWriter writer, uint sequence, string table, string chain, FirewallRule rule)
    {
        var message = writer.BeginNfMessage(NfTables.Type(NfTables.NewRule), CreateFlags | NetlinkMessages.NlmFAppend, sequence, NfTables.FamilyInet);
        writer.String(NfTables.RuleTable, table);
        writer.String(NfTables.RuleChain, chain);
        var expressions = writer.BeginNested(NfTables.RuleExpressions);
        RuleExpressions.Write(writer, rule);
        writer.EndNested(expressions);
        writer.EndMessage(message);
    }

    /// <summary>GETTABLE of one table: answered by NEWTABLE, or ENOENT when it does not exist.</summary>
    public static byte[] GetTable(uint sequence, string name)
    {
        var writer = new NetlinkWriter();
        var message = writer.BeginNfMessage(NfTables.Type(NfTables.GetTable), NetlinkMessages.NlmFRequest | NetlinkMessages.NlmFAck, sequence, NfTables.FamilyInet);
        writer.String(NfTables.TableName, name);
        writer.EndMessage(message);
        return writer.ToArray();
    }

    /// <summary>All inet chains (the kernel filters chain dumps by family only; the table is filtered on our side).</summary>
    public static byte[] DumpChains(uint sequence) => Dump(NfTables.GetChain, sequence, _ => { });

    /// <summary>The rules of one table (the kernel filters rule dumps by NFTA_RULE_TABLE).</summary>
    public static byte[] DumpRules(uint sequence, string table) =>
        Dump(NfTables.GetRule, sequence, w => w.String(NfTables.RuleTable, table));

    /// <summary>The counter objects of one table (the kernel filters object dumps by table and type).</summary>
    public static byte[] DumpCounters(uint sequence, string table) => Dump(NfTables.GetObj, sequence, w =>
    {
        w.String(NfTables.ObjTable, table);
        w.UInt32BigEndian(NfTables.ObjType, NfTables.ObjectCounter);
    });

    /// <summary>The top-level attributes of an nf_tables message payload (after its nfgenmsg).</summary>
    public static Dictionary<ushort, byte[]> ReadAttributes(ReadOnlySpan<byte> payload, int skip = 4)
    {
        var attributes = new Dictionary<ushort, byte[]>();
        var rest = payload.Length >= skip ? payload[skip..] : [];
        while (rest.Length >= 4)
        {
            var length = BinaryPrimitives.ReadUInt16LittleEndian(rest);
            // The top two bits are NLA_F_NESTED / NLA_F_NET_BYTEORDER, not part of the type.
            var type = (ushort)(BinaryPrimitives.ReadUInt16LittleEndian(rest[2..]) & 0x3fff);
            if (length < 4 || length > rest.Length)
            {
                throw new NatException($"Malformed nf_tables attribute: length {length} with {rest.Length} bytes left.");
            }
            attributes[type] = rest[4..length].ToArray();
            rest = rest[Math.Min(NetlinkWriter.Align(length), rest.Length)..];
        }
        return attributes;
    }

    /// <summary>The nfgenmsg family of a reply (dumps may include other families' objects when asked for unspec).</summary>
    public static byte Family(ReadOnlySpan<byte> payload) => payload.Length > 0 ? payload[0] : (byte)0;

    public static string? ReadString(Dictionary<ushort, byte[]> attributes, ushort type) =>
        attributes.TryGetValue(type, out var value) ? Encoding.UTF8.GetString(value).TrimEnd('\0') : null;

    public static uint? ReadUInt32(Dictionary<ushort, byte[]> attributes, ushort type) =>
        attributes.TryGetValue(type, out var value) && value.Length >= 4 ? BinaryPrimitives.ReadUInt32BigEndian(value) : null;

    public static ulong? ReadUInt64(Dictionary<ushort, byte[]> attributes, ushort type) =>
        attributes.TryGetValue(type, out var value) && value.Length >= 8 ? BinaryPrimitives.ReadUInt64BigEndian(value) : null;

    private static byte[] Dump(ushort type, uint sequence, Action<NetlinkWriter> filter)
    {
        var writer = new NetlinkWriter();
        var message = writer.BeginNfMessage(NfTables.Type(type), NetlinkMessages.NlmFRequest | NetlinkMessages.NlmFDump, sequence, NfTables.FamilyInet);
        filter(writer);
        writer.EndMessage(message);
        return writer.ToArray();
    }

    private sealed class BatchBuilder
    {
        private const uint Begin = 1;
        private readonly NetlinkWriter _writer = new();
        private readonly List<string> _meanings = ["the nf_tables transaction"];
        private uint _sequence = Begin;

        public BatchBuilder()
        {
            // The batch wrapper's res_id names the subsystem that runs the transaction (big-endian, in nfgenmsg).
            var begin = _writer.BeginNfMessage(NfTables.BatchBegin, NetlinkMessages.NlmFRequest, Begin, NfTables.FamilyUnspec, NfTables.SubsystemNfTables);
            _writer.EndMessage(begin);
        }

        public void Add(string meaning, Action<NetlinkWriter, uint> write)
        {
            write(_writer, ++_sequence);
            _meanings.Add(meaning);
        }

        public NfTablesBatch Build()
        {
            var end = _writer.BeginNfMessage(NfTables.BatchEnd, NetlinkMessages.NlmFRequest, ++_sequence, NfTables.FamilyUnspec, NfTables.SubsystemNfTables);
            _writer.EndMessage(end);
            return new NfTablesBatch(_writer.ToArray(), Begin, _meanings);
        }
    }
}
