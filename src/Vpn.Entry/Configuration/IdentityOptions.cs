using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Vpn.ServiceDefaults;

namespace Vpn.Entry.Configuration;

/// <summary>One HS256 key of our access tokens: chosen by <c>kid</c>, never by trying every key.</summary>
public sealed record AccessTokenKey(string Kid, byte[] Secret);

/// <summary>Our own access tokens (APP_JWT_*).</summary>
public sealed class AccessTokenOptions
{
    public const int MinimumSecretBytes = 32;

    public required IReadOnlyList<AccessTokenKey> Keys { get; init; }

    /// <summary>The key new tokens are signed with (APP_JWT_ACTIVE_KID; default the first listed).</summary>
    public required string ActiveKid { get; init; }

    public string Issuer { get; init; } = "vpn-entry";

    public string Audience { get; init; } = "vpn-api";

    public TimeSpan Lifetime { get; init; } = TimeSpan.FromHours(1);

    /// <summary>Tolerated clock difference between replicas for exp/nbf/iat.</summary>
    public TimeSpan ClockSkew { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>True when no key was configured and a random one was made for this process (development only).</summary>
    public bool Ephemeral { get; init; }
}

/// <summary>The OpenID provider customers sign in with (GOOGLE_*): Google unless GOOGLE_ISSUER names another.</summary>
public sealed class OidcOptions
{
    public const string GoogleIssuer = "https://accounts.google.com";

    /// <summary>The issuer as configured; discovery is fetched from it and it is the issuer stored with identities.</summary>
    public string Issuer { get; init; } = GoogleIssuer;

    /// <summary>Every exact <c>iss</c> value accepted: Google also issues "accounts.google.com" without the scheme.</summary>
    public IReadOnlyList<string> AcceptedIssuers { get; init; } = [GoogleIssuer, "accounts.google.com"];

    public string? ClientId { get; init; }

    public string? ClientSecret { get; init; }

    public bool Configured => ClientId is not null && ClientSecret is not null;

    /// <summary>Refuse sign-ins without a code_verifier (APP_OIDC_REQUIRE_PKCE; RFC 9700 §2.1.1). The contract makes it optional.</summary>
    public bool RequirePkce { get; init; }

    /// <summary>When non-empty, redirect_uri must be one of these exactly (APP_OIDC_REDIRECT_URIS); the provider checks it too.</summary>
    public IReadOnlyList<string> AllowedRedirectUris { get; init; } = [];

    /// <summary>Deadline of each call to the provider (APP_OIDC_TIMEOUT_MS, default 5000).</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>An unknown signing kid refreshes the JWKS at most this often (APP_OIDC_JWKS_MIN_REFRESH_SECS, default 30).</summary>
    public TimeSpan JwksMinimumRefresh { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Discovery and JWKS are re-read after this even without an unknown kid.</summary>
    public TimeSpan MetadataLifetime { get; init; } = TimeSpan.FromHours(1);

    public TimeSpan ClockSkew { get; init; } = TimeSpan.FromSeconds(60);
}

public static partial class IdentitySettings
{
    [GeneratedRegex("^[A-Za-z0-9._-]{1,64}$")]
    private static partial Regex KidPattern();

    public static AccessTokenOptions LoadAccessTokens(Microsoft.Extensions.Configuration.IConfiguration configuration, bool production, List<string> problems)
    {
        var keys = new List<AccessTokenKey>();
        var list = Settings.Secret(configuration, "APP_JWT_SIGNING_KEYS", problems);
        var single = Settings.Secret(configuration, "APP_JWT_SIGNING_KEY", problems);
        if (list is not null)
        {
            var position = 0;
            foreach (var entry in list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                position++;
                var colon = entry.IndexOf(':', StringComparison.Ordinal);
                var kid = colon > 0 ? entry[..colon] : "";
                if (!KidPattern().IsMatch(kid))
                {
                    problems.Add($"APP_JWT_SIGNING_KEYS entry {position} must be kid:secret with a kid of 1-64 characters [A-Za-z0-9._-] (secrets cannot contain ',').");
                    continue;
                }
                AddKey(keys, kid, entry[(colon + 1)..], $"APP_JWT_SIGNING_KEYS entry {position}", problems);
            }
        }
        if (single is not null)
        {
            AddKey(keys, "default", single, "APP_JWT_SIGNING_KEY", problems);
        }
        var ephemeral = false;
        if (keys.Count == 0)
        {
            if (production)
            {
                problems.Add("APP_JWT_SIGNING_KEYS or APP_JWT_SIGNING_KEY is required in production.");
            }
            // Local runs without configuration still sign in; tokens die with the process.
            keys.Add(new AccessTokenKey("ephemeral", RandomNumberGenerator.GetBytes(32)));
            ephemeral = true;
        }
        var activeKid = configuration["APP_JWT_ACTIVE_KID"];
        if (string.IsNullOrEmpty(activeKid))
        {
            activeKid = keys[0].Kid;
        }
        else if (!keys.Any(k => k.Kid == activeKid))
        {
            problems.Add("APP_JWT_ACTIVE_KID names no configured key.");
        }
        return new AccessTokenOptions
        {
            Keys = keys,
            ActiveKid = activeKid,
            Issuer = configuration["APP_JWT_ISSUER"] is { Length: > 0 } issuer ? issuer : "vpn-entry",
            Audience = configuration["APP_JWT_AUDIENCE"] is { Length: > 0 } audience ? audience : "vpn-api",
            Lifetime = TimeSpan.FromSeconds(Settings.Number(configuration, "APP_JWT_TTL_SECS", 3600, 60, 86_400, problems)),
            Ephemeral = ephemeral,
        };
    }

