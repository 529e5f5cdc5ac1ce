using System.Buffers.Binary;
using System.Globalization;

namespace Vpn.Domain.Addressing;

/// <summary>
/// A node's IPv6 client network (a ULA /64 by default, e.g. fd64:6400::/64), paired with its IPv4 pool: a client's
/// IPv6 address is its IPv4 address's offset in the IPv4 pool, placed in this network (10.64.0.2 in 10.64.0.0/16 is
/// fd64:6400::2). The mapping is one-to-one, so everything the IPv4 pool guarantees — unique per node, quarantined after
/// release, reconciled — holds for the IPv6 address too, with no second allocator to keep in step; the gateway is
/// offset 1 in both (10.64.0.1, fd64:6400::1).
/// </summary>
public sealed class Ipv6ClientNetwork
{
    private readonly UInt128 _base;

    private Ipv6ClientNetwork(UInt128 value, int prefixLength, Ipv4Network pool4)
    {
        _base = value;
        PrefixLength = prefixLength;
        Pool4 = pool4;
        Network = new IPNetwork(ToAddress(value), prefixLength);
        Gateway = AddressAt(1);
    }

    public IPNetwork Network { get; }

    public int PrefixLength { get; }

    /// <summary>The IPv4 pool whose offsets this network mirrors.</summary>
    public Ipv4Network Pool4 { get; }

    /// <summary>The node's own IPv6 tunnel address (offset 1), also the IPv6 resolver handed to clients.</summary>
    public IPAddress Gateway { get; }

    /// <param name="text">A canonical IPv6 CIDR with zero host bits, e.g. fd64:6400::/64.</param>
    /// <param name="pool4">The IPv4 pool: the network must have at least as many host bits as it.</param>
    public static bool TryCreate(string? text, Ipv4Network pool4, [NotNullWhen(true)] out Ipv6ClientNetwork? network,
        [NotNullWhen(false)] out string? error)
    {
        ArgumentNullException.ThrowIfNull(pool4);
        network = null;
        var slash = text?.IndexOf('/', StringComparison.Ordinal) ?? -1;
        if (text is null || slash < 0 || !IPAddress.TryParse(text.AsSpan(0, slash), out var address)
            || address.AddressFamily != AddressFamily.InterNetworkV6 || address.ScopeId != 0
            || !int.TryParse(text.AsSpan(slash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var prefix) || prefix is < 1 or > 128)
        {
            error = $"'{text}' is not an IPv6 CIDR network such as fd64:6400::/64.";
            return false;
        }
        var value = ToUInt128(address);
        var hostBits = 128 - prefix;
        if (hostBits < 128 && (value & (UInt128.MaxValue >> prefix)) != UInt128.Zero)
        {
            error = $"'{text}' has host bits set; the network is {ToAddress(value & ~(UInt128.MaxValue >> prefix))}/{prefix}.";
            return false;
        }
        // Never link-local, multicast or IPv4-mapped space. (::/N stays allowed: its gateway is ::1, which keeps a test core's
        // resolver check on loopback; a production pool is a ULA or global prefix.)
        var top16 = (ushort)(value >> 112);
        if ((top16 & 0xffc0) == 0xfe80 || (top16 & 0xff00) == 0xff00 || (value >> 32) == 0xffff)
        {
            error = $"'{text}' is link-local, multicast or IPv4-mapped space; use a unique local (fc00::/7) or global prefix.";
            return false;
        }
        if (hostBits < 32 - pool4.PrefixLength)
        {
            error = $"'{text}' is too small for the IPv4 pool {pool4}: it needs at least {32 - pool4.PrefixLength} host bits (a /{96 + pool4.PrefixLength} or larger).";
            return false;
        }
        network = new Ipv6ClientNetwork(value, prefix, pool4);
        error = null;
        return true;
    }

    /// <summary>The IPv6 address paired with <paramref name="ipv4"/>, an address of <see cref="Pool4"/>.</summary>
    public IPAddress AddressFor(IPAddress ipv4)
    {
        ArgumentNullException.ThrowIfNull(ipv4);
        var value = Ipv4Network.ToUInt32(ipv4);
        if (ipv4.AddressFamily != AddressFamily.InterNetwork || !Pool4.Contains(value))
        {
            throw new ArgumentException($"{ipv4} is not an address of {Pool4}.", nameof(ipv4));
        }
        return AddressAt(value - Pool4.Base);
    }

    /// <summary>The IPv4 address paired with <paramref name="ipv6"/>; false when it is not this network's mirror of one.</summary>
    public bool TryGetIpv4(IPAddress ipv6, [NotNullWhen(true)] out IPAddress? ipv4)
    {
        ArgumentNullException.ThrowIfNull(ipv6);
        ipv4 = null;
        if (ipv6.AddressFamily != AddressFamily.InterNetworkV6)
        {
            return false;
        }
        var offset = ToUInt128(ipv6) - _base;
        if (ToUInt128(ipv6) < _base || offset >= (UInt128)Pool4.Size)
        {
            return false;
        }
        ipv4 = Ipv4Network.ToAddress(Pool4.Base + (uint)offset);
        return true;
    }

    public override string ToString() => $"{ToAddress(_base)}/{PrefixLength.ToString(CultureInfo.InvariantCulture)}";

    private IPAddress AddressAt(UInt128 offset) => ToAddress(_base + offset);

    private static UInt128 ToUInt128(IPAddress address)
    {
        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out _);
        return BinaryPrimitives.ReadUInt128BigEndian(bytes);
    }

    private static IPAddress ToAddress(UInt128 value)
    {
        Span<byte> bytes = stackalloc byte[16];
        BinaryPrimitives.WriteUInt128BigEndian(bytes, value);
        return new IPAddress(bytes);
    }
}
