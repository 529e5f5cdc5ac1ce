using System.Security.Cryptography;
using System.Text;
using Microsoft.IdentityModel.JsonWebTokens;

namespace Vpn.Entry.Auth;

/// <summary>Endpoint metadata: the caller must be a customer (see <see cref="RequestAuth.UseRequestAuthentication"/>).</summary>
public sealed class RequiresCustomer
{
    public static readonly RequiresCustomer Instance = new();
}

/// <summary>Endpoint metadata: the caller must present the admin token (see <see cref="RequestAuth.UseRequestAuthentication"/>).</summary>
public sealed class RequiresAdmin
{
    public static readonly RequiresAdmin Instance = new();
}

/// <summary>
/// Who is calling. Customers: <c>Authorization: Bearer</c> with our access token (validated, then checked against the
/// revocation list), or the legacy x-customer-id header while APP_ALLOW_LEGACY_CUSTOMER_HEADER is true. A token in the
/// query string is never read. A token is also refused when every token of its customer was revoked (logout-all) or
/// the customer was erased. Authentication runs as middleware after routing — before the rate limiter, which
/// partitions session starts by customer, and before any request body is read or bound. Admins and nodes:
/// x-admin-token, compared in constant time; missing and wrong answer the same; failures spend a per-address budget
/// (<see cref="AuthFailureThrottle"/>), after which that address gets 429 whatever it presents.
/// </summary>
public static class RequestAuth
{
    public const string CustomerHeader = "x-customer-id";
    public const string AdminHeader = "x-admin-token";
    private const string CustomerItem = "vpn.customer_id";
    private const string TokenItem = "vpn.access_token";
    private const string IssuedAtItem = "vpn.access_token_iat";

    public static RouteGroupBuilder RequireCustomer(this RouteGroupBuilder group)
    {
        ArgumentNullException.ThrowIfNull(group);
        return group.WithMetadata(RequiresCustomer.Instance);
    }

    public static RouteHandlerBuilder RequireCustomer(this RouteHandlerBuilder endpoint)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        return endpoint.WithMetadata(RequiresCustomer.Instance);
    }

    /// <summary>Authenticates requests to endpoints marked <see cref="RequiresCustomer"/> or <see cref="RequiresAdmin"/>; call after UseRouting.</summary>
    public static IApplicationBuilder UseRequestAuthentication(this IApplicationBuilder app)
    {
        ArgumentNullException.ThrowIfNull(app);
        return app.UseMiddleware<Authentication>();
    }

    /// <summary>The validated bearer token of this request; null when the legacy header authenticated it.</summary>
    public static AccessToken? AccessToken(this HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return context.Items[TokenItem] as AccessToken;
    }

    /// <summary>The bearer token's iat (what a logout-all's cut-off is compared with); null when the legacy header authenticated it.</summary>
    public static DateTimeOffset? AccessTokenIssuedAt(this HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return context.Items[IssuedAtItem] as DateTimeOffset?;
    }

    /// <summary>The authenticated customer, or null on endpoints that do not require one.</summary>
    public static Guid? AuthenticatedCustomer(this HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return context.Items[CustomerItem] as Guid?;
    }

    public static RouteGroupBuilder RequireAdmin(this RouteGroupBuilder group)
    {
        ArgumentNullException.ThrowIfNull(group);
        return group.WithMetadata(RequiresAdmin.Instance);
    }

    public static Guid CustomerId(this HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return context.Items[CustomerItem] is Guid id ? id : throw new InvalidOperationException("Customer endpoint without RequireCustomer.");
    }

    // Hash both sides first so the comparison time depends on neither length nor content.
    private static bool ConstantTimeEquals(string given, string expected) =>
        CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(given)), SHA256.HashData(Encoding.UTF8.GetBytes(expected)));

    /// <summary>The authentication middleware; what it checks against (all singletons) comes by constructor injection.</summary>
    private sealed class Authentication(RequestDelegate next, AuthFailureThrottle throttle, EntryOptions options, AccessTokenService tokens,
        ITokenRevocations revocations)
    {
        public async Task InvokeAsync(HttpContext http)
        {
            var metadata = http.GetEndpoint()?.Metadata;
            if (metadata?.GetMetadata<RequiresAdmin>() is not null)
            {
                await AuthenticateAdminAsync(http);
            }
            else if (metadata?.GetMetadata<RequiresCustomer>() is not null)
            {
                await AuthenticateCustomerAsync(http);
            }
            await next(http);
        }

        private async Task AuthenticateAdminAsync(HttpContext http)
        {
            // Before the comparison: a spent budget answers 429 to the right token too, or the answers would still tell a guess apart.
            throttle.ThrowIfBlocked(GuessedCredential.AdminToken, http);
            var header = http.Request.Headers[AdminHeader];
            if (header.Count != 1 || !ConstantTimeEquals(header[0] ?? "", options.AdminToken))
            {
                await throttle.RecordFailureAsync(GuessedCredential.AdminToken, http, header.Count == 0 ? "missing" : "wrong", http.RequestAborted);
                throw ApiProblemException.Unauthorized(ErrorCodes.Unauthorized, "A valid admin token is required.");
            }
        }

        private async Task AuthenticateCustomerAsync(HttpContext http)
        {
            var authorization = http.Request.Headers.Authorization;
            if (authorization.Count > 0)
            {
                if (authorization.Count != 1 || authorization[0] is not { } value
                    || !value.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) || value.Length <= 7)
                {
                    throw ApiProblemException.Unauthorized(ErrorCodes.InvalidToken, "The Authorization header must be 'Bearer <access token>'.");
                }
                var raw = value[7..].Trim();
                var token = await tokens.ValidateAsync(raw);
                var issuedAt = IssuedAt(raw);
                if (await revocations.IsRevokedAsync(token.Jti, http.RequestAborted)
                    || await revocations.IsCustomerRevokedAsync(token.CustomerId, issuedAt, http.RequestAborted))
                {
                    throw ApiProblemException.Unauthorized(ErrorCodes.TokenRevoked, "The access token has been revoked; sign in again.");
                }
                http.Items[CustomerItem] = token.CustomerId;
                http.Items[TokenItem] = token;
                http.Items[IssuedAtItem] = issuedAt;
                return;
            }
            var header = http.Request.Headers[CustomerHeader];
            if (header.Count == 0 || !options.AllowLegacyCustomerHeader)
            {
                throw ApiProblemException.Unauthorized(ErrorCodes.MissingToken, "Authentication is required.");
            }
            if (header.Count != 1 || !Guid.TryParseExact(header[0], "D", out var customerId) || customerId == Guid.Empty)
            {
                throw ApiProblemException.Unauthorized(ErrorCodes.InvalidToken, "The customer credential is not valid.");
            }
            // An erased customer's id does not come back through the legacy header either.
            if (await revocations.IsCustomerRevokedAsync(customerId, null, http.RequestAborted))
            {
                throw ApiProblemException.Unauthorized(ErrorCodes.TokenRevoked, "This customer no longer exists.");
            }
            http.Items[CustomerItem] = customerId;
        }

        // The token is valid (signature, claims, iat required) by now; iat is whole seconds (RFC 7519 NumericDate).
        private static DateTimeOffset IssuedAt(string token) => new(DateTime.SpecifyKind(new JsonWebToken(token).IssuedAt, DateTimeKind.Utc));
    }
}
