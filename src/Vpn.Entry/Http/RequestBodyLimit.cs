namespace Vpn.Entry.Http;

/// <summary>
/// Refuses declared bodies over 64 KiB before any handler reads them. Kestrel's MaxRequestBodySize also stops
/// chunked bodies mid-stream; this covers hosts without that feature (the in-process test server) with the same answer.
/// </summary>
public static class RequestBodyLimit
{
    public static IApplicationBuilder UseRequestBodyLimit(this IApplicationBuilder app) =>
        app.Use(async (context, next) =>
        {
            if (context.Request.ContentLength > EntryServiceCollectionExtensions.MaxRequestBodyBytes)
            {
                throw new BadHttpRequestException("Request body too large.", StatusCodes.Status413PayloadTooLarge);
            }
            await next(context);
        });
}
