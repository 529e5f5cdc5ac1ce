using Vpn.Core.Nat.Native;

namespace Vpn.Core.Tests.Nat.Native;

/// <summary>
/// The native driver's batch against the one nft 1.0.6 (Debian 12's) sends for the cli driver's script of the same
/// table, captured live with <c>nft --debug=mnl</c>: same messages, in the same order, with identical payload bytes
/// (nfgenmsg and every attribute, rule expressions included). Three header fields legitimately differ and are not
/// compared: the sequence number (nft numbers from its own cache requests), the port id (0 in both; the kernel fills
/// it in) and the flags (we set NLM_F_ACK on every message to read one answer each, nft relies on errors only; and
/// libmnl's dump shows just four flag bits, so nft's CREATE/APPEND bits cannot be read from it). Our flags are pinned
/// by the golden fixtures below instead, which also pin the encoder where nft is not installed.
/// </summary>
public class NfTablesEncodingTests
{
    [Theory]
    [MemberData(nameof(FirewallSamples.Variants), MemberType = typeof(FirewallSamples))]
    public async Task Apply_NodeFirewallVariant_SameBatchAsNft(string variant)
    {
        var table = FirewallSamples.Table(variant);
        var batch = NfTablesMessages.Apply(table);

        var nft = await NetlinkCapture.CaptureNftBatchAsync(NftRuleset.Render(table));

        var ours = NetlinkCapture.Split(batch.Bytes);
        Assert.Equal(nft.Select(m => m.Type), ours.Select(m => m.Type));
        var differences = nft.Zip(ours).Select((pair, index) => (pair.First, pair.Second, Meaning: Meaning(batch, index)))
            .Where(p => p.First.PayloadHex != p.Second.PayloadHex)
            .Select(p => $"{p.Meaning}\n nft:\n{NetlinkCapture.Describe(p.First.Payload)} ours:\n{NetlinkCapture.Describe(p.Second.Payload)}")
            .ToList();
        Assert.Empty(differences);
        Assert.Equal(table.RuleCount, ours.Count(m => m.Type == NfTables.Type(NfTables.NewRule)));
    }

    [Fact]
    public async Task Apply_HandWrittenMatches_SameRulesAsNft()
    {
        // Shapes NodeFirewall does not produce today but the IR allows: dependencies implied twice, /0, /1, echo alone.
        FirewallRule[] rules =
        [
            new([new EchoRequestMatch(IpFamily.Ipv4)], null, new AcceptAction()),
            new([new EchoRequestMatch(IpFamily.Ipv6)], null, new AcceptAction()),
            new([new DestinationPortMatch(TransportProtocol.Udp, 5353), new AddressMatch(true, System.Net.IPNetwork.Parse("1.2.3.4/32"))], null, new DropAction()),
            new([new AddressMatch(true, System.Net.IPNetwork.Parse("1.2.3.0/24")), new AddressMatch(false, System.Net.IPNetwork.Parse("0.0.0.0/0"))], null, new DropAction()),
            new([new AddressMatch(false, System.Net.IPNetwork.Parse("128.0.0.0/1"), Negated: true)], null, new DropAction()),
            new([new AddressMatch(false, System.Net.IPNetwork.Parse("::1/128")), new FamilyMatch(IpFamily.Ipv6)], null, new AcceptAction()),
            new([new InterfaceMatch(false, "a-fifteen-char1"), new EstablishedOrRelatedMatch()], null, new AcceptAction()),
            new([new FamilyMatch(IpFamily.Ipv4), new DestinationPortMatch(TransportProtocol.Tcp, 65535)], null, new DestinationNatAction(System.Net.IPAddress.Parse("192.0.2.1"))),
        ];
        var table = new FirewallTable("shapes", [], [new FirewallChain("c", new BaseChain(ChainType.Nat, ChainHook.Prerouting, -100), rules)]);

        var nft = await NetlinkCapture.CaptureNftBatchAsync(NftRuleset.Render(table));

        var ours = NetlinkCapture.Split(NfTablesMessages.Apply(table).Bytes);
        Assert.Equal(nft.Select(m => m.PayloadHex), ours.Select(m => m.PayloadHex));
    }

