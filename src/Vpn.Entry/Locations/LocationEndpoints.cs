using Microsoft.Net.Http.Headers;

namespace Vpn.Entry.Locations;

/// <summary>GET /v1/locations: the signed public server list, no authentication, cacheable (ETag, If-None-Match).</summary>
public static class LocationEndpoints
{
    public static IEndpointRouteBuilder MapLocationEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/v1/locations", async (HttpContext http, LocationCatalog catalog, EntryOptions options, CancellationToken ct) =>
        {
            var list = await catalog.GetAsync(ct)
                ?? throw new ApiProblemException(StatusCodes.Status503ServiceUnavailable, ErrorCodes.CatalogNotConfigured,
                    "The server list is not signed on this deployment (APP_CATALOG_SIGNING_KEY_FILE).");
            var headers = http.Response.Headers;
            headers.ETag = list.ETag;
            headers.CacheControl = $"public, max-age={(int)options.Locations.CacheFor.TotalSeconds}";
            var ifNoneMatch = http.Request.GetTypedHeaders().IfNoneMatch;
            if (ifNoneMatch.Any(tag => tag.Equals(EntityTagHeaderValue.Any) || tag.Tag == list.ETag))
            {
                return Results.StatusCode(StatusCodes.Status304NotModified);
            }
            return Results.Bytes(list.Body, "application/json");
        })
        .Produces<Vpn.Contracts.Http.SignedLocationsDocument>(StatusCodes.Status200OK, "application/json")
        .Produces(StatusCodes.Status304NotModified)
        .WithTags("Locations");
        return app;
    }
}
