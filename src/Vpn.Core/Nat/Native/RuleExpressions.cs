using Vpn.Core.Netlink;
using System.Buffers.Binary;

namespace Vpn.Core.Nat.Native;

/// <summary>
/// Encodes a <see cref="FirewallRule"/> as the nf_tables expressions nft 1.0.6 sends for the same rule text
/// (<see cref="NftRuleset.RenderRule"/>), attribute for attribute, so both drivers install identical rules.
/// Everything is evaluated in register 1 (NFT_REG_1, 16 bytes wide); the verdict goes to register 0.
/// </summary>
internal static class RuleExpressions
{
    private const uint Register1 = 1;
    private const uint RegisterVerdict = 0;

    private const uint MetaIifname = 6;
    private const uint MetaOifname = 7;
    private const uint MetaNfproto = 15;
    private const uint MetaL4proto = 16;

    private const uint PayloadNetworkHeader = 1;
    private const uint PayloadTransportHeader = 2;

    private const uint CmpEq = 0;
    private const uint CmpNeq = 1;

    private const uint CtState = 0;

    // IP_CT_ESTABLISHED and IP_CT_RELATED as ct state bits (NF_CT_STATE_BIT); ct state is a host-order u32.
    private const uint CtStateEstablishedOrRelated = 0x2 | 0x4;

    // NF_CT_STATE_INVALID_BIT.
    private const uint CtStateInvalid = 0x1;

    private const uint NatTypeDnat = 1;

    // NFT_REJECT_ICMPX_UNREACH with NFT_REJECT_ICMPX_ADMIN_PROHIBITED: ICMP or ICMPv6, whichever the packet is.
    private const uint RejectIcmpx = 2;
    private const byte RejectIcmpxAdminProhibited = 3;

    private const byte ProtocolIcmp = 1;
    private const byte ProtocolTcp = 6;
    private const byte ProtocolUdp = 17;
    private const byte ProtocolIcmpv6 = 58;
    private const byte Icmpv4EchoRequest = 8;
    private const byte Icmpv6EchoRequest = 128;

    private const int InterfaceNameSize = 16;

