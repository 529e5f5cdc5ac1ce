using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

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

    public static string Rsa(IReadOnlyDictionary<string, object?> header, IReadOnlyDictionary<string, object?> payload, RSA key)
    {
        var signingInput = Encode(header) + "." + Encode(payload);
        var signature = key.SignData(Encoding.ASCII.GetBytes(signingInput), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        return signingInput + "." + Base64Url(signature);
    }

    public static string WithoutSignature(IReadOnlyDictionary<string, object?> header, IReadOnlyDictionary<string, object?> payload) =>
        Encode(header) + "." + Encode(payload) + ".";
}
