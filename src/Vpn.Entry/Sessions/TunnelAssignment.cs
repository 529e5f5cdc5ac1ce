using System.Diagnostics.CodeAnalysis;
using System.Net;
using System.Net.Sockets;
using Vpn.Contracts.Core.V1;

namespace Vpn.Entry.Sessions;

/// <summary>
/// What a node's core assigned a session at Connect, checked before anything is stored or handed to a client (the
/// values end up in the database, in the desired-peer set every core reconciles from, and in the wg-quick file).
/// </summary>
/// <param name="Address">The client's IPv4 tunnel prefix in canonical text, always a /32, e.g. "10.64.0.2/32".</param>
/// <param name="AddressV6">The client's IPv6 tunnel prefix in canonical (RFC 5952) text, always a /128, e.g.
/// "fd64:6400::2/128"; null from a core without IPv6.</param>
/// <param name="Dns">Resolver addresses in canonical text, in core's order (IPv4 first); may be empty.</param>
public sealed record TunnelAssignment(string Address, string? AddressV6, IReadOnlyList<string> Dns)
{
    /// <summary>Every prefix of the session, IPv4 first: what wg-quick's Address and the answer's interface.addresses list.</summary>
    public IReadOnlyList<string> Addresses => AddressV6 is null ? [Address] : [Address, AddressV6];

    /// <summary>
    /// Reads core's answer; false (with the name of the first bad field, safe to log) when any part is malformed.
    /// Text must already be canonical: a core that writes addresses differently is not trusted to mean the same address.
    /// </summary>
    public static bool TryRead(ConnectResponse response, [NotNullWhen(true)] out TunnelAssignment? assignment,
        [NotNullWhen(false)] out string? badField)
    {
        ArgumentNullException.ThrowIfNull(response);
        assignment = null;
        if (!IsHostPrefix(response.AssignedAddress, AddressFamily.InterNetwork))
        {
            badField = "assigned_address";
            return false;
        }
        // Empty is how proto3 says "not set": an older core, or one without IPv6.
        var v6 = response.AssignedAddressV6.Length == 0 ? null : response.AssignedAddressV6;
        if (v6 is not null && !IsHostPrefix(v6, AddressFamily.InterNetworkV6))
        {
            badField = "assigned_address_v6";
            return false;
        }
        foreach (var resolver in response.Dns)
        {
            if (!IsCanonicalAddress(resolver, out _))
            {
                badField = "dns";
                return false;
            }
        }
        badField = null;
        assignment = new TunnelAssignment(response.AssignedAddress, v6, [.. response.Dns]);
        return true;
    }

    /// <summary>"a.b.c.d/32" or "x:y::z/128": a single host of <paramref name="family"/>, in canonical text.</summary>
    private static bool IsHostPrefix(string text, AddressFamily family)
    {
        var slash = text.IndexOf('/', StringComparison.Ordinal);
        return slash > 0
            && text.AsSpan(slash + 1).SequenceEqual(family == AddressFamily.InterNetwork ? "32" : "128")
            && IsCanonicalAddress(text[..slash], out var address)
            && address.AddressFamily == family;
    }

    private static bool IsCanonicalAddress(string text, [NotNullWhen(true)] out IPAddress? address) =>
        IPAddress.TryParse(text, out address)
        && (address.AddressFamily == AddressFamily.InterNetwork
            || (address.AddressFamily == AddressFamily.InterNetworkV6 && address.ScopeId == 0 && !address.IsIPv4MappedToIPv6))
        && address.ToString() == text;
}
