namespace Vpn.Entry.Tests.Auth;

/// <summary>Hand-built compact JWS, so tests can forge exactly the token an attacker would send.</summary>
public static class Jws
{
    public static string Encode(object value) => Base64Url(JsonSerializer.SerializeToUtf8Bytes(value));

    public static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    public static string Hmac(IReadOnlyDictionary<string, object?> header, IReadOnlyDictionary<string, object?> payload, byte[] key, string hash = "SHA256")
    {
        var signingInput = Encode(header) + "." + Encode(payload);
        var data = Encoding.ASCII.GetBytes(signingInput);
        var signature = hash switch
        {
            "SHA256" => HMACSHA256.HashData(key, data),
            "SHA512" => HMACSHA512.HashData(key, data),
            _ => throw new ArgumentOutOfRangeException(nameof(hash)),
        };
        return signingInput + "." + Base64Url(signature);
    }

    /// <summary>HS256 over header and payload JSON given as text, for what a serializer would not write (a repeated name).</summary>
    public static string HmacRaw(string headerJson, string payloadJson, byte[] key)
    {
        var signingInput = Base64Url(Encoding.UTF8.GetBytes(headerJson)) + "." + Base64Url(Encoding.UTF8.GetBytes(payloadJson));
        return signingInput + "." + Base64Url(HMACSHA256.HashData(key, Encoding.ASCII.GetBytes(signingInput)));
    }

    public static string Rsa(IReadOnlyDictionary<string, object?> header, IReadOnlyDictionary<string, object?> payload, RSA key)
    {
        var signingInput = Encode(header) + "." + Encode(payload);
        var signature = key.SignData(Encoding.ASCII.GetBytes(signingInput), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        return signingInput + "." + Base64Url(signature);
    }

    public static string WithoutSignature(IReadOnlyDictionary<string, object?> header, IReadOnlyDictionary<string, object?> payload) =>
        Encode(header) + "." + Encode(payload) + ".";
}
