using System.Security.Cryptography;

namespace Vpn.Domain.WireGuard;

/// <summary>
/// A 32-byte Curve25519 key as WireGuard uses it. People and the HTTP API see base64
/// (44 characters with one '=' pad); the UAPI protocol sees lowercase hex (64 characters).
/// The all-zero key is representable (UAPI uses it to mean "no key") but is never a valid peer key; neither is any key
/// <see cref="CheckPublicKey"/> refuses (small-order points, non-canonical encodings).
/// </summary>
public readonly struct WireGuardKey : IEquatable<WireGuardKey>
{
    public const int Length = 32;

    // Compared against, never written: IsZero runs for every peer of every Connect and UAPI write.
    private static readonly byte[] Zero = new byte[Length];

    // The u-coordinates of small order with bit 255 clear (libsodium crypto_scalarmult/curve25519 ref10 has_small_order):
    // 0 (order 4), 1 (order 1), the two points of order 8, p-1 (order 2), p (= 0) and p+1 (= 1).
    private static readonly byte[][] SmallOrderPoints =
    [
        new byte[Length],
        [0x01, .. new byte[Length - 1]],
        Convert.FromHexString("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
        Convert.FromHexString("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
        Convert.FromHexString("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
        Convert.FromHexString("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
        Convert.FromHexString("eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    ];

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

    /// <summary>
    /// Random key material, e.g. for tests; not clamped (WireGuard clamps private keys itself). Bit 255 is clear, so the
    /// value is also a canonical public key encoding (clamping clears that bit of a private key anyway).
    /// </summary>
    public static WireGuardKey Generate()
    {
        var bytes = RandomNumberGenerator.GetBytes(Length);
        bytes[Length - 1] &= 0x7f;
        return new(bytes);
    }

    /// <summary>
    /// This key as a clamped Curve25519 private scalar (RFC 7748 §5: the low three bits and bit 255 cleared, bit 254 set):
    /// what WireGuard keeps, and reports over UAPI, for any private key it is given. Clamping a clamped key changes nothing.
    /// </summary>
    public WireGuardKey ClampPrivateKey()
    {
        var bytes = Bytes.ToArray();
        bytes[0] &= 248;
        bytes[Length - 1] = (byte)((bytes[Length - 1] & 127) | 64);
        return new(bytes);
    }

    /// <summary>True when <see cref="CheckPublicKey"/> finds nothing wrong: the key may be a peer's public key.</summary>
    public bool IsAcceptablePublicKey => CheckPublicKey() == PublicKeyDefect.None;

    /// <summary>
    /// Why this key cannot be a peer's public key (an X25519 u-coordinate, little-endian), or
    /// <see cref="PublicKeyDefect.None"/>. A small-order point (libsodium's blacklist: 0, 1, p-1, the two points of
    /// order 8, and their other spellings p, p+1 and "bit 255 set") makes every Diffie-Hellman result with it one of a
    /// handful of values an attacker knows. A non-canonical encoding (bit 255 set, or u ≥ p = 2^255-19) is the same point
    /// as another, canonical, spelling, so one device could hold one point under two "different" keys.
    /// Public keys are public: the comparisons need not be constant-time.
    /// </summary>
    public PublicKeyDefect CheckPublicKey()
    {
        var bytes = Bytes;
        // X25519 ignores bit 255 (RFC 7748 §5), so a blacklisted point with it set is the same point.
        Span<byte> u = stackalloc byte[Length];
        bytes.CopyTo(u);
        u[Length - 1] &= 0x7f;
        foreach (var point in SmallOrderPoints)
        {
            if (u.SequenceEqual(point))
            {
                return PublicKeyDefect.SmallOrder;
            }
        }
        return (bytes[Length - 1] & 0x80) != 0 || IsAtLeastP(u) ? PublicKeyDefect.NonCanonical : PublicKeyDefect.None;
    }

    // u (bit 255 clear) ≥ p = 2^255 - 19: 0x7f, thirty 0xff, then a low byte ≥ 0xed (little-endian).
    private static bool IsAtLeastP(ReadOnlySpan<byte> u) => u[Length - 1] == 0x7f && !u[1..(Length - 1)].ContainsAnyExcept((byte)0xff) && u[0] >= 0xed;

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

/// <summary>Why a key is refused as a peer's public key (<see cref="WireGuardKey.CheckPublicKey"/>).</summary>
public enum PublicKeyDefect
{
    /// <summary>Nothing wrong: a canonical encoding of a point that is not of small order.</summary>
    None,

    /// <summary>A point of small order (including the all-zero key), in any spelling.</summary>
    SmallOrder,

    /// <summary>Bit 255 set, or a u-coordinate ≥ 2^255-19: another spelling of a point that has a canonical one.</summary>
    NonCanonical,
}
