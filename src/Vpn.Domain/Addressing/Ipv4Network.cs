using System.Globalization;

namespace Vpn.Domain.Addressing;

/// <summary>An IPv4 network in CIDR form, e.g. 10.64.0.0/16. Host bits of the base are always zero.</summary>
public sealed record Ipv4Network(uint Base, int PrefixLength)
{
    public uint Mask => PrefixLength == 0 ? 0u : uint.MaxValue << (32 - PrefixLength);

    public uint Broadcast => Base | ~Mask;

    /// <summary>Number of addresses including network and broadcast.</summary>
    public long Size => 1L << (32 - PrefixLength);

    public bool Contains(uint address) => (address & Mask) == Base;

    public static bool TryParse([NotNullWhen(true)] string? text, [NotNullWhen(true)] out Ipv4Network? network)
    {
        network = null;
        var slash = text?.IndexOf('/', StringComparison.Ordinal) ?? -1;
        if (text is null || slash < 0
            || !IPAddress.TryParse(text.AsSpan(0, slash), out var address)
            || address.AddressFamily != AddressFamily.InterNetwork
            || !int.TryParse(text.AsSpan(slash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var prefix)
            || prefix is < 0 or > 32)
        {
            return false;
        }
        // One spelling per network: IPAddress also takes inet_aton forms ("10.064.0.0" is octal, "10.0" is short),
        // which would silently turn a typo into another network.
        if (!text.AsSpan(0, slash).SequenceEqual(address.ToString())
            || !text.AsSpan(slash + 1).SequenceEqual(prefix.ToString(CultureInfo.InvariantCulture)))
        {
            return false;
        }
        var value = ToUInt32(address);
        var candidate = new Ipv4Network(value, prefix);
        if ((value & candidate.Mask) != value)
        {
            return false;
        }
        network = candidate;
        return true;
    }

    public static Ipv4Network Parse(string text) =>
        TryParse(text, out var network) ? network : throw new FormatException($"Not an IPv4 CIDR network: '{text}'.");

    public static uint ToUInt32(IPAddress address)
    {
        Span<byte> bytes = stackalloc byte[4];
        address.TryWriteBytes(bytes, out _);
        return (uint)(bytes[0] << 24 | bytes[1] << 16 | bytes[2] << 8 | bytes[3]);
    }

    public static IPAddress ToAddress(uint value) =>
        new([(byte)(value >> 24), (byte)(value >> 16), (byte)(value >> 8), (byte)value]);

    public override string ToString() => $"{ToAddress(Base)}/{PrefixLength.ToString(CultureInfo.InvariantCulture)}";
}
