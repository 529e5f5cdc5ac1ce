using Microsoft.AspNetCore.Http.HttpResults;

namespace Vpn.Entry.Accounts;

/// <summary>Erasure of a customer: by the customer itself (DELETE /v1/me) or by an operator (DELETE /v1/admin/customers/{customer_id}).</summary>
public static class AccountEndpoints
{
    public static IEndpointRouteBuilder MapAccountEndpoints(this IEndpointRouteBuilder app)
    {
        // Idempotent for the customer: whatever was stored is gone and its tokens are dead, even if nothing was stored.
        app.MapDelete("/v1/me", async Task<NoContent> (HttpContext http, AccountErasure erasure, CancellationToken ct) =>
        {
            await erasure.EraseAsync(http.CustomerId(), "customer", revokeIfUnknown: true, ct);
            return TypedResults.NoContent();
        }).RequireCustomer().WithTags("Auth");

        app.MapGroup("/v1/admin/customers").RequireAdmin().WithTags("Customers")
            .MapDelete("/{customer_id}", async Task<NoContent> (string customer_id, AccountErasure erasure, CancellationToken ct) =>
            {
                var customerId = Guid.TryParseExact(customer_id, "D", out var id) ? id : throw ApiProblemException.BadRequest("'customer_id' must be a UUID.");
                return await erasure.EraseAsync(customerId, "admin", revokeIfUnknown: false, ct)
                    ? TypedResults.NoContent()
                    : throw ApiProblemException.NotFound(ErrorCodes.CustomerNotFound, "Nothing is stored about this customer.");
            })
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status404NotFound);
        return app;
    }
}
