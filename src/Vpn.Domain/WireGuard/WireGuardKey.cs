using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;

namespace Vpn.Domain.WireGuard;

/// <summary>
/// A 32-byte Curve25519 key as WireGuard uses it. People and the HTTP API see base64
/// (44 characters with one '=' pad); the UAPI protocol sees lowercase hex (64 characters).
/// The all-zero key is representable (UAPI uses it to mean "no key") but is never a valid peer key.
/// </summary>
public readonly struct WireGuardKey : IEquatable<WireGuardKey>
{
    public const int Length = 32;

    // Compared against, never written: IsZero runs for every peer of every Connect and UAPI write.
    private static readonly byte[] Zero = new byte[Length];

    private readonly byte[]? _bytes;

    private WireGuardKey(byte[] bytes) => _bytes = bytes;

    public ReadOnlySpan<byte> Bytes => _bytes ?? new byte[Length];

    public bool IsZero => _bytes is null || CryptographicOperations.FixedTimeEquals(_bytes, Zero);

    public static WireGuardKey FromBytes(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length != Length)
        {
            throw new ArgumentException($"A WireGuard key is {Length} bytes, got {bytes.Length}.", nameof(bytes));
        }
        return new WireGuardKey(bytes.ToArray());
    }

    /// <summary>Random key material, e.g. for tests; not clamped (WireGuard clamps private keys itself).</summary>
    public static WireGuardKey Generate() => new(RandomNumberGenerator.GetBytes(Length));

    /// <summary>Parses canonical base64 of exactly 32 bytes; rejects whitespace, URL-safe alphabet and other lengths.</summary>
    public static bool TryParseBase64([NotNullWhen(true)] string? text, out WireGuardKey key)
    {
        key = default;
        if (text is null || text.Length != 44 || text[43] != '=' || text[42] == '=')
        {
            return false;
        }
        Span<byte> buffer = stackalloc byte[33];
        if (!Convert.TryFromBase64String(text, buffer, out var written) || written != Length)
        {
            return false;
        }
        // Reject non-canonical encodings (stray low bits in the last character) so one key has one spelling. Re-encoded
        // on the stack: this is on the path of every Connect.
        Span<char> canonical = stackalloc char[44];
        if (!Convert.TryToBase64Chars(buffer[..Length], canonical, out var chars) || !canonical[..chars].SequenceEqual(text))
        {
            return false;
        }
        key = new WireGuardKey(buffer[..Length].ToArray());
        return true;
    }

    public static WireGuardKey ParseBase64(string text) =>
        TryParseBase64(text, out var key) ? key : throw new FormatException("Not a base64 WireGuard key of 32 bytes.");

    public static bool TryParseHex([NotNullWhen(true)] string? text, out WireGuardKey key)
    {
        key = default;
        if (text is null || text.Length != 2 * Length)
        {
            return false;
        }
        try
        {
            key = new WireGuardKey(Convert.FromHexString(text));
            return true;
        }
        catch (FormatException)
        {
            return false;
        }
    }

    public string ToBase64() => Convert.ToBase64String(Bytes);

    /// <summary>Lowercase hex, the UAPI spelling.</summary>
    public string ToHex() => Convert.ToHexStringLower(Bytes);

    public override string ToString() => ToBase64();

    public bool Equals(WireGuardKey other) => Bytes.SequenceEqual(other.Bytes);

    public override bool Equals(object? obj) => obj is WireGuardKey other && Equals(other);

    public override int GetHashCode()
    {
        var hash = new HashCode();
        hash.AddBytes(Bytes);
        return hash.ToHashCode();
    }

    public static bool operator ==(WireGuardKey left, WireGuardKey right) => left.Equals(right);

    public static bool operator !=(WireGuardKey left, WireGuardKey right) => !left.Equals(right);
}
