using System.Security.Cryptography;
using System.Text;
using Vpn.Entry.Configuration;
using Vpn.Entry.Http;

namespace Vpn.Entry.Auth;

/// <summary>Endpoint metadata: the caller must be a customer (see <see cref="RequestAuth.UseCustomerAuthentication"/>).</summary>
public sealed class RequiresCustomer
{
    public static readonly RequiresCustomer Instance = new();
}

/// <summary>
/// Who is calling. Customers: <c>Authorization: Bearer</c> with our access token (validated, then checked against the
/// revocation list), or the legacy x-customer-id header while APP_ALLOW_LEGACY_CUSTOMER_HEADER is true. A token in the
/// query string is never read. Customer authentication runs as middleware after routing — before the rate limiter,
/// which partitions session starts by customer. Admins and nodes: x-admin-token, compared in constant time; missing
/// and wrong answer the same.
/// </summary>
public static class RequestAuth
{
    public const string CustomerHeader = "x-customer-id";
    public const string AdminHeader = "x-admin-token";
    private const string CustomerItem = "vpn.customer_id";
    private const string TokenItem = "vpn.access_token";

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

    /// <summary>Authenticates requests to endpoints marked <see cref="RequiresCustomer"/>; call after UseRouting.</summary>
    public static IApplicationBuilder UseCustomerAuthentication(this IApplicationBuilder app)
    {
        ArgumentNullException.ThrowIfNull(app);
        return app.Use(async (http, next) =>
        {
            if (http.GetEndpoint()?.Metadata.GetMetadata<RequiresCustomer>() is not null)
            {
                await AuthenticateCustomerAsync(http);
            }
            await next(http);
        });
    }

    private static async Task AuthenticateCustomerAsync(HttpContext http)
    {
        var authorization = http.Request.Headers.Authorization;
        if (authorization.Count > 0)
        {
            if (authorization.Count != 1 || authorization[0] is not { } value
                || !value.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) || value.Length <= 7)
            {
                throw ApiProblemException.Unauthorized(ErrorCodes.InvalidToken, "The Authorization header must be 'Bearer <access token>'.");
            }
            var tokens = http.RequestServices.GetRequiredService<AccessTokenService>();
            var token = await tokens.ValidateAsync(value[7..].Trim());
            var revocations = http.RequestServices.GetRequiredService<ITokenRevocations>();
            if (await revocations.IsRevokedAsync(token.Jti, http.RequestAborted))
            {
                throw ApiProblemException.Unauthorized(ErrorCodes.TokenRevoked, "The access token has been revoked; sign in again.");
            }
            http.Items[CustomerItem] = token.CustomerId;
            http.Items[TokenItem] = token;
            return;
        }
        var options = http.RequestServices.GetRequiredService<EntryOptions>();
        var header = http.Request.Headers[CustomerHeader];
        if (header.Count == 0 || !options.AllowLegacyCustomerHeader)
        {
            throw ApiProblemException.Unauthorized(ErrorCodes.MissingToken, "Authentication is required.");
        }
        if (header.Count != 1 || !Guid.TryParseExact(header[0], "D", out var customerId) || customerId == Guid.Empty)
        {
            throw ApiProblemException.Unauthorized(ErrorCodes.InvalidToken, "The customer credential is not valid.");
        }
        http.Items[CustomerItem] = customerId;
    }

    /// <summary>The validated bearer token of this request; null when the legacy header authenticated it.</summary>
    public static AccessToken? AccessToken(this HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return context.Items[TokenItem] as AccessToken;
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
        group.AddEndpointFilter(async (context, next) =>
        {
            var http = context.HttpContext;
            var options = http.RequestServices.GetRequiredService<EntryOptions>();
            var header = http.Request.Headers[AdminHeader];
            if (header.Count != 1 || !ConstantTimeEquals(header[0]!, options.AdminToken))
            {
                throw ApiProblemException.Unauthorized(ErrorCodes.Unauthorized, "A valid admin token is required.");
            }
            return await next(context);
        });
        return group;
    }

    public static Guid CustomerId(this HttpContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return context.Items[CustomerItem] is Guid id ? id : throw new InvalidOperationException("Customer endpoint without RequireCustomer.");
    }

    // Hash both sides first so the comparison time depends on neither length nor content.
    private static bool ConstantTimeEquals(string given, string expected) =>
        CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(given)), SHA256.HashData(Encoding.UTF8.GetBytes(expected)));
}
