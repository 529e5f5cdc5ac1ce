using System.Buffers.Text;
using System.Text.Json;

namespace Vpn.Entry.Auth;

/// <summary>
/// The JSON of a compact JWS's header or payload, read again strictly after the token handler accepted it. RFC 7515 §4
/// lets a parser take the last of two equal names; we refuse them (as every request body), so a claim cannot mean one
/// thing to the handler and another to us or to whoever logs the token.
/// </summary>
internal static class JoseJson
{
    private static readonly JsonDocumentOptions Strict = new() { AllowDuplicateProperties = false, MaxDepth = 16 };

    /// <summary>The segment's JSON object, or null when it is not base64url of one JSON object with unique names.</summary>
    public static JsonDocument? ParseObject(string base64Url)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(Base64Url.DecodeFromChars(base64Url), Strict);
        }
        catch (Exception e) when (e is FormatException or JsonException)
        {
            return null;
        }
        if (document.RootElement.ValueKind == JsonValueKind.Object)
        {
            return document;
        }
        document.Dispose();
        return null;
    }

    /// <summary>
    /// A NumericDate claim (RFC 7519 §2: a JSON number of seconds): false when it is present as anything else (a string
    /// "1700000000" included), or absent while required. <paramref name="seconds"/> is NaN when absent.
    /// </summary>
    public static bool TryNumericDate(JsonElement claims, string name, bool required, out double seconds)
    {
        seconds = double.NaN;
        if (!claims.TryGetProperty(name, out var value))
        {
            return !required;
        }
        return value.ValueKind == JsonValueKind.Number && value.TryGetDouble(out seconds) && double.IsFinite(seconds);
    }
}