    [Fact]
    public void Apply_Batch_BeginAndEndWrapEveryMessageWithAck()
    {
        var batch = NfTablesMessages.Apply(FirewallSamples.Table());

        var messages = NetlinkCapture.Split(batch.Bytes);

        // NFNL_MSG_BATCH_BEGIN/END: AF_UNSPEC, version 0, res_id NFNL_SUBSYS_NFTABLES (big-endian); no ack asked.
        Assert.Equal((0x10, 0x1, 1u, "0000000a"), (messages[0].Type, messages[0].Flags, messages[0].Sequence, messages[0].PayloadHex));
        Assert.Equal((0x11, 0x1, (uint)messages.Count, "0000000a"), (messages[^1].Type, messages[^1].Flags, messages[^1].Sequence, messages[^1].PayloadHex));
        var inner = messages.Skip(1).SkipLast(1).ToList();
        Assert.All(inner, m => Assert.Equal(0x4 | 0x1, m.Flags & 0x5));
        Assert.Equal(inner.Select(m => m.Sequence), batch.Sequences);
        Assert.Equal(Enumerable.Range(2, inner.Count).Select(i => (uint)i), batch.Sequences);
        Assert.Equal(["create table inet vpn_core", "delete table inet vpn_core", "add table inet vpn_core"], batch.Sequences.Take(3).Select(batch.MeaningOf));
    }

    [Fact]
    public void Renumbered_FromAnyStart_EveryHeaderRenumberedAndNothingElse()
    {
        var batch = NfTablesMessages.Apply(FirewallSamples.Table());

        var renumbered = batch.Renumbered(uint.MaxValue - 2);

        var before = NetlinkCapture.Split(batch.Bytes);
        var after = NetlinkCapture.Split(renumbered.Bytes);
        // Wraps past zero like the kernel's u32; meanings follow their messages.
        Assert.Equal(before.Select((_, i) => unchecked(uint.MaxValue - 2 + (uint)i)), after.Select(m => m.Sequence));
        Assert.Equal(before.Select(m => (m.Type, m.Flags, m.PayloadHex)), after.Select(m => (m.Type, m.Flags, m.PayloadHex)));
        Assert.Equal(batch.Sequences.Select(batch.MeaningOf), renumbered.Sequences.Select(renumbered.MeaningOf));
        Assert.Equal(1u, batch.BeginSequence);
    }

    [Fact]
    public void Remove_Batch_CreateThenDeleteTable()
    {
        var messages = NetlinkCapture.Split(NfTablesMessages.Remove("vpn_core").Bytes);

        Assert.Equal([0x10, 0xa00, 0xa02, 0x11], messages.Select(m => (int)m.Type));
    }

    // Golden fixtures: payloads (after nlmsghdr) copied from `nft --debug=mnl` for the same statements, plus our header.
    [Fact]
    public void NewTable_Golden_ByteExact()
    {
        var writer = new NetlinkWriter();

        NfTablesMessages.NewTable(writer, 7, "vpn_core");

        Assert.Equal(Hex(
            "2c000000 000a 0504 07000000 00000000", // len 44, NFT_MSG_NEWTABLE, REQUEST|ACK|CREATE, seq 7
            "01 00 0000",                           // NFPROTO_INET, NFNETLINK_V0, res_id 0
            "0d00 0100 76706e5f636f726500 000000",  // NFTA_TABLE_NAME "vpn_core"
            "0800 0200 00000000"),                  // NFTA_TABLE_FLAGS 0
            writer.ToArray());
    }

    [Fact]
    public void NewChain_BaseChainGolden_ByteExact()
    {
        var writer = new NetlinkWriter();

        NfTablesMessages.NewChain(writer, 9, "vpn_core", new FirewallChain("postrouting", new BaseChain(ChainType.Nat, ChainHook.Postrouting, 100), []));

        Assert.Equal(Hex(
            "58000000 030a 0504 09000000 00000000",    // len 88, NFT_MSG_NEWCHAIN, REQUEST|ACK|CREATE, seq 9
            "01 00 0000",
            "0d00 0100 76706e5f636f726500 000000",     // NFTA_CHAIN_TABLE "vpn_core"
            "1000 0300 706f7374726f7574696e6700",      // NFTA_CHAIN_NAME "postrouting"
            "0800 0700 6e617400",                      // NFTA_CHAIN_TYPE "nat"
            "0800 0500 00000001",                      // NFTA_CHAIN_POLICY NF_ACCEPT
            "1400 0480",                               // NFTA_CHAIN_HOOK (nested)
            "0800 0100 00000004",                      //   NFTA_HOOK_HOOKNUM NF_INET_POST_ROUTING
            "0800 0200 00000064"),                     //   NFTA_HOOK_PRIORITY 100
            writer.ToArray());
    }

