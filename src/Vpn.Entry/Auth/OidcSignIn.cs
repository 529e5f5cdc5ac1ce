using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Vpn.Entry.Auth;

/// <summary>The person the provider vouched for: (issuer, subject) is the identity; nothing else is kept.</summary>
public sealed record VerifiedIdentity(string Issuer, string Subject);

/// <summary>
/// The authorization-code exchange with the OpenID provider (Google by default) and ID-token validation per OpenID
/// Connect Core §3.1.3.7: RS256 only; iss exact; aud exactly our client id; azp, when present, ours; exp/iat within
/// 60 s skew; nonce when one was sent. Discovery and the JWKS are cached; a token signed with an unknown kid
/// refreshes them at most once per APP_OIDC_JWKS_MIN_REFRESH_SECS (an attacker cannot make us hammer the provider).
/// Every provider call has a deadline, so an outage answers quickly (502 oidc_provider_unavailable).
/// Codes, tokens and the client secret never reach a log or an error body.
/// </summary>
public sealed partial class OidcSignIn(EntryOptions entryOptions, IHttpClientFactory httpClients, TimeProvider time, ILogger<OidcSignIn> logger)
    : IDisposable
{
    public const string HttpClientName = "oidc";

    private const int MaxIdTokenLength = 16 * 1024;

    // Discovery, JWKS and token answers: a repeated name (two "issuer"s, two "id_token"s) makes the body unusable.
    private static readonly JsonDocumentOptions ProviderJson = new() { AllowDuplicateProperties = false };
    private readonly OidcOptions _options = entryOptions.Oidc;
    private readonly JsonWebTokenHandler _handler = new() { MaximumTokenSizeInBytes = MaxIdTokenLength };
    private readonly SemaphoreSlim _refreshGate = new(1, 1);
    private ProviderMetadata? _metadata;
    private long _lastRefresh = long.MinValue;

    private sealed record ProviderMetadata(Uri TokenEndpoint, Dictionary<string, SecurityKey> Keys, long FetchedAt);

    public bool Configured => _options.Configured;

    public void Dispose() => _refreshGate.Dispose();

    public async Task<VerifiedIdentity> ExchangeAsync(string code, string redirectUri, string? codeVerifier, string? nonce, CancellationToken cancellationToken)
    {
        if (!_options.Configured)
        {
            throw new ApiProblemException(StatusCodes.Status503ServiceUnavailable, ErrorCodes.SignInNotConfigured, "Sign-in is not configured on this server.");
        }
        var metadata = await GetMetadataAsync(unknownKid: null, cancellationToken);
        var idToken = await RedeemCodeAsync(metadata.TokenEndpoint, code, redirectUri, codeVerifier, cancellationToken);
        return await ValidateIdTokenAsync(idToken, nonce, cancellationToken);
    }

    private async Task<string> RedeemCodeAsync(Uri tokenEndpoint, string code, string redirectUri, string? codeVerifier, CancellationToken cancellationToken)
    {
        var form = new List<KeyValuePair<string, string>>
        {
            new("grant_type", "authorization_code"),
            new("code", code),
            new("redirect_uri", redirectUri),
            new("client_id", _options.ClientId!),
            new("client_secret", _options.ClientSecret!),
        };
        if (codeVerifier is not null)
        {
            form.Add(new("code_verifier", codeVerifier));
        }
        using var request = new HttpRequestMessage(HttpMethod.Post, tokenEndpoint) { Content = new FormUrlEncodedContent(form) };
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        var (status, body) = await CallAsync(request, cancellationToken);
        if (status is HttpStatusCode.BadRequest or HttpStatusCode.Unauthorized)
        {
            // invalid_grant (bad, reused or expired code; PKCE mismatch; redirect_uri mismatch) and client errors.
            var error = SafeErrorCode(body);
            LogExchangeRefused(logger, (int)status, error);
            throw ApiProblemException.Unauthorized(ErrorCodes.OidcExchangeFailed, "The identity provider refused the authorization code.");
        }
        if (status != HttpStatusCode.OK)
        {
            LogProviderFailed(logger, $"token endpoint answered {(int)status}");
            throw ProviderUnavailable();
        }
        if (body is not { ValueKind: JsonValueKind.Object } json || !json.TryGetProperty("id_token", out var idToken)
            || idToken.ValueKind != JsonValueKind.String || idToken.GetString() is not { Length: > 0 and <= MaxIdTokenLength } value)
        {
            throw InvalidIdToken();
        }
        return value;
    }

    private async Task<VerifiedIdentity> ValidateIdTokenAsync(string idToken, string? nonce, CancellationToken cancellationToken)
    {
        JsonWebToken unverified;
        try
        {
            unverified = new JsonWebToken(idToken);
        }
        catch (ArgumentException)
        {
            throw InvalidIdToken();
        }
        // RFC 7515 §4.1.11: extensions we do not understand must not be ignored.
        if (unverified.TryGetHeaderValue<object>("crit", out _))
        {
            throw InvalidIdToken();
        }
        var kid = unverified.Kid;
        if (string.IsNullOrEmpty(kid) || kid.Length > 256)
        {
            throw InvalidIdToken();
        }
        var metadata = await GetMetadataAsync(unknownKid: kid, cancellationToken);
        if (!metadata.Keys.TryGetValue(kid, out var key))
        {
            throw InvalidIdToken();
        }
        var now = time.GetUtcNow().UtcDateTime;
        var result = await _handler.ValidateTokenAsync(idToken, new TokenValidationParameters
        {
            ValidAlgorithms = [SecurityAlgorithms.RsaSha256],
            ValidIssuers = _options.AcceptedIssuers,
            ValidAudience = _options.ClientId,
            IssuerSigningKey = key,
            TryAllIssuerSigningKeys = false,
            RequireSignedTokens = true,
            RequireExpirationTime = true,
            RequireAudience = true,
            IgnoreTrailingSlashWhenValidatingAudience = false,
            ClockSkew = _options.ClockSkew,
            LifetimeValidator = (notBefore, expires, _, parameters) =>
                expires is { } exp && exp >= now - parameters.ClockSkew && (notBefore is not { } nbf || nbf <= now + parameters.ClockSkew),
        });
        if (!result.IsValid)
        {
            var failure = result.Exception?.GetType().Name ?? "unknown";
            LogIdTokenRejected(logger, failure);
            throw InvalidIdToken();
        }
        var token = (JsonWebToken)result.SecurityToken;
        // §3.1.3.7: every audience must be trusted (only ours); azp, when present, is us; iat not in the future.
        var audiences = token.Audiences.ToList();
        var azpOk = !token.TryGetPayloadValue<object>("azp", out _)
            || (token.TryGetPayloadValue<string>("azp", out var azp) && azp == _options.ClientId);
        var iatOk = token.TryGetPayloadValue<long>(JwtRegisteredClaimNames.Iat, out var iat)
            && DateTimeOffset.FromUnixTimeSeconds(iat) <= time.GetUtcNow() + _options.ClockSkew;
        var nonceOk = nonce is null || (token.TryGetPayloadValue<string>("nonce", out var claimed) && claimed is not null
            && CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(claimed), Encoding.UTF8.GetBytes(nonce)));
        var subject = token.Subject;
        var jsonOk = IsStrictJson(token);
        if (!jsonOk || audiences.Count != 1 || !azpOk || !iatOk || !nonceOk || string.IsNullOrEmpty(subject) || subject.Length > 255)
        {
            var reason = !jsonOk ? "json" : audiences.Count != 1 ? "audience" : !azpOk ? "azp" : !iatOk ? "iat" : !nonceOk ? "nonce" : "sub";
            LogIdTokenRejected(logger, reason);
            throw InvalidIdToken();
        }
        // One customer per person however the provider spells its issuer: identities are stored under the configured one.
        return new VerifiedIdentity(_options.Issuer, subject);
    }

    // Header and claims read again with duplicate names refused (one value per claim for every reader), and the dates
    // JSON numbers (RFC 7519 §2: "exp": "1700000000" is no NumericDate, whatever a lenient reader makes of it).
    private static bool IsStrictJson(JsonWebToken token)
    {
        using var header = JoseJson.ParseObject(token.EncodedHeader);
        using var payload = JoseJson.ParseObject(token.EncodedPayload);
        return header is not null && payload is not null
            && JoseJson.TryNumericDate(payload.RootElement, JwtRegisteredClaimNames.Exp, required: true, out _)
            && JoseJson.TryNumericDate(payload.RootElement, JwtRegisteredClaimNames.Iat, required: true, out _)
            && JoseJson.TryNumericDate(payload.RootElement, JwtRegisteredClaimNames.Nbf, required: false, out _);
    }

    private async Task<ProviderMetadata> GetMetadataAsync(string? unknownKid, CancellationToken cancellationToken)
    {
        var current = Volatile.Read(ref _metadata);
        if (current is not null && time.GetElapsedTime(current.FetchedAt) < _options.MetadataLifetime
            && (unknownKid is null || current.Keys.ContainsKey(unknownKid)))
        {
            return current;
        }
        // Bounded: sign-ins queued behind a slow refresh answer within the provider deadline instead of piling up.
        if (!await _refreshGate.WaitAsync(_options.Timeout, cancellationToken))
        {
            return current ?? throw ProviderUnavailable();
        }
        try
        {
            current = _metadata;
            var stale = current is null || time.GetElapsedTime(current.FetchedAt) >= _options.MetadataLifetime;
            if (!stale && (unknownKid is null || current!.Keys.ContainsKey(unknownKid)))
            {
                return current!;
            }
            // An unknown kid may be a rotation (refresh) or junk from an attacker (don't let it drive traffic); a failed
            // refresh is retried no sooner either.
            if (current is not null && _lastRefresh != long.MinValue && time.GetElapsedTime(_lastRefresh) < _options.JwksMinimumRefresh)
            {
                return current;
            }
            _lastRefresh = time.GetTimestamp();
            try
            {
                var fresh = await FetchMetadataAsync(cancellationToken);
                Volatile.Write(ref _metadata, fresh);
                return fresh;
            }
            catch (ApiProblemException) when (current is not null)
            {
                // Provider briefly unreachable: the keys we have are still the provider's keys; keep using them.
                return current;
            }
        }
        finally
        {
            _refreshGate.Release();
        }
    }

    private async Task<ProviderMetadata> FetchMetadataAsync(CancellationToken cancellationToken)
    {
        using var discoveryRequest = new HttpRequestMessage(HttpMethod.Get, _options.Issuer.TrimEnd('/') + "/.well-known/openid-configuration");
        var (discoveryStatus, discovery) = await CallAsync(discoveryRequest, cancellationToken);
        if (discoveryStatus != HttpStatusCode.OK || discovery is not { ValueKind: JsonValueKind.Object } doc
            || !doc.TryGetProperty("issuer", out var issuer) || issuer.ValueKind != JsonValueKind.String
            || !TryEndpoint(doc, "token_endpoint", out var tokenEndpoint) || !TryEndpoint(doc, "jwks_uri", out var jwksUri))
        {
            LogProviderFailed(logger, "discovery document unusable");
            throw ProviderUnavailable();
        }
        // OpenID Connect Discovery §4.3: the document's issuer must be exactly the one we asked.
        if (issuer.GetString() != _options.Issuer)
        {
            LogProviderFailed(logger, "discovery issuer differs from GOOGLE_ISSUER");
            throw ProviderUnavailable();
        }
        using var jwksRequest = new HttpRequestMessage(HttpMethod.Get, jwksUri);
        var (jwksStatus, jwks) = await CallAsync(jwksRequest, cancellationToken);
        var keys = new Dictionary<string, SecurityKey>(StringComparer.Ordinal);
        try
        {
            foreach (var key in jwksStatus == HttpStatusCode.OK && jwks is { ValueKind: JsonValueKind.Object } set ? new JsonWebKeySet(set.GetRawText()).Keys : [])
            {
                // Only RSA signature keys with an id: the only kind an RS256 ID token can be checked against.
                if (key.Kty == JsonWebAlgorithmsKeyTypes.RSA && !string.IsNullOrEmpty(key.Kid) && key.Use is null or "sig")
                {
                    keys[key.Kid] = key;
                }
            }
        }
        catch (ArgumentException)
        {
            keys.Clear();
        }
        if (keys.Count == 0)
        {
            LogProviderFailed(logger, "JWKS unusable");
            throw ProviderUnavailable();
        }
        return new ProviderMetadata(tokenEndpoint, keys, time.GetTimestamp());
    }

    private bool TryEndpoint(JsonElement doc, string name, out Uri endpoint)
    {
        endpoint = null!;
        if (!doc.TryGetProperty(name, out var value) || value.ValueKind != JsonValueKind.String
            || !Uri.TryCreate(value.GetString(), UriKind.Absolute, out var uri))
        {
            return false;
        }
        // The secret travels to the token endpoint: never in clear text unless the issuer itself is a local http one.
        if (uri.Scheme != Uri.UriSchemeHttps && !(uri.Scheme == Uri.UriSchemeHttp && _options.Issuer.StartsWith("http://", StringComparison.Ordinal)))
        {
            return false;
        }
        endpoint = uri;
        return true;
    }

    /// <summary>
    /// One provider call under one deadline (connect, headers and body): its status and its JSON body, null when the
    /// body is not JSON or exceeds 256 KiB. Unreachable or too slow → 502 oidc_provider_unavailable.
    /// </summary>
    private async Task<(HttpStatusCode Status, JsonElement? Body)> CallAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(_options.Timeout);
        try
        {
            using var response = await httpClients.CreateClient(HttpClientName).SendAsync(request, HttpCompletionOption.ResponseHeadersRead, deadline.Token);
            // The client's MaxResponseContentBufferSize does not bound streamed reads: cap what we parse ourselves.
            await using var stream = await response.Content.ReadAsStreamAsync(deadline.Token);
            using var buffer = new MemoryStream();
            var chunk = new byte[8192];
            int read;
            while ((read = await stream.ReadAsync(chunk, deadline.Token)) > 0)
            {
                if (buffer.Length + read > 256 * 1024)
                {
                    return (response.StatusCode, null);
                }
                buffer.Write(chunk, 0, read);
            }
            try
            {
                using var document = JsonDocument.Parse(buffer.ToArray(), ProviderJson);
                return (response.StatusCode, document.RootElement.Clone());
            }
            catch (JsonException)
            {
                return (response.StatusCode, null);
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            LogProviderFailed(logger, "timed out");
            throw ProviderUnavailable();
        }
        catch (HttpRequestException e)
        {
            LogProviderFailed(logger, e.HttpRequestError.ToString());
            throw ProviderUnavailable();
        }
    }

    // The provider's OAuth error code is safe to log once reduced to its documented alphabet; descriptions are not logged.
    private static string SafeErrorCode(JsonElement? body) =>
        body is { ValueKind: JsonValueKind.Object } json && json.TryGetProperty("error", out var error) && error.ValueKind == JsonValueKind.String
            && error.GetString() is { Length: > 0 and <= 64 } code && code.All(c => c is (>= 'a' and <= 'z') or '_')
            ? code
            : "unknown";

    private static ApiProblemException InvalidIdToken() =>
        ApiProblemException.Unauthorized(ErrorCodes.InvalidIdToken, "The identity provider's ID token failed validation.");

    private static ApiProblemException ProviderUnavailable() => new(StatusCodes.Status502BadGateway, ErrorCodes.OidcProviderUnavailable,
        "The identity provider is unavailable; retry later.");

    [LoggerMessage(EventId = 30, Level = LogLevel.Information, Message = "Identity provider refused a code exchange ({Status}, {Error})")]
    private static partial void LogExchangeRefused(ILogger logger, int status, string error);

    [LoggerMessage(EventId = 31, Level = LogLevel.Warning, Message = "Identity provider unavailable: {Reason}")]
    private static partial void LogProviderFailed(ILogger logger, string reason);

    [LoggerMessage(EventId = 32, Level = LogLevel.Information, Message = "ID token rejected ({Reason})")]
    private static partial void LogIdTokenRejected(ILogger logger, string reason);
}