    /// <summary>Writes the rule's NFTA_LIST_ELEM expressions (the content of NFTA_RULE_EXPRESSIONS).</summary>
    /// <exception cref="ArgumentException">The rule cannot be expressed (e.g. it mixes IPv4 and IPv6 matches).</exception>
    public static void Write(NetlinkWriter writer, FirewallRule rule)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(rule);
        // nft adds a protocol dependency (meta nfproto / meta l4proto) before a header match only when the rule has
        // not already established that protocol; these track what is known so far, as nft's protocol context does.
        byte? network = null;
        byte? transport = null;
        foreach (var match in rule.Matches)
        {
            switch (match)
            {
                case InterfaceMatch m:
                    Meta(writer, m.Incoming ? MetaIifname : MetaOifname);
                    Cmp(writer, m.Negated ? CmpNeq : CmpEq, InterfaceName(m.Name));
                    break;
                case FamilyMatch m:
                    var family = Family(m.Family);
                    // An explicit match is always sent, even when an earlier match implied it.
                    _ = Learn(ref network, family);
                    Meta(writer, MetaNfproto);
                    Cmp(writer, CmpEq, [family]);
                    break;
                case AddressMatch m:
                    NetworkDependency(writer, ref network, FamilyOf(m.Network.BaseAddress));
                    Address(writer, m);
                    break;
                case DestinationPortMatch m:
                    TransportDependency(writer, ref transport, m.Protocol == TransportProtocol.Udp ? ProtocolUdp : ProtocolTcp);
                    Payload(writer, PayloadTransportHeader, offset: 2, length: 2);
                    var port = new byte[2];
                    BinaryPrimitives.WriteUInt16BigEndian(port, m.Port);
                    Cmp(writer, CmpEq, port);
                    break;
                case EchoRequestMatch m:
                    // icmp/icmpv6 in an inet table depend on the network family first, then on the l4 protocol.
                    NetworkDependency(writer, ref network, Family(m.Family));
                    TransportDependency(writer, ref transport, m.Family == IpFamily.Ipv4 ? ProtocolIcmp : ProtocolIcmpv6);
                    Payload(writer, PayloadTransportHeader, offset: 0, length: 1);
                    Cmp(writer, CmpEq, [m.Family == IpFamily.Ipv4 ? Icmpv4EchoRequest : Icmpv6EchoRequest]);
                    break;
                case EstablishedOrRelatedMatch:
                    CtStateAny(writer, CtStateEstablishedOrRelated);
                    break;
                case InvalidStateMatch:
                    CtStateAny(writer, CtStateInvalid);
                    break;
                default:
                    throw new ArgumentException($"Unknown match {match}.", nameof(rule));
            }
        }
        if (rule.Counter is { } counter)
        {
            var objref = Begin(writer, "objref");
            writer.UInt32BigEndian(1 /* NFTA_OBJREF_IMM_TYPE */, NfTables.ObjectCounter);
            // libnftnl puts this one name without its NUL (mnl_attr_put_str); the kernel accepts both.
            writer.Attribute(2 /* NFTA_OBJREF_IMM_NAME */, Encoding.UTF8.GetBytes(counter));
            End(writer, objref);
        }
        Action(writer, rule.Action);
    }

    /// <summary><c>ct state S1,S2</c>: any of the state bits in <paramref name="bits"/> (ct state is a host-order u32).</summary>
    private static void CtStateAny(NetlinkWriter writer, uint bits)
    {
        var ct = Begin(writer, "ct");
        writer.UInt32BigEndian(2 /* NFTA_CT_KEY */, CtState);
        writer.UInt32BigEndian(1 /* NFTA_CT_DREG */, Register1);
        End(writer, ct);
        var mask = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(mask, bits);
        Bitwise(writer, mask);
        Cmp(writer, CmpNeq, new byte[4]);
    }

    private static void Action(NetlinkWriter writer, FirewallAction action)
    {
        switch (action)
        {
            case AcceptAction:
                Verdict(writer, NfTables.VerdictAccept, null);
                break;
            case DropAction:
                Verdict(writer, NfTables.VerdictDrop, null);
                break;
            case JumpAction jump:
                Verdict(writer, NfTables.VerdictJump, jump.Chain);
                break;
            case RejectAction:
                var reject = Begin(writer, "reject");
                writer.UInt32BigEndian(1 /* NFTA_REJECT_TYPE */, RejectIcmpx);
                writer.Byte(2 /* NFTA_REJECT_ICMP_CODE */, RejectIcmpxAdminProhibited);
                End(writer, reject);
                break;
            case MasqueradeAction:
                // nft sends an empty NFTA_EXPR_DATA for a masquerade without flags or ports.
                End(writer, Begin(writer, "masq"));
                break;
            case DestinationNatAction dnat:
                var address = dnat.Address.GetAddressBytes();
                var immediate = Begin(writer, "immediate");
                writer.UInt32BigEndian(1 /* NFTA_IMMEDIATE_DREG */, Register1);
                var data = writer.BeginNested(2 /* NFTA_IMMEDIATE_DATA */);
                writer.Attribute(NfTables.DataValue, address);
                writer.EndNested(data);
                End(writer, immediate);
                var nat = Begin(writer, "nat");
                writer.UInt32BigEndian(1 /* NFTA_NAT_TYPE */, NatTypeDnat);
                writer.UInt32BigEndian(2 /* NFTA_NAT_FAMILY */, FamilyOf(dnat.Address));
                writer.UInt32BigEndian(3 /* NFTA_NAT_REG_ADDR_MIN */, Register1);
                End(writer, nat);
                break;
            default:
                throw new ArgumentException($"Unknown action {action}.", nameof(action));
        }
    }

    /// <summary>
    /// nft's prefix handling: a single address compares the whole address; a byte-aligned prefix loads only the prefix's
    /// bytes (no mask needed); any other prefix (including /0) loads the whole address and masks it first.
    /// </summary>
    private static void Address(NetlinkWriter writer, AddressMatch match)
    {
        var network = match.Network;
        var bytes = network.BaseAddress.GetAddressBytes();
        var ipv4 = bytes.Length == 4;
        var offset = (ipv4, match.Source) switch
        {
            (true, true) => 12u,
            (true, false) => 16u,
            (false, true) => 8u,
            (false, false) => 24u,
        };
        var prefix = network.PrefixLength;
        var op = match.Negated ? CmpNeq : CmpEq;
        if (prefix == bytes.Length * 8 || (prefix > 0 && prefix % 8 == 0))
        {
            var length = prefix / 8;
            Payload(writer, PayloadNetworkHeader, offset, (uint)length);
            Cmp(writer, op, bytes.AsSpan(0, length));
            return;
        }
        Payload(writer, PayloadNetworkHeader, offset, (uint)bytes.Length);
        var mask = new byte[bytes.Length];
        for (var bit = 0; bit < prefix; bit++)
        {
            mask[bit / 8] |= (byte)(0x80 >> (bit % 8));
        }
        Bitwise(writer, mask);
        Cmp(writer, op, bytes);
    }

    private static void NetworkDependency(NetlinkWriter writer, ref byte? known, byte family)
    {
        if (Learn(ref known, family))
        {
            Meta(writer, MetaNfproto);
            Cmp(writer, CmpEq, [family]);
        }
    }

    private static void TransportDependency(NetlinkWriter writer, ref byte? known, byte protocol)
    {
        if (Learn(ref known, protocol))
        {
            Meta(writer, MetaL4proto);
            Cmp(writer, CmpEq, [protocol]);
        }
    }

    /// <returns>True when the protocol was not known yet (so a dependency match is needed).</returns>
    private static bool Learn(ref byte? known, byte value)
    {
        if (known is { } current)
        {
            // nft refuses such a rule too ("conflicting protocols"): it could never match.
            return current == value
                ? false
                : throw new ArgumentException($"The rule matches protocol {value} after protocol {current}; it could never match.");
        }
        known = value;
        return true;
    }

    private static void Meta(NetlinkWriter writer, uint key)
    {
        var meta = Begin(writer, "meta");
        writer.UInt32BigEndian(2 /* NFTA_META_KEY */, key);
        writer.UInt32BigEndian(1 /* NFTA_META_DREG */, Register1);
        End(writer, meta);
    }

    private static void Payload(NetlinkWriter writer, uint header, uint offset, uint length)
    {
        var payload = Begin(writer, "payload");
        writer.UInt32BigEndian(1 /* NFTA_PAYLOAD_DREG */, Register1);
        writer.UInt32BigEndian(2 /* NFTA_PAYLOAD_BASE */, header);
        writer.UInt32BigEndian(3 /* NFTA_PAYLOAD_OFFSET */, offset);
        writer.UInt32BigEndian(4 /* NFTA_PAYLOAD_LEN */, length);
        End(writer, payload);
    }

    private static void Cmp(NetlinkWriter writer, uint op, ReadOnlySpan<byte> value)
    {
        var cmp = Begin(writer, "cmp");
        writer.UInt32BigEndian(1 /* NFTA_CMP_SREG */, Register1);
        writer.UInt32BigEndian(2 /* NFTA_CMP_OP */, op);
        var data = writer.BeginNested(3 /* NFTA_CMP_DATA */);
        writer.Attribute(NfTables.DataValue, value);
        writer.EndNested(data);
        End(writer, cmp);
    }

    /// <summary>reg1 = (reg1 &amp; mask) ^ 0, the only bitwise form nft 1.0.6 emits for these matches (no NFTA_BITWISE_OP).</summary>
    private static void Bitwise(NetlinkWriter writer, ReadOnlySpan<byte> mask)
    {
        var bitwise = Begin(writer, "bitwise");
        writer.UInt32BigEndian(1 /* NFTA_BITWISE_SREG */, Register1);
        writer.UInt32BigEndian(2 /* NFTA_BITWISE_DREG */, Register1);
        writer.UInt32BigEndian(3 /* NFTA_BITWISE_LEN */, (uint)mask.Length);
        var maskData = writer.BeginNested(4 /* NFTA_BITWISE_MASK */);
        writer.Attribute(NfTables.DataValue, mask);
        writer.EndNested(maskData);
        var xor = writer.BeginNested(5 /* NFTA_BITWISE_XOR */);
        writer.Attribute(NfTables.DataValue, new byte[mask.Length]);
        writer.EndNested(xor);
        End(writer, bitwise);
    }

    private static void Verdict(NetlinkWriter writer, uint code, string? chain)
    {
        var immediate = Begin(writer, "immediate");
        writer.UInt32BigEndian(1 /* NFTA_IMMEDIATE_DREG */, RegisterVerdict);
        var data = writer.BeginNested(2 /* NFTA_IMMEDIATE_DATA */);
        var verdict = writer.BeginNested(NfTables.DataVerdict);
        writer.UInt32BigEndian(NfTables.VerdictCode, code);
        if (chain is not null)
        {
            writer.String(NfTables.VerdictChain, chain);
        }
        writer.EndNested(verdict);
        writer.EndNested(data);
        End(writer, immediate);
    }

    /// <summary>NFTA_LIST_ELEM { NFTA_EXPR_NAME, NFTA_EXPR_DATA { … } }; returns both starts for <see cref="End"/>.</summary>
    private static (int Element, int Data) Begin(NetlinkWriter writer, string name)
    {
        var element = writer.BeginNested(NfTables.ListElement);
        writer.String(NfTables.ExprName, name);
        return (element, writer.BeginNested(NfTables.ExprData));
    }

    private static void End(NetlinkWriter writer, (int Element, int Data) expression)
    {
        writer.EndNested(expression.Data);
        writer.EndNested(expression.Element);
    }

    /// <summary>Interface names compare all IFNAMSIZ bytes, NUL-padded, as nft does for a name without wildcard.</summary>
    private static byte[] InterfaceName(string name)
    {
        var bytes = new byte[InterfaceNameSize];
        if (string.IsNullOrEmpty(name) || name.Contains('\0', StringComparison.Ordinal)
            || Encoding.UTF8.GetByteCount(name) > InterfaceNameSize - 1)
        {
            throw new ArgumentException($"Interface name '{name}' must be 1 to {InterfaceNameSize - 1} bytes without NUL.", nameof(name));
        }
        Encoding.UTF8.GetBytes(name, bytes);
        return bytes;
    }

    private static byte Family(IpFamily family) => family == IpFamily.Ipv4 ? NfTables.FamilyIpv4 : NfTables.FamilyIpv6;

    private static byte FamilyOf(IPAddress address) => address.AddressFamily switch
    {
        AddressFamily.InterNetwork => NfTables.FamilyIpv4,
        AddressFamily.InterNetworkV6 => NfTables.FamilyIpv6,
        _ => throw new ArgumentException($"Unsupported address family {address.AddressFamily}.", nameof(address)),
    };
}
