using System.Security.Cryptography;
using System.Text;
using Vpn.Entry.Configuration;
using Vpn.Entry.Http;

namespace Vpn.Entry.Auth;

/// <summary>
/// Who is calling. Customers: for now only the legacy x-customer-id header (Bearer tokens arrive with sign-in).
/// Admins and nodes: x-admin-token, compared in constant time; missing and wrong answer the same.
/// </summary>
public static class RequestAuth
{
    public const string CustomerHeader = "x-customer-id";
    public const string AdminHeader = "x-admin-token";
    private const string CustomerItem = "vpn.customer_id";

    public static RouteGroupBuilder RequireCustomer(this RouteGroupBuilder group)
    {
        ArgumentNullException.ThrowIfNull(group);
        group.AddEndpointFilter(async (context, next) =>
        {
            var http = context.HttpContext;
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
            return await next(context);
        });
        return group;
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