    private static void AddKey(List<AccessTokenKey> keys, string kid, string secret, string setting, List<string> problems)
    {
        var bytes = Encoding.UTF8.GetBytes(secret);
        if (bytes.Length < AccessTokenOptions.MinimumSecretBytes)
        {
            // RFC 7518 §3.2: an HS256 key must be at least as long as the hash output.
            // The kid is not echoed: a malformed list may have split a secret, putting part of it where a kid would be.
            problems.Add($"{setting}: the secret is shorter than {AccessTokenOptions.MinimumSecretBytes} bytes.");
            return;
        }
        if (keys.Any(k => k.Kid == kid))
        {
            problems.Add($"{setting}: its key id is listed twice.");
            return;
        }
        keys.Add(new AccessTokenKey(kid, bytes));
    }

    public static OidcOptions LoadOidc(Microsoft.Extensions.Configuration.IConfiguration configuration, bool production, List<string> problems)
    {
        // Kept exactly as configured: iss is compared as an exact string (a provider's issuer may end in '/').
        var issuer = configuration["GOOGLE_ISSUER"] is { Length: > 0 } configured ? configured : OidcOptions.GoogleIssuer;
        if (!Uri.TryCreate(issuer, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttps && uri.Scheme != Uri.UriSchemeHttp)
            || !string.IsNullOrEmpty(uri.Query) || !string.IsNullOrEmpty(uri.Fragment))
        {
            problems.Add("GOOGLE_ISSUER must be an absolute https URL without query or fragment.");
        }
        else if (production && uri.Scheme != Uri.UriSchemeHttps)
        {
            problems.Add("GOOGLE_ISSUER must use https in production.");
        }
        var clientId = Settings.Secret(configuration, "GOOGLE_CLIENT_ID", problems);
        var clientSecret = Settings.Secret(configuration, "GOOGLE_CLIENT_SECRET", problems);
        if (production && (clientId is null || clientSecret is null))
        {
            problems.Add("GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET are required in production.");
        }
        var redirectUris = new List<string>();
        foreach (var entry in (configuration["APP_OIDC_REDIRECT_URIS"] ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (Uri.TryCreate(entry, UriKind.Absolute, out _))
            {
                redirectUris.Add(entry);
            }
            else
            {
                problems.Add("APP_OIDC_REDIRECT_URIS must be a comma-separated list of absolute URIs.");
            }
        }
        return new OidcOptions
        {
            Issuer = issuer,
            RequirePkce = Settings.Flag(configuration, "APP_OIDC_REQUIRE_PKCE", false, problems),
            AllowedRedirectUris = redirectUris,
            AcceptedIssuers = issuer == OidcOptions.GoogleIssuer ? [OidcOptions.GoogleIssuer, "accounts.google.com"] : [issuer],
            ClientId = clientId,
            ClientSecret = clientSecret,
            Timeout = TimeSpan.FromMilliseconds(Settings.Number(configuration, "APP_OIDC_TIMEOUT_MS", 5000, 100, 60_000, problems)),
            JwksMinimumRefresh = TimeSpan.FromSeconds(Settings.Number(configuration, "APP_OIDC_JWKS_MIN_REFRESH_SECS", 30, 0, 3600, problems)),
        };
    }
}
