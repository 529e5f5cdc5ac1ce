using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Org.BouncyCastle.Crypto.Parameters;
using Org.BouncyCastle.Crypto.Signers;

namespace Vpn.Contracts.Http;

/// <summary>One location of the public server list: where a client can connect, how busy it is. No address, no key.</summary>
public sealed record LocationEntry(
    [property: JsonPropertyName("region")] string Region,
    [property: JsonPropertyName("country_code")] string? CountryCode,
    [property: JsonPropertyName("city_code")] string? CityCode,
    [property: JsonPropertyName("pool")] string? Pool,
    [property: JsonPropertyName("load")] string Load,
    [property: JsonPropertyName("available")] bool Available);

/// <summary>What GET /v1/locations signs: its validity, the locations, and the id of the key that signs it.</summary>
public sealed record LocationsPayload(
    [property: JsonPropertyName("issued_at")] DateTimeOffset IssuedAt,
    [property: JsonPropertyName("expires_at")] DateTimeOffset ExpiresAt,
    [property: JsonPropertyName("locations")] IReadOnlyList<LocationEntry> Locations,
    [property: JsonPropertyName("key_id")] string KeyId);

public enum LocationsVerdict
{
    Valid,
    Malformed,
    UnknownKey,
    BadSignature,
    Expired,
    NotYetValid,
}

/// <summary>A verified list, or why it is not one.</summary>
public sealed record LocationsVerification(LocationsVerdict Verdict, LocationsPayload? Payload)
{
    public bool IsValid => Verdict == LocationsVerdict.Valid;
}

/// <summary>
/// The signed server list's wire format. The body is the payload's JSON object with one more member at its end:
/// <c>{"issued_at":…,"expires_at":…,"locations":[…],"key_id":"…","signature":"&lt;base64url&gt;"}</c>. The signature is
/// Ed25519 over the body's bytes with the final <c>,"signature":"…"</c> member left out (the payload exactly as sent,
/// closed by its <c>}</c>), so a client verifies the bytes it received without re-serializing anything, then checks
/// that <c>key_id</c> names a key it trusts and that now lies between <c>issued_at</c> and <c>expires_at</c>.
/// </summary>
public static class SignedLocations
{
    private static readonly byte[] SignatureMember = Encoding.UTF8.GetBytes(",\"signature\":\"");

    private static readonly JsonSerializerOptions Json = new() { DefaultIgnoreCondition = JsonIgnoreCondition.Never };

    /// <summary>The id of a public key as the list names it: "ed25519-" and the first 8 bytes of its SHA-256, in hex.</summary>
    public static string KeyId(ReadOnlySpan<byte> publicKey) =>
        "ed25519-" + Convert.ToHexStringLower(SHA256.HashData(publicKey)[..8]);

    /// <summary>The body to send: the payload's JSON with its signature appended as the last member.</summary>
    public static byte[] Sign(LocationsPayload payload, Ed25519PrivateKeyParameters key)
    {
        ArgumentNullException.ThrowIfNull(payload);
        ArgumentNullException.ThrowIfNull(key);
        var signed = JsonSerializer.SerializeToUtf8Bytes(payload, Json);
        var signer = new Ed25519Signer();
        signer.Init(true, key);
        signer.BlockUpdate(signed, 0, signed.Length);
        var signature = Encoding.UTF8.GetBytes(Base64Url(signer.GenerateSignature()));
        // payload without its closing brace + ,"signature":"…"}
        return [.. signed.AsSpan(0, signed.Length - 1), .. SignatureMember, .. signature, (byte)'"', (byte)'}'];
    }

    /// <summary>Checks a body as received against the trusted public keys (by key id) and the clock.</summary>
    public static LocationsVerification Verify(ReadOnlySpan<byte> body, IReadOnlyDictionary<string, byte[]> trustedPublicKeys, DateTimeOffset now,
        TimeSpan clockSkew)
    {
        ArgumentNullException.ThrowIfNull(trustedPublicKeys);
        var at = body.LastIndexOf(SignatureMember);
        // The signature member must be last: only its base64url value and the closing "} may follow it.
        if (at <= 0 || body.Length < at + SignatureMember.Length + 2 || body[^1] != '}' || body[^2] != '"')
        {
            return new(LocationsVerdict.Malformed, null);
        }
        var signatureText = Encoding.ASCII.GetString(body[(at + SignatureMember.Length)..^2]);
        byte[] signed = [.. body[..at], (byte)'}'];
        LocationsPayload? payload;
        byte[] signature;
        try
        {
            payload = JsonSerializer.Deserialize<LocationsPayload>(signed, Json);
            signature = FromBase64Url(signatureText);
        }
        catch (Exception e) when (e is JsonException or FormatException)
        {
            return new(LocationsVerdict.Malformed, null);
        }
        if (payload?.KeyId is null || payload.Locations is null || signature.Length != Ed25519.SignatureSize)
        {
            return new(LocationsVerdict.Malformed, null);
        }
        if (!trustedPublicKeys.TryGetValue(payload.KeyId, out var publicKey) || publicKey.Length != Ed25519PublicKeyParameters.KeySize)
        {
            return new(LocationsVerdict.UnknownKey, payload);
        }
        var verifier = new Ed25519Signer();
        verifier.Init(false, new Ed25519PublicKeyParameters(publicKey));
        verifier.BlockUpdate(signed, 0, signed.Length);
        if (!verifier.VerifySignature(signature))
        {
            return new(LocationsVerdict.BadSignature, payload);
        }
        if (now >= payload.ExpiresAt + clockSkew)
        {
            return new(LocationsVerdict.Expired, payload);
        }
        return now + clockSkew < payload.IssuedAt ? new(LocationsVerdict.NotYetValid, payload) : new(LocationsVerdict.Valid, payload);
    }

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private static byte[] FromBase64Url(string text)
    {
        var padded = text.Replace('-', '+').Replace('_', '/');
        return Convert.FromBase64String(padded + new string('=', (4 - padded.Length % 4) % 4));
    }

    private static class Ed25519
    {
        public const int SignatureSize = 64;
    }
}

/// <summary>The body of GET /v1/locations as a type (for OpenAPI and clients): the payload and its signature.</summary>
public sealed record SignedLocationsDocument(
    [property: JsonPropertyName("issued_at")] DateTimeOffset IssuedAt,
    [property: JsonPropertyName("expires_at")] DateTimeOffset ExpiresAt,
    [property: JsonPropertyName("locations")] IReadOnlyList<LocationEntry> Locations,
    [property: JsonPropertyName("key_id")] string KeyId,
    [property: JsonPropertyName("signature")] string Signature);
