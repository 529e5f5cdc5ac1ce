using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Vpn.Entry.Auth;

/// <summary>A validated access token: whose it is, and what revocation needs.</summary>
public sealed record AccessToken(Guid CustomerId, string Jti, DateTimeOffset ExpiresAt);

public sealed record IssuedToken(string Token, string Jti, DateTimeOffset ExpiresAt);

/// <summary>
/// Our access tokens (RFC 8725 rules): HS256 only, explicit <c>typ</c> "at+jwt" (RFC 9068), the key chosen by <c>kid</c>
/// from our own list — an unknown kid fails rather than trying every key — and iss, aud, exp, iat, jti required;
/// <c>crit</c>, non-numeric dates, tokens longer-lived than ours and audiences besides ours are refused.
/// Header parameters that point at other keys (jku, x5u, jwk) are never consulted: the only keys are ours.
/// </summary>
public sealed class AccessTokenService
{
    public const string TokenType = "at+jwt";

    /// <summary>Ours are ~400 bytes; anything far larger is refused before any parsing or crypto.</summary>
    public const int MaxTokenLength = 4096;

    private readonly AccessTokenOptions _options;
    private readonly TimeProvider _time;
    private readonly Dictionary<string, SymmetricSecurityKey> _keys;
    private readonly SigningCredentials _signing;
    private readonly JsonWebTokenHandler _handler = new() { MaximumTokenSizeInBytes = MaxTokenLength, SetDefaultTimesOnTokenCreation = false };
    private readonly TokenValidationParameters _validation;

    public AccessTokenService(EntryOptions options, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options.AccessTokens;
        _time = time;
        _keys = _options.Keys.ToDictionary(k => k.Kid, k => new SymmetricSecurityKey(k.Secret) { KeyId = k.Kid }, StringComparer.Ordinal);
        _signing = new SigningCredentials(_keys[_options.ActiveKid], SecurityAlgorithms.HmacSha256);
        _validation = new TokenValidationParameters
        {
            ValidAlgorithms = [SecurityAlgorithms.HmacSha256],
            ValidTypes = [TokenType],
            ValidIssuer = _options.Issuer,
            ValidAudience = _options.Audience,
            RequireExpirationTime = true,
            RequireSignedTokens = true,
            RequireAudience = true,
            ValidateIssuer = true,
            ValidateAudience = true,
            ValidateLifetime = true,
            ValidateIssuerSigningKey = true,
            ClockSkew = _options.ClockSkew,
            TryAllIssuerSigningKeys = false,
            LifetimeValidator = ValidateLifetime,
            IssuerSigningKeyResolver = (_, _, kid, _) => kid is not null && _keys.TryGetValue(kid, out var key) ? [key] : [],
            NameClaimType = JwtRegisteredClaimNames.Sub,
        };
    }

    public TimeSpan Lifetime => _options.Lifetime;

    public IssuedToken Issue(Guid customerId)
    {
        var now = _time.GetUtcNow();
        var expires = now + _options.Lifetime;
        var jti = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        var token = _handler.CreateToken(new SecurityTokenDescriptor
        {
            Issuer = _options.Issuer,
            Audience = _options.Audience,
            IssuedAt = now.UtcDateTime,
            NotBefore = now.UtcDateTime,
            Expires = expires.UtcDateTime,
            TokenType = TokenType,
            SigningCredentials = _signing,
            Claims = new Dictionary<string, object>
            {
                [JwtRegisteredClaimNames.Sub] = customerId.ToString("D"),
                [JwtRegisteredClaimNames.Jti] = jti,
            },
        });
        return new IssuedToken(token, jti, DateTimeOffset.FromUnixTimeSeconds(expires.ToUnixTimeSeconds()));
    }

