using System.Text.Json.Serialization;

namespace Vpn.TestSupport.Oidc;

/// <summary>An authorization code from the scripted login, with what the app kept to redeem it.</summary>
/// <param name="CodeVerifier">The PKCE verifier (null when the request had no code_challenge).</param>
/// <param name="Nonce">The nonce sent in the authorization request, which the ID token must carry (null: none sent).</param>
public sealed record AuthorizationCode(string Code, string? CodeVerifier, string? Nonce, string ClientId, string RedirectUri, string State);

/// <summary>How the token endpoint behaves (see <see cref="OidcProvider.SetTokenEndpointAsync"/>).</summary>
public enum TokenEndpointMode
{
    /// <summary>oidc-provider answers as usual.</summary>
    Normal,

    /// <summary>503 with <c>{"error":"temporarily_unavailable"}</c>.</summary>
    Down,

    /// <summary>No answer: the request is held for about 60 s, then the connection is dropped.</summary>
    Hang,
}

/// <summary>How a tampered ID token is signed (see <see cref="OidcProvider.TamperAsync"/>).</summary>
public enum IdTokenSigning
{
    /// <summary>With the provider's current private key: a valid signature over the changed claims.</summary>
    Provider,

    /// <summary>With an RSA key that is in no JWKS of the provider; the header keeps the real kid unless overridden.</summary>
    Foreign,

    /// <summary><c>alg: none</c> and an empty signature.</summary>
    None,

    /// <summary>HS256 keyed with the redeeming client's secret (what a verifier that trusts the header's alg would take).</summary>
    ClientSecret,
}

/// <summary>Hits on the provider's endpoints since it started (they keep counting across resets and key rotations).</summary>
public sealed record OidcProviderStats(
    [property: JsonPropertyName("jwks_requests")] int JwksRequests,
    [property: JsonPropertyName("token_requests")] int TokenRequests,
    [property: JsonPropertyName("discovery_requests")] int DiscoveryRequests);

/// <summary>Start options of <see cref="OidcProvider"/>.</summary>
/// <param name="RequirePkce">Refuse authorization requests without a code_challenge even for the confidential clients.</param>
public sealed record OidcProviderOptions(bool RequirePkce = false);