    [Fact]
    public void NewCounter_Golden_ByteExact()
    {
        var writer = new NetlinkWriter();

        NfTablesMessages.NewCounter(writer, 3, "vpn_core", "tunnel_to_node");

        Assert.Equal(Hex(
            "5c000000 120a 0504 03000000 00000000",    // len 92, NFT_MSG_NEWOBJ, REQUEST|ACK|CREATE, seq 3
            "01 00 0000",
            "0d00 0100 76706e5f636f726500 000000",     // NFTA_OBJ_TABLE
            "1300 0200 74756e6e656c5f746f5f6e6f646500 00", // NFTA_OBJ_NAME "tunnel_to_node"
            "0800 0300 00000001",                      // NFTA_OBJ_TYPE NFT_OBJECT_COUNTER
            "1c00 0480",                               // NFTA_OBJ_DATA (nested)
            "0c00 0100 0000000000000000",              //   NFTA_COUNTER_BYTES 0
            "0c00 0200 0000000000000000"),             //   NFTA_COUNTER_PACKETS 0
            writer.ToArray());
    }

    [Fact]
    public void NewRule_AntiSpoofGolden_ByteExact()
    {
        // iifname "wg0" ip6 saddr != fd64:6400::/64 counter name "tunnel_spoofed_source" drop
        var rule = new FirewallRule([new InterfaceMatch(true, "wg0"), new AddressMatch(true, System.Net.IPNetwork.Parse("fd64:6400::/64"), Negated: true)],
            "tunnel_spoofed_source", new DropAction());
        var writer = new NetlinkWriter();

        NfTablesMessages.NewRule(writer, 5, "vpn_core", "anti_spoof", rule);

        Assert.Equal(Hex(GoldenAntiSpoofRule), writer.ToArray());
    }

    [Theory]
    [InlineData("")]
    [InlineData("sixteen-chars-xx")]
    [InlineData("wg\0")]
    public void NewRule_BadInterfaceName_ThrowsArgumentException(string name)
    {
        var rule = new FirewallRule([new InterfaceMatch(true, name)], null, new AcceptAction());

        Assert.Throws<ArgumentException>(() => NfTablesMessages.NewRule(new NetlinkWriter(), 1, "t", "c", rule));
    }

    [Fact]
    public void NewRule_Ipv4AfterIpv6_ThrowsArgumentException()
    {
        var rule = new FirewallRule([new FamilyMatch(IpFamily.Ipv6), new AddressMatch(true, System.Net.IPNetwork.Parse("10.0.0.0/8"))], null, new DropAction());

        Assert.Throws<ArgumentException>(() => NfTablesMessages.NewRule(new NetlinkWriter(), 1, "t", "c", rule));
    }

    private static string Meaning(NfTablesBatch batch, int index) =>
        index < batch.Meanings.Count ? batch.MeaningOf(batch.BeginSequence + (uint)index) : "batch end";

    private static byte[] Hex(params string[] parts) => Convert.FromHexString(string.Concat(parts).Replace(" ", "", StringComparison.Ordinal));

    private static readonly string[] GoldenAntiSpoofRule =
    [
        "b0010000 060a 050c 05000000 00000000",       // len 432, NFT_MSG_NEWRULE, REQUEST|ACK|CREATE|APPEND, seq 5
        "01000000",                                  // NFPROTO_INET
        "0d000100 76706e5f636f726500000000",          // NFTA_RULE_TABLE "vpn_core"
        "0f000200 616e74695f73706f6f660000",          // NFTA_RULE_CHAIN "anti_spoof"
        "7c010480",                                  // NFTA_RULE_EXPRESSIONS (nested, 380 bytes)
        // meta load iifname => reg 1
        "24000180 09000100 6d65746100000000 14000280 08000200 00000006 08000100 00000001",
        // cmp eq reg 1 "wg0" NUL-padded to IFNAMSIZ
        "38000180 08000100 636d7000 2c000280 08000100 00000001 08000200 00000000 18000380 14000100 77673000000000000000000000000000",
        // meta load nfproto => reg 1; cmp eq reg 1 NFPROTO_IPV6 (the dependency nft adds before an ip6 match in inet)
        "24000180 09000100 6d65746100000000 14000280 08000200 0000000f 08000100 00000001",
        "2c000180 08000100 636d7000 20000280 08000100 00000001 08000200 00000000 0c000380 05000100 0a000000",
        // payload load 8b @ network header + 8 => reg 1 (the /64 prefix of the IPv6 source)
        "34000180 0c000100 7061796c6f616400 24000280 08000100 00000001 08000200 00000001 08000300 00000008 08000400 00000008",
        // cmp neq reg 1 fd64:6400:0000:0000
        "30000180 08000100 636d7000 24000280 08000100 00000001 08000200 00000001 10000380 0c000100 fd64640000000000",
        // objref type 1 (counter) name "tunnel_spoofed_source"
        "38000180 0b000100 6f626a7265660000 28000280 08000100 00000001 19000200 74756e6e656c5f73706f6f6665645f736f75726365000000", // (name without NUL)
        // immediate reg 0 drop
        "30000180 0e000100 696d6d6564696174650000 00 1c000280 08000100 00000000 10000280 0c000280 08000100 00000000",
    ];
}