    /// <summary>Validates signature, header and claims; throws 401 invalid_token or token_expired. Revocation is the caller's next step.</summary>
    public async Task<AccessToken> ValidateAsync(string token)
    {
        ArgumentNullException.ThrowIfNull(token);
        if (token.Length > MaxTokenLength)
        {
            throw Invalid();
        }
        var result = await _handler.ValidateTokenAsync(token, _validation);
        if (!result.IsValid)
        {
            throw result.Exception is SecurityTokenExpiredException
                ? ApiProblemException.Unauthorized(ErrorCodes.TokenExpired, "The access token has expired; sign in again.")
                : Invalid();
        }
        var jwt = (JsonWebToken)result.SecurityToken;
        // kid must be a header value we issued with (the resolver already refused anything else); iat and jti are required.
        if (!jwt.TryGetPayloadValue<string>(JwtRegisteredClaimNames.Jti, out var jti) || string.IsNullOrEmpty(jti) || jti.Length > 128
            || !jwt.TryGetPayloadValue<long>(JwtRegisteredClaimNames.Iat, out _)
            || !Guid.TryParseExact(jwt.Subject, "D", out var customerId) || customerId == Guid.Empty
            || !FollowsOurRules(jwt))
        {
            throw Invalid();
        }
        return new AccessToken(customerId, jti, new DateTimeOffset(jwt.ValidTo, TimeSpan.Zero));
    }

    /// <summary>
    /// What the handler leaves unchecked, read from the token's own JSON with duplicate names refused: no <c>crit</c>
    /// header (we implement no JWS extension, so RFC 7515 §4.1.11 says refuse); exp, iat and nbf JSON numbers (RFC 7519
    /// §2 NumericDate, not "1700000000"); iat not in the future beyond the skew; exp − iat at most our token lifetime (no
    /// token outlives the ones we issue); an aud list naming us alone (each audience would accept it).
    /// </summary>
    private bool FollowsOurRules(JsonWebToken jwt)
    {
        using var header = JoseJson.ParseObject(jwt.EncodedHeader);
        using var payload = JoseJson.ParseObject(jwt.EncodedPayload);
        if (header is null || payload is null || header.RootElement.TryGetProperty("crit", out _))
        {
            return false;
        }
        var claims = payload.RootElement;
        if (!JoseJson.TryNumericDate(claims, JwtRegisteredClaimNames.Exp, required: true, out var exp)
            || !JoseJson.TryNumericDate(claims, JwtRegisteredClaimNames.Iat, required: true, out var iat)
            || !JoseJson.TryNumericDate(claims, JwtRegisteredClaimNames.Nbf, required: false, out _))
        {
            return false;
        }
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds() / 1000.0;
        if (iat > now + _options.ClockSkew.TotalSeconds || exp - iat > _options.Lifetime.TotalSeconds)
        {
            return false;
        }
        return claims.TryGetProperty(JwtRegisteredClaimNames.Aud, out var audience) && audience.ValueKind switch
        {
            JsonValueKind.String => audience.ValueEquals(_options.Audience),
            JsonValueKind.Array => audience.GetArrayLength() > 0
                && audience.EnumerateArray().All(a => a.ValueKind == JsonValueKind.String && a.ValueEquals(_options.Audience)),
            _ => false,
        };
    }

    // The handler's own clock is the system clock; ours is injectable so tests can age tokens.
    private bool ValidateLifetime(DateTime? notBefore, DateTime? expires, SecurityToken token, TokenValidationParameters parameters)
    {
        var now = _time.GetUtcNow().UtcDateTime;
        if (expires is null)
        {
            throw new SecurityTokenNoExpirationException();
        }
        if (notBefore is { } nbf && nbf > now + parameters.ClockSkew)
        {
            throw new SecurityTokenNotYetValidException();
        }
        if (expires.Value < now - parameters.ClockSkew)
        {
            throw new SecurityTokenExpiredException();
        }
        return true;
    }

    private static ApiProblemException Invalid() => ApiProblemException.Unauthorized(ErrorCodes.InvalidToken, "The access token is not valid.");
}
