using System.Diagnostics.CodeAnalysis;
using System.Text.RegularExpressions;
using Vpn.Domain.WireGuard;

namespace Vpn.Entry.Http;

/// <summary>Field checks shared by the endpoints; each failure names the field, never echoes the value.</summary>
public static partial class Validation
{
    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    private static partial Regex CodePattern();

    [GeneratedRegex("^[A-Za-z]{2}$")]
    private static partial Regex CountryPattern();

    public static string RequireCode(string? value, string field)
    {
        var code = Require(value, field);
        return CodePattern().IsMatch(code) ? code : throw ApiProblemException.BadRequest($"'{field}' must be 1-64 letters, digits, '.', '_' or '-'.");
    }

    public static string? OptionalCode(string? value, string field) => value is null ? null : RequireCode(value, field);

    public static string? OptionalCountry(string? value, string field) =>
        value is null ? null
        : CountryPattern().IsMatch(value) ? value.ToUpperInvariant()
        : throw ApiProblemException.BadRequest($"'{field}' must be a two-letter country code.");

    public static string Require([NotNull] string? value, string field) =>
        string.IsNullOrWhiteSpace(value) ? throw ApiProblemException.BadRequest($"'{field}' is required.") : value;

    public static T Require<T>([NotNull] T? value, string field) where T : struct =>
        value ?? throw ApiProblemException.BadRequest($"'{field}' is required.");

    public static string RequireText(string? value, string field, int maxLength)
    {
        var text = Require(value, field).Trim();
        if (text.Length > maxLength || text.Any(char.IsControl))
        {
            throw ApiProblemException.BadRequest($"'{field}' must be at most {maxLength} printable characters.");
        }
        return text;
    }

    public static Guid RequireGuid(string? value, string field) =>
        Guid.TryParseExact(Require(value, field), "D", out var id) ? id : throw ApiProblemException.BadRequest($"'{field}' must be a UUID.");

    public static int RequireRange(int? value, string field, int min, int max)
    {
        var number = Require(value, field);
        return number >= min && number <= max ? number : throw ApiProblemException.BadRequest($"'{field}' must be between {min} and {max}.");
    }

    public static long RequireRange(long? value, string field, long min, long max)
    {
        var number = Require(value, field);
        return number >= min && number <= max ? number : throw ApiProblemException.BadRequest($"'{field}' must be between {min} and {max}.");
    }

    /// <summary>
    /// Canonical base64 of 32 bytes that is an acceptable X25519 public key: not of small order (the all-zero key, WireGuard's
    /// "no key", among them) and canonically encoded, so one point has one spelling (<see cref="WireGuardKey.CheckPublicKey"/>).
    /// </summary>
    public static WireGuardKey RequirePublicKey(string? value, string field = "public_key")
    {
        if (value is null)
        {
            throw ApiProblemException.BadRequest($"'{field}' is required.", ErrorCodes.InvalidPublicKey);
        }
        if (!WireGuardKey.TryParseBase64(value, out var key))
        {
            throw ApiProblemException.BadRequest($"'{field}' must be the base64 of a 32-byte WireGuard public key.", ErrorCodes.InvalidPublicKey);
        }
        return key.CheckPublicKey() switch
        {
            PublicKeyDefect.None => key,
            PublicKeyDefect.SmallOrder => throw ApiProblemException.BadRequest(
                $"'{field}' is a point of small order, not a usable WireGuard public key.", ErrorCodes.InvalidPublicKey),
            _ => throw ApiProblemException.BadRequest(
                $"'{field}' is not canonically encoded (bit 255 set, or at least 2^255-19); use the key `wg pubkey` prints.", ErrorCodes.InvalidPublicKey),
        };
    }

    /// <summary>host:port or [v6]:port, as clients will put it in Endpoint =.</summary>
    public static string RequireEndpoint(string? value, string field)
    {
        var text = Require(value, field);
        var colon = text.LastIndexOf(':');
        var valid = text.Length <= 255 && colon > 0
            && int.TryParse(text.AsSpan(colon + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var port)
            && port is > 0 and <= 65535
            && Uri.CheckHostName(text[..colon].Trim('[', ']')) != UriHostNameType.Unknown;
        return valid ? text : throw ApiProblemException.BadRequest($"'{field}' must be host:port.");
    }
}
